//! `[telegram]`: the Telegram fallback for approvals.
//!
//! ```toml
//! [telegram]
//! enabled = true
//! allowed_users = [123456789]      # Telegram user ids that may answer
//! chat_id = -1001234567890         # where to send; default: the first allowed user
//! delay_seconds = 20               # wait this long for a console first
//! token_env = "LATCH_TELEGRAM_TOKEN"
//! token_file = "~/.config/latch/telegram-token"
//! api_url = "https://api.telegram.org"
//! ```
//!
//! The bot token itself never appears here: the policy file is a file
//! people share, paste and commit. Only where to find it is written down
//! (an environment variable, a file only the user can read), and a value
//! that looks like a token is refused wherever it is written in this
//! section. Whether the file is private is checked by the daemon when it
//! reads it; this module does no IO.
//!
//! `api_url` may use plain `http` only for a loopback host (a test server,
//! a Bot API server on this machine): the token travels in every request's
//! path and must not cross a network in the clear.

use super::error::ProblemKind;
use super::read::{Cx, describe, entries};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

const DEFAULT_TOKEN_ENV: &str = TelegramConf::DEFAULT_TOKEN_ENV;
const DEFAULT_DELAY_SECONDS: u64 = TelegramConf::DEFAULT_DELAY_SECONDS;
/// Longest `delay_seconds`: an hour.
const MAX_DELAY: u64 = 3600;

const KEYS: &[&str] = &["enabled", "allowed_users", "chat_id", "delay_seconds", "token_env", "token_file", "api_url"];

/// The `[telegram]` section, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramConf {
    /// `enabled` (default false: nothing leaves the machine unless asked).
    pub enabled: bool,
    /// Telegram user ids whose button presses count (`from.id` of the
    /// press, never the chat: in a group anyone can press).
    pub allowed_users: Vec<u64>,
    /// `chat_id` as written; see [`TelegramConf::chat`].
    pub chat_id: Option<i64>,
    /// Seconds an approval waits unanswered before the bot sends it (sent
    /// at once when no console is attached).
    pub delay_seconds: u64,
    /// Environment variable holding the token: `token_env`, else
    /// [`DEFAULT_TOKEN_ENV`] when no `token_file` is given.
    pub token_env: Option<String>,
    /// File holding the token (`~/` allowed), which must be readable by
    /// the user only. Read when `token_env` is unset or empty.
    pub token_file: Option<String>,
    /// Bot API server (`https://api.telegram.org` when None).
    pub api_url: Option<String>,
}

impl Default for TelegramConf {
    fn default() -> Self {
        TelegramConf {
            enabled: false,
            allowed_users: Vec::new(),
            chat_id: None,
            delay_seconds: DEFAULT_DELAY_SECONDS,
            token_env: Some(DEFAULT_TOKEN_ENV.to_owned()),
            token_file: None,
            api_url: None,
        }
    }
}

impl TelegramConf {
    /// The environment variable read for the bot token when the section
    /// names neither `token_env` nor `token_file`.
    pub const DEFAULT_TOKEN_ENV: &str = "LATCH_TELEGRAM_TOKEN";
    /// How long an approval waits for a console before the bot speaks up.
    pub const DEFAULT_DELAY_SECONDS: u64 = 20;

    /// Where messages go: `chat_id`, else a private chat with the first
    /// allowed user (a private chat's id is the user's id).
    pub fn chat(&self) -> Option<i64> {
        self.chat_id.or_else(|| self.allowed_users.first().and_then(|u| i64::try_from(*u).ok()))
    }

    /// `token_file` as an absolute path (`~/` resolved against `home`),
    /// for self-protection: no tool call may read the token.
    pub fn token_path(&self, home: Option<&str>) -> Option<String> {
        let f = self.token_file.as_deref()?;
        match f.strip_prefix("~/") {
            Some(rest) => home.map(|h| format!("{}/{rest}", h.trim_end_matches('/'))),
            None => Some(f.to_owned()),
        }
    }

    /// Whether a button press from Telegram user `id` counts.
    pub fn allows(&self, id: u64) -> bool {
        self.allowed_users.contains(&id)
    }
}

