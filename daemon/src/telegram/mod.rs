//! The Telegram fallback for approvals: when nobody answers at the desk, a
//! bot sends the approval with Approve/Deny buttons and takes the answer.
//!
//! # Shape
//!
//! [`spawn`] starts one task that follows the policy's `[telegram]` section
//! (re-read on every policy reload) and runs a [`Channel`] while it is
//! enabled; a changed section ends the channel and starts a new one. The
//! channel is one loop over three inputs: the daemon's events
//! ([`Hub::subscribe`]: approvals added and removed, policy reloads), the
//! button presses a separate poller task fetches (`getUpdates` long
//! polling, so no public address is needed), and a one-second tick that
//! sends what is due and retries what failed. All Bot API calls go through
//! teloxide's client.
//!
//! # When a message is sent
//!
//! An approval is sent once it has waited `delay_seconds` (counted from its
//! creation), or at once when no console is attached. Approvals pending when
//! the channel starts (a restart, a policy change) count the same way.
//!
//! # Who may answer
//!
//! Each button carries its own random value (128 bits from the kernel), not
//! the approval id: the daemon alone knows which approval and which answer
//! it stands for. A press counts when the presser (`from.id`, never the
//! chat: in a group anyone can press) is in `allowed_users` and the value
//! is still live; the values of an approval die when it is answered
//! anywhere or withdrawn, so a replayed, forwarded or old button does
//! nothing. Every press is answered (`answerCallbackQuery`) with what
//! happened. When an approval closes, however it closed, its message is
//! edited to say so and loses its buttons.
//!
//! # Restarts
//!
//! The messages sent and their live button values are saved in the audit
//! database's state table (private to the user) whenever they change. A
//! channel that starts with the same bot, API and chat takes them back: the
//! buttons of an approval still pending keep working (no second message),
//! and the message of one that closed while the bot was not running is
//! edited to say so.
//!
//! # Failure
//!
//! Telegram unreachable, the token refused or unreadable: the problem is
//! logged once (again only when it changes), shown by `latch status`
//! ([`Hub::set_status`]), and retried with a growing pause (1 s doubling
//! to 60 s, longer when Telegram says `retry_after`). A token that is
//! unreadable or refused is read again at each retry, so fixing the token
//! file needs no restart. Approvals keep working at the console and with
//! `latch approve`: this channel only ever adds a way to answer.
//!
//! # Never leak
//!
//! Only pending items leave the machine, and those carry redacted
//! arguments and reasons; the text is redacted again as a whole before it
//! is sent ([`text`]). The token is never logged: teloxide strips it from
//! network errors, and every error text is scrubbed of it once more.

