//! Reading the bot's updates, pausing after failures, and saying what went
//! wrong in words that never carry the token.

use std::time::Duration;

use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::{Request, Requester};
use teloxide::types::{AllowedUpdate, CallbackQuery, UpdateKind};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Long-polling timeout, under teloxide's 17 s request timeout.
const POLL_SECONDS: u32 = 10;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A doubling pause between attempts.
pub(super) struct Backoff {
    next: Duration,
    until: Option<Instant>,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff { next: BACKOFF_MIN, until: None }
    }
    pub(super) fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }
    /// A failure: wait the next pause, or longer when Telegram asked for
    /// it (`retry_after`, sent when too many messages go out).
    pub(super) fn failed(&mut self, now: Instant, e: Option<&RequestError>) {
        let asked = match e {
            Some(RequestError::RetryAfter(s)) => s.duration(),
            _ => Duration::ZERO,
        };
        self.until = Some(now + self.next.max(asked));
        self.next = (self.next * 2).min(BACKOFF_MAX);
    }
    pub(super) fn succeeded(&mut self) {
        *self = Backoff::new();
    }
}

/// What the poller task reports.
pub(super) enum Polled {
    Press(Box<CallbackQuery>),
    /// A `getUpdates` round trip worked.
    Healthy,
    Failed(String),
    /// The token was refused: read it again (the person may fix it).
    BadToken(String),
}

/// Fetches button presses forever (aborted with its channel).
pub(super) async fn poll(bot: Bot, token: String, api: String, tx: mpsc::Sender<Polled>) {
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
pub(super) fn describe_error(e: &RequestError, token: &str, api: &str) -> String {
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
}
