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

mod poll;
mod saved;
mod text;
mod token;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use latch_core::policy::TelegramConf;
use latch_proto::msg::{Event, PendingItem};
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::channel::Hub;
use crate::now_ms;
use poll::{Backoff, Polled, describe_error, poll};
use text::Action;

/// The channel's name in `latch status` and in `answered_by`.
const NAME: &str = "telegram";
/// The status before the first `getUpdates` worked.
const STARTING: &str = "starting: not connected to Telegram yet";
/// Attempts at editing one message before giving up on it.
const EDIT_ATTEMPTS: u32 = 8;

/// Starts the Telegram channel on its own task. It does nothing (and sends
/// nothing) until the policy has an enabled `[telegram]` section.
pub fn spawn(tasks: &mut tokio::task::JoinSet<()>, hub: Hub) {
    tasks.spawn(supervise(hub));
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

/// One approval the channel knows of.
struct Entry {
    item: PendingItem,
    /// The message sent for it, and its text.
    sent: Option<(MessageId, String)>,
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
                            tracing::info!("telegram: the [telegram] section changed; restarting the bot");
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
                tracing::warn!("telegram: {p} (approvals still work at the console and with `latch approve`)");
                self.logged = Some(p.clone());
            }
            Some(_) => {}
            None => {
                if self.logged.take().is_some() {
                    tracing::info!("telegram: working again ({})", self.api_label());
                } else {
                    tracing::info!("telegram: connected to {}", self.api_label());
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
                tracing::warn!(
                    "telegram: refused a button press from user id {user} ({who}): not in \
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

#[cfg(test)]
mod tests {
    use super::*;

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