mod text;
mod token;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use latch_core::policy::TelegramConf;
use latch_proto::msg::{Event, PendingItem};
use teloxide::payloads::{AnswerCallbackQuerySetters, GetUpdatesSetters, SendMessageSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{
    AllowedUpdate, CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, UpdateKind,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::channel::Hub;
use crate::now_ms;
use text::Action;

/// The channel's name in `latch status` and in `answered_by`.
const NAME: &str = "telegram";
/// Long-polling timeout, under teloxide's 17 s request timeout.
const POLL_SECONDS: u32 = 10;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The status before the first `getUpdates` worked.
const STARTING: &str = "starting: not connected to Telegram yet";
/// Attempts at editing one message before giving up on it.
const EDIT_ATTEMPTS: u32 = 8;

/// Starts the Telegram channel on its own task. It does nothing (and sends
/// nothing) until the policy has an enabled `[telegram]` section.
pub fn spawn(hub: Hub) {
    tokio::spawn(supervise(hub));
}

async fn supervise(hub: Hub) {
    let mut events = hub.subscribe();
    let mut shown = false;
    loop {
        match hub.policy().telegram().cloned() {
            Some(conf) if conf.enabled => {
                shown = true;
                if !Channel::new(hub.clone(), conf).run(&mut events).await {
                    return;
                }
            }
            conf => {
                if conf.is_some() || shown {
                    hub.set_status(NAME, false, None);
                    shown = true;
                }
                // Wait for the next policy reload.
                loop {
                    match events.recv().await {
                        Ok(Event::PolicyReloaded { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        }
    }
}

/// A doubling pause between attempts.
struct Backoff {
    next: Duration,
    until: Option<Instant>,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: BACKOFF_MIN, until: None }
    }
    fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }
    /// A failure: wait the next pause, or longer when Telegram asked for
    /// it (`retry_after`, sent when too many messages go out).
    fn failed(&mut self, now: Instant, e: Option<&RequestError>) {
        let asked = match e {
            Some(RequestError::RetryAfter(s)) => s.duration(),
            _ => Duration::ZERO,
        };
        self.until = Some(now + self.next.max(asked));
        self.next = (self.next * 2).min(BACKOFF_MAX);
    }
    fn succeeded(&mut self) {
        *self = Backoff::new();
    }
}

/// What the poller task reports.
enum Polled {
    Press(Box<CallbackQuery>),
    /// A `getUpdates` round trip worked.
    Healthy,
    Failed(String),
    /// The token was refused: read it again (the person may fix it).
    BadToken(String),
}

/// One approval the channel knows of.
struct Entry {
    item: PendingItem,
    /// The message sent for it, and its text.
    sent: Option<(MessageId, String)>,
}

/// What is saved across restarts (see "Restarts" above).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Saved {
    /// The bot (the id part of its token, not secret), its API and chat:
    /// messages of another bot or chat are not this channel's to edit.
    bot: String,
    api: String,
    chat: i64,
    /// Approval id → its message.
    messages: BTreeMap<String, SavedMessage>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedMessage {
    message: i32,
    text: String,
    /// Live button value → [`Action::key`].
    buttons: BTreeMap<String, String>,
}

/// An edit still to be made (the first attempt failed).
struct Edit {
    message: MessageId,
    text: String,
    attempts: u32,
}

/// Aborts the poller task when the channel ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Channel {
    hub: Hub,
    conf: TelegramConf,
    chat: ChatId,
    bot: Option<Bot>,
    /// The token, to scrub it from error texts.
    token: String,
    poller: Option<AbortOnDrop>,
    polled_tx: mpsc::Sender<Polled>,
    polled: mpsc::Receiver<Polled>,
    entries: HashMap<String, Entry>,
    /// Live button values: value → (approval id, what the button does).
    buttons: HashMap<String, (String, Action)>,
    edits: Vec<Edit>,
    /// Sending and editing wait on this after a failure.
    backoff: Backoff,
    /// Reading the token again waits on this.
    token_backoff: Backoff,
    /// What is wrong with reaching Telegram for updates (the poller, the
    /// token), and with sending (messages, edits, press answers). Each is
    /// cleared only by a success of its own kind, so one working while the
    /// other fails does not make the status flap.
    poll_problem: Option<String>,
    send_problem: Option<String>,
    /// What `latch status` shows and the log said last.
    shown: Option<String>,
    logged: Option<String>,
    /// Users refused once already (logged once each).
    refused: HashSet<u64>,
    /// Whether what the last run saved was taken back (done once, when the
    /// bot is known).
    restored: bool,
}

impl Channel {
    fn new(hub: Hub, conf: TelegramConf) -> Channel {
        let (polled_tx, polled) = mpsc::channel(64);
        let chat = ChatId(conf.chat().unwrap_or_default());
        Channel {
            hub,
            conf,
            chat,
            bot: None,
            token: String::new(),
            poller: None,
            polled_tx,
            polled,
            entries: HashMap::new(),
            buttons: HashMap::new(),
            edits: Vec::new(),
            backoff: Backoff::new(),
            token_backoff: Backoff::new(),
            poll_problem: Some(STARTING.to_owned()),
            send_problem: None,
            shown: Some(STARTING.to_owned()),
            logged: None,
            refused: HashSet::new(),
            restored: false,
        }
    }

    /// Runs until the `[telegram]` section changes (true) or the daemon's
    /// events end (false).
    async fn run(mut self, events: &mut broadcast::Receiver<Event>) -> bool {
        self.hub.set_status(NAME, true, self.poll_problem.clone());
        for item in self.hub.pending() {
            self.added(item);
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(Event::PendingAdded { item }) => {
                        self.added(item);
                        self.send_due().await;
                    }
                    Ok(Event::PendingRemoved { id, decision, by }) => self.removed(&id, &decision, &by).await,
                    Ok(Event::PolicyReloaded { .. }) => match self.hub.policy().telegram() {
                        Some(new) if *new == self.conf => {}
                        // Who may answer, or the delay: in force at once,
                        // messages and buttons stay.
                        Some(new) if new.enabled && same_bot(new, &self.conf) => self.conf = new.clone(),
                        _ => {
                            eprintln!("latch daemon: telegram: the [telegram] section changed; restarting the bot");
                            return true;
                        }
                    },
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync().await,
                    Err(broadcast::error::RecvError::Closed) => return false,
                },
                Some(p) = self.polled.recv() => match p {
                    Polled::Press(q) => self.press(*q).await,
                    Polled::Healthy => {
                        self.token_backoff.succeeded();
                        self.poll_health(None);
                    }
                    Polled::Failed(problem) => self.poll_health(Some(problem)),
                    Polled::BadToken(problem) => {
                        self.poll_health(Some(problem));
                        self.poller = None;
                        self.bot = None;
                        self.token_backoff.failed(Instant::now(), None);
                    }
                },
                _ = tick.tick() => {
                    self.connect();
                    if !self.restored && self.bot.is_some() {
                        self.restored = true;
                        self.restore().await;
                    }
                    self.send_due().await;
                    self.retry_edits().await;
                }
            }
        }
    }

    /// Reads the token and starts the poller, when not done yet.
    fn connect(&mut self) {
        let now = Instant::now();
        if self.bot.is_some() || !self.token_backoff.ready(now) {
            return;
        }
        let token = match token::resolve(&self.conf, |k| std::env::var(k).ok()) {
            Ok(t) => t,
            Err(e) => {
                self.token_backoff.failed(now, None);
                self.poll_health(Some(e.to_string()));
                return;
            }
        };
        let mut bot = Bot::new(token.clone());
        if let Some(url) = &self.conf.api_url {
            match reqwest::Url::parse(url) {
                Ok(u) => bot = bot.set_api_url(u),
                Err(e) => {
                    self.token_backoff.failed(now, None);
                    self.poll_health(Some(format!("api_url {url:?} is not a URL: {e} — fix it in [telegram]")));
                    return;
                }
            }
        }
        self.token = token;
        // A new bot: what the last one failed to send says nothing of it.
        self.send_problem = None;
        let poller = tokio::spawn(poll(bot.clone(), self.token.clone(), self.api_label(), self.polled_tx.clone()));
        self.poller = Some(AbortOnDrop(poller));
        self.bot = Some(bot);
    }

    fn api_label(&self) -> String {
        self.conf.api_url.clone().unwrap_or_else(|| "https://api.telegram.org".to_owned())
    }

    fn poll_health(&mut self, problem: Option<String>) {
        self.poll_problem = problem;
        self.refresh();
    }

    /// A send, edit or press answer worked (None) or failed.
    fn send_health(&mut self, failed: Option<(&str, &RequestError)>) {
        self.send_problem = failed.map(|(what, e)| {
            let why = describe_error(e, &self.token, &self.api_label());
            match e {
                // Errors that are about this request, not about the bot.
                RequestError::Api(a)
                    if !matches!(a, ApiError::InvalidToken | ApiError::TerminatedByOtherGetUpdates) =>
                {
                    format!("{what}: {why}")
                }
                _ => why,
            }
        });
        self.refresh();
    }

    /// Shows the channel's health in `latch status`; logs a problem once
    /// (again only when it changes), and the recovery.
    fn refresh(&mut self) {
        let problem = self.send_problem.clone().or_else(|| self.poll_problem.clone());
        if problem == self.shown {
            return;
        }
        match &problem {
            Some(p) if self.logged.as_ref() != Some(p) => {
                eprintln!("latch daemon: telegram: {p} (approvals still work at the console and with `latch approve`)");
                self.logged = Some(p.clone());
            }
            Some(_) => {}
            None => {
                if self.logged.take().is_some() {
                    eprintln!("latch daemon: telegram: working again ({})", self.api_label());
                } else {
                    eprintln!("latch daemon: telegram: connected to {}", self.api_label());
                }
            }
        }
        self.hub.set_status(NAME, true, problem.clone());
        self.shown = problem;
    }

    fn added(&mut self, item: PendingItem) {
        match self.entries.get_mut(&item.id) {
            // Updated (more calls waiting): the message already says it all.
            Some(e) => e.item = item,
            None => {
                self.entries.insert(item.id.clone(), Entry { item, sent: None });
            }
        }
    }

    /// Sends every approval that is due and not sent yet.
    async fn send_due(&mut self) {
        let Some(bot) = self.bot.clone() else { return };
        if !self.backoff.ready(Instant::now()) {
            return;
        }
        let now = now_ms();
        let no_console = self.hub.consoles() == 0;
        let delay_ms = (self.conf.delay_seconds as i64).saturating_mul(1000);
        let mut due: Vec<(i64, String)> = self
            .entries
            .values()
            .filter(|e| e.sent.is_none() && (no_console || now >= e.item.created_at.saturating_add(delay_ms)))
            .map(|e| (e.item.created_at, e.item.id.clone()))
            .collect();
        due.sort();
        for (_, id) in due {
            // Answered meanwhile: its PendingRemoved event is on its way.
            if !self.hub.is_pending(&id) {
                continue;
            }
            let Some(entry) = self.entries.get(&id) else { continue };
            let body = text::approval_message(&entry.item);
            let mut row = Vec::new();
            let mut values = Vec::new();
            for action in Action::ALL {
                let Some(v) = text::nonce() else {
                    self.send_problem = Some("no randomness from /dev/urandom: cannot make buttons".to_owned());
                    self.refresh();
                    return;
                };
                row.push(InlineKeyboardButton::callback(action.label(), v.clone()));
                values.push((v, action));
            }
            let req = bot.send_message(self.chat, body.clone()).reply_markup(InlineKeyboardMarkup::new([row]));
            match req.send().await {
                Ok(msg) => {
                    self.backoff.succeeded();
                    self.send_health(None);
                    for (v, action) in values {
                        self.buttons.insert(v, (id.clone(), action));
                    }
                    // Answered while the request was in flight: its
                    // PendingRemoved event waits in `events` and will find
                    // this message to edit.
                    if let Some(e) = self.entries.get_mut(&id) {
                        e.sent = Some((msg.id, body));
                    }
                    self.save().await;
                }
                Err(e) => {
                    self.send_health(Some((&format!("cannot send to chat {}", self.chat), &e)));
                    self.backoff.failed(Instant::now(), Some(&e));
                    return;
                }
            }
        }
    }

    /// An approval closed: its buttons die and its message says how.
    async fn removed(&mut self, id: &str, decision: &str, by: &str) {
        self.buttons.retain(|_, (a, _)| a != id);
        let Some(entry) = self.entries.remove(id) else { return };
        let Some((message, sent)) = entry.sent else { return };
        self.save().await;
        let edit = Edit { message, text: text::closed_message(&sent, decision, by), attempts: 0 };
        self.edit(edit).await;
    }

    /// The bot's id: the part of the token before the colon (public: it is
    /// the bot's user id).
    fn bot_id(&self) -> String {
        self.token.split(':').next().unwrap_or_default().to_owned()
    }

    /// Saves the messages sent and their live buttons.
    async fn save(&mut self) {
        let mut saved =
            Saved { bot: self.bot_id(), api: self.api_label(), chat: self.chat.0, messages: BTreeMap::new() };
        for (id, entry) in &self.entries {
            if let Some((message, text)) = &entry.sent {
                let buttons = self
                    .buttons
                    .iter()
                    .filter(|(_, (a, _))| a == id)
                    .map(|(v, (_, action))| (v.clone(), action.key().to_owned()))
                    .collect();
                saved.messages.insert(id.clone(), SavedMessage { message: message.0, text: text.clone(), buttons });
            }
        }
        match serde_json::to_string(&saved) {
            Ok(json) => self.hub.save_state(NAME, json).await,
            Err(e) => eprintln!("latch daemon: telegram: cannot save its messages: {e}"),
        }
    }

    /// Takes back what the last run with this bot and chat saved: the
    /// buttons of approvals still pending keep working, and the messages of
    /// approvals that closed meanwhile are edited to say so.
    async fn restore(&mut self) {
        let Some(json) = self.hub.load_state(NAME).await else { return };
        let saved: Saved = match serde_json::from_str(&json) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("latch daemon: telegram: ignoring what it saved before a restart ({e})");
                return;
            }
        };
        if (saved.bot.as_str(), saved.api.as_str(), saved.chat)
            != (self.bot_id().as_str(), self.api_label().as_str(), self.chat.0)
        {
            return;
        }
        let pending: HashMap<String, PendingItem> = self.hub.pending().into_iter().map(|p| (p.id.clone(), p)).collect();
        for (id, m) in saved.messages {
            let message = MessageId(m.message);
            let Some(item) = pending.get(&id) else {
                let text =
                    text::closed_message(&m.text, "closed", "answered or withdrawn while this bot was not running");
                self.edits.push(Edit { message, text, attempts: 0 });
                continue;
            };
            // Still pending: its message and buttons are taken back, so it
            // is not sent again (sending waited for this).
            let entry = self.entries.entry(id.clone()).or_insert_with(|| Entry { item: item.clone(), sent: None });
            entry.sent = Some((message, m.text));
            for (value, key) in m.buttons {
                if let Some(action) = Action::from_key(&key) {
                    self.buttons.insert(value, (id.clone(), action));
                }
            }
        }
        self.save().await;
    }

    async fn edit(&mut self, mut edit: Edit) {
        let Some(bot) = self.bot.clone() else { return };
        edit.attempts += 1;
        // No reply_markup: the edited message has no buttons.
        match bot.edit_message_text(self.chat, edit.message, edit.text.clone()).send().await {
            // MessageNotModified: it says this already (an edit retried
            // after its answer was lost).
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => self.send_health(None),
            Err(e) => {
                self.send_health(Some((&format!("cannot edit a message in chat {}", self.chat), &e)));
                self.backoff.failed(Instant::now(), Some(&e));
                if edit.attempts < EDIT_ATTEMPTS {
                    self.edits.push(edit);
                }
            }
        }
    }

    async fn retry_edits(&mut self) {
        if self.edits.is_empty() || !self.backoff.ready(Instant::now()) {
            return;
        }
        let mut todo = std::mem::take(&mut self.edits).into_iter();
        for edit in todo.by_ref() {
            self.edit(edit).await;
            if !self.backoff.ready(Instant::now()) {
                break;
            }
        }
        // Failed once more: the rest waits for the pause to pass.
        self.edits.extend(todo);
    }

    /// Events were lost: take the pending list as the truth.
    async fn resync(&mut self) {
        let pending = self.hub.pending();
        let live: HashSet<&str> = pending.iter().map(|p| p.id.as_str()).collect();
        let gone: Vec<String> = self.entries.keys().filter(|id| !live.contains(id.as_str())).cloned().collect();
        for id in gone {
            self.removed(&id, "closed", "answered or withdrawn elsewhere").await;
        }
        for item in pending {
            self.added(item);
        }
    }

    /// A button was pressed.
    async fn press(&mut self, q: CallbackQuery) {
        let user = q.from.id.0;
        let who = match &q.from.username {
            Some(u) => format!("@{u}"),
            None => user.to_string(),
        };
        let reply = if !self.conf.allows(user) {
            let approval = q.data.as_deref().and_then(|v| self.buttons.get(v)).map(|(id, _)| id.clone());
            self.hub
                .record_refused(
                    NAME,
                    &who,
                    approval.as_deref(),
                    &format!("user id {user} is not in [telegram] allowed_users"),
                )
                .await;
            if self.refused.insert(user) {
                eprintln!(
                    "latch daemon: telegram: refused a button press from user id {user} ({who}): not in \
                     allowed_users"
                );
            }
            "You are not allowed to answer Latch approvals.".to_owned()
        } else {
            match q.data.as_deref().and_then(|v| self.buttons.get(v)).cloned() {
                None => "This button has expired: its approval was answered or withdrawn.".to_owned(),
                Some((id, action)) => {
                    // One time: whatever happens next, these values are spent.
                    self.buttons.retain(|_, (a, _)| *a != id);
                    let (approve, scope) = action.answer();
                    if self.hub.answer(&id, approve, scope, NAME, &who, None).await {
                        action.done(&id)
                    } else {
                        format!("Approval {id} is no longer pending: it was answered elsewhere or withdrawn.")
                    }
                }
            }
        };
        let Some(bot) = self.bot.clone() else { return };
        match bot.answer_callback_query(q.id).text(reply).send().await {
            Ok(_) => self.send_health(None),
            Err(e) => self.send_health(Some(("cannot answer a button press", &e))),
        }
    }
}