/// Whether `s` has the shape of a Telegram bot token (`123456:AA…`).
pub fn looks_like_token(s: &str) -> bool {
    let s = s.trim();
    let Some((id, secret)) = s.split_once(':') else {
        return false;
    };
    id.len() >= 5
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() >= 30
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

type SValue<'i> = Spanned<DeValue<'i>>;

/// Whether a bot token appears anywhere in `s` (alone, or inside a URL as
/// `…/bot<TOKEN>/…`).
fn holds_token(s: &str) -> bool {
    looks_like_token(s)
        || s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':'))
            .any(|w| looks_like_token(w.strip_prefix("bot").unwrap_or(w)))
}

/// Where a string that holds a bot token sits in `v` (itself, or an
/// element of a list or table inside it), so that no later message quotes it.
fn token_span(v: &SValue<'_>) -> Option<std::ops::Range<usize>> {
    match v.get_ref() {
        DeValue::String(s) if holds_token(s) => Some(v.span()),
        DeValue::Array(a) => a.iter().find_map(token_span),
        DeValue::Table(t) => t.values().find_map(token_span),
        _ => None,
    }
}

fn integer(v: &SValue<'_>) -> Option<i64> {
    match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// Parses `[telegram]` (the value `v` of the top-level key `telegram`).
/// Problems go to `cx`; the section is returned only when it has none.
pub(crate) fn parse(cx: &mut Cx<'_>, v: &SValue<'_>) -> Option<TelegramConf> {
    let t: &DeTable<'_> = cx.table(v, "telegram", "`[telegram]` followed by `enabled = true`")?;
    let before = cx.problems.len();
    let mut c = TelegramConf::default();
    let mut token_env_set = false;
    let mut users_span = None;
    for (k, x) in entries(t) {
        let key = k.get_ref().as_ref();
        // A token pasted into any string of this section is refused before
        // anything else is said about it.
        if let Some(span) = token_span(x) {
            cx.problem(
                ProblemKind::WrongType,
                span,
                format!("`{key}` holds what looks like a bot token; the token never goes in the policy file"),
                "remove it from this file (and revoke it with @BotFather if the file was shared); put the token in \
                 the environment variable named by `token_env` (default LATCH_TELEGRAM_TOKEN) or in a file of \
                 mode 0600 named by `token_file`",
            );
            continue;
        }
        match key {
            "enabled" => match x.get_ref() {
                DeValue::Boolean(b) => c.enabled = *b,
                _ => cx.wrong_type(x, "enabled", "true or false", "`enabled = true`"),
            },
            "allowed_users" => {
                users_span = Some(x.span());
                let example = "`allowed_users = [123456789]` (numeric user ids: message @userinfobot to learn yours)";
                let DeValue::Array(a) = x.get_ref() else {
                    cx.wrong_type(x, "allowed_users", "a list of Telegram user ids", example);
                    continue;
                };
                for item in a.iter() {
                    match (integer(item), item.get_ref()) {
                        (Some(n), _) if n > 0 => {
                            let n = n as u64;
                            if !c.allowed_users.contains(&n) {
                                c.allowed_users.push(n);
                            }
                        }
                        (Some(n), _) => cx.problem(
                            ProblemKind::OutOfRange,
                            item.span(),
                            format!("{n} is not a Telegram user id (user ids are positive; negative ids are groups)"),
                            "list the people who may answer by their own user ids; a group goes in `chat_id`",
                        ),
                        (None, DeValue::String(s)) => cx.problem(
                            ProblemKind::WrongType,
                            item.span(),
                            format!("{s:?} is not a Telegram user id: user ids are numbers"),
                            "usernames can change hands, ids cannot: write the numeric id (message @userinfobot to \
                             learn yours), like `allowed_users = [123456789]`",
                        ),
                        (None, other) => cx.problem(
                            ProblemKind::WrongType,
                            item.span(),
                            format!("a Telegram user id must be a number, found {}", describe(other)),
                            example,
                        ),
                    }
                }
            }
            "chat_id" => match integer(x) {
                Some(0) | None => cx.wrong_type(
                    x,
                    "chat_id",
                    "a non-zero chat id",
                    "`chat_id = -1001234567890` (a group) or leave it out to message the first allowed user",
                ),
                Some(n) => c.chat_id = Some(n),
            },
            "delay_seconds" => {
                if let Some(n) = cx.int(
                    x,
                    "delay_seconds",
                    (0, MAX_DELAY),
                    "0 sends at once; at most 3600 (an hour); 20 is the default",
                ) {
                    c.delay_seconds = n;
                }
            }
            "token_env" => {
                token_env_set = true;
                if let Some(s) = cx.str(x, "token_env", "`token_env = \"LATCH_TELEGRAM_TOKEN\"`") {
                    let ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if ok {
                        c.token_env = Some(s.to_owned());
                    } else {
                        cx.problem(
                            ProblemKind::WrongType,
                            x.span(),
                            format!("{s:?} is not an environment variable name"),
                            "name the variable that holds the token (letters, digits and `_`), like \
                             `token_env = \"LATCH_TELEGRAM_TOKEN\"`; never the token itself",
                        );
                    }
                }
            }
            "token_file" => {
                if let Some(s) = cx.str(x, "token_file", "`token_file = \"~/.config/latch/telegram-token\"`") {
                    if s.starts_with('/') || s.starts_with("~/") {
                        c.token_file = Some(s.to_owned());
                    } else {
                        cx.problem(
                            ProblemKind::WrongType,
                            x.span(),
                            format!("token_file {s:?} is not an absolute path"),
                            "write a path starting with `/` or `~/`, like \
                             `token_file = \"~/.config/latch/telegram-token\"` (chmod 600 it)",
                        );
                    }
                }
            }
            "api_url" => {
                if let Some(s) = cx.str(x, "api_url", "`api_url = \"https://api.telegram.org\"`") {
                    match check_api_url(s) {
                        Ok(()) => c.api_url = Some(s.trim_end_matches('/').to_owned()),
                        Err((msg, hint)) => cx.problem(ProblemKind::WrongType, x.span(), msg, hint),
                    }
                }
            }
            "token" | "bot_token" => cx.problem(
                ProblemKind::UnknownKey,
                k.span(),
                format!("`{key}`: the bot token never goes in the policy file"),
                "put it in an environment variable (`token_env`, default LATCH_TELEGRAM_TOKEN) or a file of mode \
                 0600 (`token_file = \"~/.config/latch/telegram-token\"`)",
            ),
            _ => cx.unknown_key(k, "in [telegram]", KEYS),
        }
    }
    if !token_env_set && c.token_file.is_some() {
        c.token_env = None;
    }
    if c.enabled && c.allowed_users.is_empty() && cx.problems.len() == before {
        cx.problem(
            ProblemKind::MissingKey,
            users_span.unwrap_or_else(|| v.span()),
            "[telegram] is enabled but nobody may answer: `allowed_users` is empty",
            "add your numeric Telegram user id, like `allowed_users = [123456789]` (message @userinfobot to learn \
             it), or set `enabled = false`",
        );
    }
    if cx.problems.len() > before {
        return None;
    }
    Some(c)
}

/// `http(s)://host[:port][/path]`; plain `http` only to a loopback host.
fn check_api_url(s: &str) -> Result<(), (String, String)> {
    let example = "write it like `api_url = \"https://api.telegram.org\"` (or leave it out)";
    let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else {
        return Err((format!("api_url {s:?} is not an http(s) URL"), example.to_owned()));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err((
            format!("api_url {s:?} has a user name or password in it"),
            "write only the server's address; credentials never go in the policy file".to_owned(),
        ));
    }
    let host = if let Some(r) = authority.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    if host.is_empty() || rest.contains(char::is_whitespace) {
        return Err((format!("api_url {s:?} has no host"), example.to_owned()));
    }
    let loopback = host.eq_ignore_ascii_case("localhost") || host == "::1" || host.split('.').next() == Some("127");
    if !https && !loopback {
        return Err((
            format!(
                "api_url {s:?} is plain http to another machine: the bot token would cross the network in the clear"
            ),
            "use https, or plain http only to 127.0.0.1 / localhost".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, ProblemKind};

    fn conf(text: &str) -> TelegramConf {
        let p = Policy::parse(text).unwrap_or_else(|e| panic!("{}", e.render("policy.toml", text)));
        p.telegram().cloned().expect("a [telegram] section")
    }

    /// The problems of `text` as (kind, line, message).
    fn problems(text: &str) -> Vec<(ProblemKind, usize, String)> {
        let e = Policy::parse(text).expect_err("should be refused");
        e.problems.into_iter().map(|p| (p.kind, p.line, p.message)).collect()
    }

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ";

    #[test]
    fn a_full_section_parses_with_every_setting() {
        let c = conf(
            "[telegram]\nenabled = true\nallowed_users = [111, 222]\nchat_id = -1001234\ndelay_seconds = 5\n\
             token_env = \"MY_BOT\"\ntoken_file = \"~/.config/latch/tg\"\napi_url = \"https://tg.example.com/\"\n",
        );
        assert_eq!(
            c,
            TelegramConf {
                enabled: true,
                allowed_users: vec![111, 222],
                chat_id: Some(-1001234),
                delay_seconds: 5,
                token_env: Some("MY_BOT".into()),
                token_file: Some("~/.config/latch/tg".into()),
                api_url: Some("https://tg.example.com".into()),
            }
        );
        assert_eq!(c.chat(), Some(-1001234));
        assert!(c.allows(222) && !c.allows(333));
    }

    #[test]
    fn defaults_are_the_first_allowed_user_twenty_seconds_and_the_default_variable() {
        let c = conf("[telegram]\nenabled = true\nallowed_users = [42, 7]\n");
        assert_eq!(c.chat(), Some(42));
        assert_eq!(c.delay_seconds, DEFAULT_DELAY_SECONDS);
        assert_eq!(c.token_env.as_deref(), Some(DEFAULT_TOKEN_ENV));
        assert_eq!(c.token_file, None);
        assert_eq!(c.api_url, None);
    }

    #[test]
    fn a_token_file_alone_does_not_read_the_default_variable() {
        let c = conf("[telegram]\nenabled = true\nallowed_users = [1]\ntoken_file = \"/run/secrets/tg\"\n");
        assert_eq!(c.token_env, None);
        assert_eq!(c.token_file.as_deref(), Some("/run/secrets/tg"));
    }

    #[test]
    fn the_section_is_off_unless_enabled_and_absent_when_not_written() {
        assert!(!conf("[telegram]\nallowed_users = [1]\n").enabled);
        assert_eq!(Policy::parse("").unwrap().telegram(), None);
        // Disabled, it needs nobody.
        assert!(!conf("[telegram]\nenabled = false\n").enabled);
    }

    #[test]
    fn a_typo_names_its_line_and_the_key_meant() {
        let p = problems("internal_domains = []\n\n[telegram]\nenabled = true\nalowed_users = [1]\n");
        // The typo, and the consequence (nobody may answer) is not piled on.
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].0, p[0].1), (ProblemKind::UnknownKey, 5));
        let e = Policy::parse("[telegram]\nenabled = true\nalowed_users = [1]\n").unwrap_err();
        assert!(e.problems[0].hint.contains("did you mean `allowed_users`"), "{e}");
    }

    #[test]
    fn enabled_without_allowed_users_is_refused() {
        let p = problems("[telegram]\nenabled = true\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, ProblemKind::MissingKey);
        assert!(p[0].2.contains("nobody may answer"), "{p:?}");
        let p = problems("[telegram]\nenabled = true\nallowed_users = []\n");
        assert_eq!((p[0].0, p[0].1), (ProblemKind::MissingKey, 3));
    }

    #[test]
    fn user_ids_must_be_positive_numbers_not_usernames() {
        let p = problems("[telegram]\nenabled = true\nallowed_users = [\"@alice\", -5, 1.5]\n");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p.iter().all(|x| x.1 == 3), "{p:?}");
        assert!(p[0].2.contains("user ids are numbers"), "{p:?}");
        assert_eq!(p[1].0, ProblemKind::OutOfRange);
        let p = problems("[telegram]\nallowed_users = 123\n");
        assert_eq!((p[0].0, p[0].1), (ProblemKind::WrongType, 2));
    }

    #[test]
    fn wrong_types_and_ranges_name_their_line() {
        let text = "[telegram]\nenabled = \"yes\"\nallowed_users = [1]\nchat_id = 0\ndelay_seconds = 99999\n\
                    token_env = \"MY BOT\"\ntoken_file = \"relative/tg\"\n";
        let lines: Vec<_> = problems(text).into_iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(
            lines,
            vec![
                (ProblemKind::WrongType, 2),
                (ProblemKind::WrongType, 4),
                (ProblemKind::OutOfRange, 5),
                (ProblemKind::WrongType, 6),
                (ProblemKind::WrongType, 7),
            ]
        );
    }

    #[test]
    fn a_token_in_the_policy_file_is_refused_wherever_it_is() {
        let p = problems("[telegram]\nenabled = true\nallowed_users = [1]\ntoken = \"x\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].1, 4);
        assert!(p[0].2.contains("never goes in the policy file"), "{p:?}");
        for key in ["token_env", "token_file", "api_url"] {
            let p = problems(&format!("[telegram]\nallowed_users = [1]\n{key} = \"{TOKEN}\"\n"));
            assert_eq!(p.len(), 1, "{key}: {p:?}");
            assert!(p[0].2.contains("looks like a bot token"), "{p:?}");
            // The problem never repeats the token.
            assert!(!p[0].2.contains(TOKEN));
        }
        assert!(looks_like_token(TOKEN));
        assert!(!looks_like_token("LATCH_TELEGRAM_TOKEN"));
        assert!(!looks_like_token("https://api.telegram.org:443"));
    }

    /// The rendered report (what `latch status`, the audit row and the log
    /// show) never quotes a token, however it was pasted.
    #[test]
    fn the_report_that_refuses_a_token_never_repeats_it() {
        let secret = TOKEN.split_once(':').map(|(_, s)| s).unwrap_or_default();
        for text in [
            format!("[telegram]\ntoken = \"{TOKEN}\"\n"),
            format!("[telegram]\nbot_token = \"{TOKEN}\"\n"),
            format!("[telegram]\ntoken_env = \"{TOKEN}\"\n"),
            format!("[telegram]\nallowed_users = [\"{TOKEN}\"]\n"),
            format!("[telegram]\nchat_id = \"{TOKEN}\"\n"),
            format!("[telegram]\napi_url = \"https://api.telegram.org/bot{TOKEN}\"\n"),
            format!("[telegram]\ntoken_env = {TOKEN}\n"),
            format!("[telegram]\n{TOKEN} = true\n"),
            format!("[telegram] # {TOKEN}\nenabled = 1\n"),
        ] {
            let Err(e) = Policy::parse(&text) else { panic!("accepted: {text}") };
            let report = e.render("policy.toml", &text);
            assert!(!report.contains(secret), "{report}");
            for p in &e.problems {
                assert!(!p.to_string().contains(secret), "{p}");
            }
        }
    }

    #[test]
    fn api_url_must_be_https_unless_it_is_this_machine() {
        for ok in ["https://api.telegram.org", "http://127.0.0.1:8081", "http://localhost:9/bots", "http://[::1]:80"] {
            assert_eq!(conf(&format!("[telegram]\napi_url = \"{ok}\"\n")).api_url.as_deref(), Some(ok));
        }
        for bad in
            ["http://tg.example.com", "ftp://x", "https://", "https://user:pw@tg.example.com", "api.telegram.org"]
        {
            let p = problems(&format!("[telegram]\n\napi_url = \"{bad}\"\n"));
            assert_eq!((p.len(), p[0].0, p[0].1), (1, ProblemKind::WrongType, 3), "{bad}: {p:?}");
        }
    }

    #[test]
    fn tool_calls_that_touch_the_token_file_are_denied_by_self_protection() {
        use crate::classify::Call;
        use crate::policy::Protected;
        let mut p = Policy::parse("[telegram]\ntoken_file = \"~/.config/latch-tg/token\"\n").unwrap();
        p.set_protected(Protected { paths: Vec::new(), home: Some("/home/ada".into()), ..Default::default() });
        for path in ["/home/ada/.config/latch-tg/token", "~/.config/latch-tg/token"] {
            let args = serde_json::json!({ "path": path });
            let e = p.explain(&Call { server: "fs", tool: "read_file", args: &args }, None);
            assert_eq!((e.decision, e.decided_by), (crate::class::Decision::Deny, "builtin"), "{path}");
        }
    }

    #[test]
    fn the_section_must_be_a_table() {
        let p = problems("telegram = true\n");
        assert_eq!((p[0].0, p[0].1), (ProblemKind::WrongType, 1));
    }
}