/// Whether two settings talk to the same bot in the same chat.
fn same_bot(a: &TelegramConf, b: &TelegramConf) -> bool {
    a.api_url == b.api_url && a.token_env == b.token_env && a.token_file == b.token_file && a.chat() == b.chat()
}

/// Fetches button presses forever (aborted with its channel).
async fn poll(bot: Bot, token: String, api: String, tx: mpsc::Sender<Polled>) {
    let mut offset: i32 = 0;
    let mut pause = BACKOFF_MIN;
    // The first poll returns at once: `latch status` learns whether the
    // bot works without waiting out a long poll.
    let mut wait = 0;
    loop {
        let req = bot.get_updates().offset(offset).timeout(wait).allowed_updates([AllowedUpdate::CallbackQuery]);
        match req.send().await {
            Ok(updates) => {
                pause = BACKOFF_MIN;
                wait = POLL_SECONDS;
                if tx.send(Polled::Healthy).await.is_err() {
                    return;
                }
                for u in updates {
                    offset = offset.max((u.id.0 as i32).saturating_add(1));
                    if let UpdateKind::CallbackQuery(q) = u.kind
                        && tx.send(Polled::Press(Box::new(q))).await.is_err()
                    {
                        return;
                    }
                }
            }
            Err(e) => {
                let wait = match &e {
                    RequestError::RetryAfter(s) => s.duration().max(pause),
                    _ => pause,
                };
                let problem = describe_error(&e, &token, &api);
                if matches!(e, RequestError::Api(ApiError::InvalidToken)) {
                    // The channel reads the token again and starts a new
                    // poller; this one ends.
                    let _ = tx.send(Polled::BadToken(problem)).await;
                    return;
                }
                if tx.send(Polled::Failed(problem)).await.is_err() {
                    return;
                }
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// The causes of a network error, `a: b: c`. reqwest's own text ("error
/// sending request for url (…/GetUpdates)") is left out when there are
/// causes: it names the method, so the same outage would read differently
/// for each request (and be logged again).
fn with_causes(e: &dyn std::error::Error) -> String {
    let Some(first) = e.source() else { return e.to_string() };
    let mut out = first.to_string();
    let mut cause = first.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

/// An error in words that say what to do, without the token.
fn describe_error(e: &RequestError, token: &str, api: &str) -> String {
    let text = match e {
        RequestError::Api(ApiError::InvalidToken) => {
            "the Bot API refused the bot token (401 Unauthorized) — check the token from @BotFather in \
             token_env / token_file"
                .to_owned()
        }
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => {
            "another program is reading this bot's updates (only one may) — stop it, or give Latch a bot of its own"
                .to_owned()
        }
        RequestError::Api(
            ApiError::ChatNotFound
            | ApiError::BotBlocked
            | ApiError::CantInitiateConversation
            | ApiError::UserDeactivated,
        ) => format!(
            "Telegram will not deliver to this chat ({e}) — open a chat with the bot and press Start, or fix chat_id"
        ),
        RequestError::Api(api_err) => format!("the Bot API said: {api_err}"),
        RequestError::Network(n) => format!("cannot reach the Bot API at {api}: {}", with_causes(n.as_ref())),
        RequestError::RetryAfter(s) => format!("Telegram asks to wait {} s", s.seconds()),
        RequestError::InvalidJson { .. } => format!("{api} did not answer like the Bot API (unreadable JSON)"),
        other => format!("{other}"),
    };
    if token.is_empty() { text } else { text.replace(token, "<token>") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::Seconds;

    #[test]
    fn the_pause_doubles_up_to_a_minute_and_honours_retry_after() {
        let now = Instant::now();
        let mut b = Backoff::new();
        assert!(b.ready(now));
        let mut pauses = Vec::new();
        for _ in 0..8 {
            b.failed(now, None);
            pauses.push((b.until.unwrap() - now).as_secs());
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(!b.ready(now) && b.ready(now + BACKOFF_MAX));
        b.succeeded();
        b.failed(now, Some(&RequestError::RetryAfter(Seconds::from_seconds(30))));
        assert_eq!((b.until.unwrap() - now).as_secs(), 30);
    }

    #[test]
    fn errors_say_what_to_do_and_never_carry_the_token() {
        let token = "123456:SECRET-token-value";
        let e = RequestError::Api(ApiError::InvalidToken);
        let text = describe_error(&e, token, "https://api.telegram.org");
        assert!(text.contains("refused the bot token") && text.contains("token_file"), "{text}");
        let e = RequestError::Api(ApiError::Unknown(format!("Bad Request: echo {token}")));
        let text = describe_error(&e, token, "https://api.telegram.org");
        assert!(!text.contains(token) && text.contains("<token>"), "{text}");
    }

    #[test]
    fn a_new_list_of_users_keeps_the_bot_but_a_new_chat_does_not() {
        let a = TelegramConf { enabled: true, allowed_users: vec![1, 2], ..TelegramConf::default() };
        let fewer = TelegramConf { allowed_users: vec![1], delay_seconds: 5, ..a.clone() };
        assert!(same_bot(&a, &fewer));
        // The default chat is the first allowed user.
        let other_first = TelegramConf { allowed_users: vec![2, 1], ..a.clone() };
        assert!(!same_bot(&a, &other_first));
        let other_server = TelegramConf { api_url: Some("http://127.0.0.1:1".into()), ..a.clone() };
        assert!(!same_bot(&a, &other_server));
    }
}
