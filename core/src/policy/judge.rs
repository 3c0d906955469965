//! Plain-English conditions: the `[judge]` section (which language model
//! judges them, and how long Latch waits for it), a rule's `condition`,
//! and what the evaluation exchanges with whoever asks the model.
//!
//! ```toml
//! [judge]
//! provider = "openai"                 # or "anthropic"
//! url = "http://127.0.0.1:8080/v1"    # optional for the two public APIs
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY"      # the NAME of a variable; never the key
//! timeout_ms = 5000
//! cache_size = 1000
//! cache_ttl_seconds = 3600
//!
//! [[rule]]
//! class = "SEND"
//! condition = "the e-mail goes to someone outside the team"
//! effect = "deny"
//! ```
//!
//! The core stays pure: evaluation never asks anything. When a rule with a
//! condition could change the outcome it returns [`Question`]s (and the
//! fail-closed decision *ask*); the daemon asks the model and evaluates
//! again with the [`Answer`]s. A [`Judgement::Unavailable`] (no answer in
//! time, an error, nonsense) makes that rule's outcome *ask*, whatever its
//! effect: the model can never be the reason a call is allowed unseen when
//! it did not actually say so.
//!
//! Design choices:
//! - The key never goes in the file: `api_key_env` names an environment
//!   variable of the daemon, and a key-like value there is refused.
//! - `url` is the API's base (`…/v1`); Latch appends `/chat/completions`
//!   (OpenAI-compatible) or `/messages` (Anthropic) unless the URL already
//!   ends with that path. Plain `http://` is accepted for local servers,
//!   but not together with a key for a host that is not this machine.
//! - A rule with a `condition` and no `[judge]` section is an error at the
//!   condition's line that says what to add.

use serde::Serialize;

use super::error::ProblemKind;
use super::read::{Cx, entries};
use crate::class::Decision;

type SValue<'i> = toml::Spanned<toml::de::DeValue<'i>>;

const JUDGE_KEYS: &[&str] =
    &["provider", "url", "model", "api_key_env", "timeout_ms", "cache_size", "cache_ttl_seconds"];

/// How long the daemon waits for the model, by default.
pub const DEFAULT_JUDGE_TIMEOUT_MS: u64 = 5000;
/// Answers kept, by default.
pub const DEFAULT_JUDGE_CACHE_SIZE: usize = 1000;
/// How long an answer is reused, by default.
pub const DEFAULT_JUDGE_CACHE_TTL_SECONDS: u64 = 3600;

const MAX_TIMEOUT_MS: u64 = 60_000;
const MAX_CACHE_SIZE: u64 = 1_000_000;
const MAX_CACHE_TTL: u64 = 7 * 24 * 3600;
/// Longest condition accepted, in characters.
const MAX_CONDITION_CHARS: usize = 2000;

/// The API a judge speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Any OpenAI-compatible chat completions endpoint: OpenAI, Ollama,
    /// vLLM, llama.cpp's server, LM Studio.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }

    /// The path appended to a base URL.
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Provider::OpenAi => "/chat/completions",
            Provider::Anthropic => "/messages",
        }
    }

    fn default_base(self) -> &'static str {
        match self {
            Provider::OpenAi => "https://api.openai.com/v1",
            Provider::Anthropic => "https://api.anthropic.com/v1",
        }
    }
}

/// `[judge]`: which model judges conditions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JudgeConf {
    pub provider: Provider,
    /// The full endpoint URL (base + [`Provider::endpoint_path`]).
    pub endpoint: String,
    pub model: String,
    /// Name of the environment variable holding the API key, if any.
    pub api_key_env: Option<String>,
    pub timeout_ms: u64,
    /// Answers kept; 0 = no cache.
    pub cache_size: usize,
    pub cache_ttl_seconds: u64,
}

impl JudgeConf {
    /// The time limit for a person: "5 s", "300 ms".
    pub fn timeout_text(&self) -> String {
        let ms = self.timeout_ms;
        if ms >= 1000 && ms.is_multiple_of(100) {
            let s = ms as f64 / 1000.0;
            if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{s} s") }
        } else {
            format!("{ms} ms")
        }
    }
}

/// A rule's `condition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    pub text: String,
    /// Line of `condition = …`.
    pub line: usize,
}

/// A condition the model must judge before the call can be decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The rule's id (its name, or `rule #N (line L)`).
    pub rule: String,
    /// Line of its `[[rule]]` header.
    pub line: usize,
    /// The user's words.
    pub condition: String,
    /// What the rule decides when the condition holds.
    pub effect: Decision,
}

/// What came back from the model about one condition on one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "judgement", rename_all = "snake_case")]
pub enum Judgement {
    Holds {
        reason: String,
    },
    DoesNotHold {
        reason: String,
    },
    /// No usable answer: unreachable, too slow, an error status, not the
    /// JSON asked for. `why` is for a person ("the model did not answer in
    /// 5 s"). The rule's outcome becomes *ask*.
    Unavailable {
        why: String,
    },
}

/// The answer to one [`Question`]; it applies to the rule with this id and
/// exactly this condition (a policy reloaded meanwhile may have changed
/// either, and then the question is asked again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub rule: String,
    pub condition: String,
    pub judgement: Judgement,
}

impl Answer {
    pub fn to(q: &Question, judgement: Judgement) -> Answer {
        Answer { rule: q.rule.clone(), condition: q.condition.clone(), judgement }
    }
}

/// Parses `[judge]`. A section with mistakes still counts as present (its
/// own problems are reported, and a policy with problems is refused
/// anyway), so rules with conditions are not also told to add one.
pub(crate) fn parse(cx: &mut Cx<'_>, v: &SValue<'_>) -> Option<JudgeConf> {
    let before = cx.problems.len();
    let conf = parse_table(cx, v);
    match conf {
        Some(c) if cx.problems.len() == before => Some(c),
        _ => Some(JudgeConf {
            provider: Provider::OpenAi,
            endpoint: String::new(),
            model: String::new(),
            api_key_env: None,
            timeout_ms: DEFAULT_JUDGE_TIMEOUT_MS,
            cache_size: 0,
            cache_ttl_seconds: DEFAULT_JUDGE_CACHE_TTL_SECONDS,
        }),
    }
}

fn parse_table(cx: &mut Cx<'_>, v: &SValue<'_>) -> Option<JudgeConf> {
    let example = "`[judge]` followed by `provider = \"openai\"` and `model = \"gpt-4o-mini\"`";
    let t = cx.table(v, "judge", example)?;
    let before = cx.problems.len();
    let mut provider = None;
    let mut url: Option<(String, std::ops::Range<usize>)> = None;
    let mut model = None;
    let mut api_key_env = None;
    let mut timeout_ms = DEFAULT_JUDGE_TIMEOUT_MS;
    let mut cache_size = DEFAULT_JUDGE_CACHE_SIZE;
    let mut cache_ttl_seconds = DEFAULT_JUDGE_CACHE_TTL_SECONDS;
    for (k, x) in entries(t) {
        match k.get_ref().as_ref() {
            "provider" => {
                let Some(s) = cx.str(x, "provider", "`provider = \"openai\"`") else { continue };
                provider = match s.to_ascii_lowercase().as_str() {
                    "openai" => Some(Provider::OpenAi),
                    "anthropic" => Some(Provider::Anthropic),
                    _ => {
                        cx.problem(
                            ProblemKind::UnknownName,
                            x.span(),
                            format!("unknown provider {s:?}"),
                            "use \"openai\" for any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp, LM \
                             Studio) or \"anthropic\" for Anthropic's Messages API",
                        );
                        continue;
                    }
                };
            }
            "url" => {
                if let Some(s) = cx.str(x, "url", "`url = \"http://127.0.0.1:8080/v1\"`") {
                    url = Some((s.trim().to_owned(), x.span()));
                }
            }
            "model" => {
                if let Some(s) = cx.str(x, "model", "`model = \"gpt-4o-mini\"`") {
                    if s.trim().is_empty() {
                        cx.problem(ProblemKind::WrongType, x.span(), "`model` is empty", "name the model to ask");
                    } else {
                        model = Some(s.trim().to_owned());
                    }
                }
            }
            "api_key_env" => {
                if let Some(s) = cx.str(x, "api_key_env", "`api_key_env = \"OPENAI_API_KEY\"`") {
                    let name_like = !s.is_empty()
                        && !s.as_bytes()[0].is_ascii_digit()
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if name_like && s.len() <= 64 {
                        api_key_env = Some(s.to_owned());
                    } else {
                        cx.problem(
                            ProblemKind::WrongType,
                            x.span(),
                            "`api_key_env` must be the NAME of an environment variable, like \"OPENAI_API_KEY\"",
                            "never put the key itself in this file: export it in the daemon's environment (e.g. \
                             `export OPENAI_API_KEY=…` before `latch daemon`) and write its name here",
                        );
                    }
                }
            }
            "timeout_ms" => {
                if let Some(n) = cx.int(
                    x,
                    "timeout_ms",
                    (1, MAX_TIMEOUT_MS),
                    "1 to 60000 milliseconds; the call waits this long for the model (5000 is the default)",
                ) {
                    timeout_ms = n;
                }
            }
            "cache_size" => {
                if let Some(n) =
                    cx.int(x, "cache_size", (0, MAX_CACHE_SIZE), "0 (no cache) to 1000000 answers; 1000 is the default")
                {
                    cache_size = n as usize;
                }
            }
            "cache_ttl_seconds" => {
                if let Some(n) = cx.int(
                    x,
                    "cache_ttl_seconds",
                    (1, MAX_CACHE_TTL),
                    "1 second to a week (604800); 3600 is the default",
                ) {
                    cache_ttl_seconds = n;
                }
            }
            "api_key" | "key" | "token" => cx.problem(
                ProblemKind::UnknownKey,
                k.span(),
                format!("`{}` in [judge]: the API key never goes in the policy file", k.get_ref()),
                "remove it, export the key in the daemon's environment (e.g. `OPENAI_API_KEY`) and write `api_key_env \
                 = \"OPENAI_API_KEY\"`",
            ),
            _ => cx.unknown_key(k, "in [judge]", JUDGE_KEYS),
        }
    }
    let at = v.span();
    if provider.is_none() && !t.iter().any(|(k, _)| k.get_ref() == "provider") {
        cx.problem(
            ProblemKind::MissingKey,
            at.start..at.start + 1,
            "[judge] has no `provider`",
            "add `provider = \"openai\"` (any OpenAI-compatible server) or `provider = \"anthropic\"`",
        );
    }
    if model.is_none() && !t.iter().any(|(k, _)| k.get_ref() == "model") {
        cx.problem(
            ProblemKind::MissingKey,
            at.start..at.start + 1,
            "[judge] has no `model`",
            "add the model to ask, e.g. `model = \"gpt-4o-mini\"` or `model = \"claude-haiku-4-5\"`",
        );
    }
    let provider = provider?;
    if provider == Provider::Anthropic && api_key_env.is_none() && cx.problems.len() == before {
        cx.problem(
            ProblemKind::MissingKey,
            at.start..at.start + 1,
            "[judge] with provider \"anthropic\" has no `api_key_env`",
            "add `api_key_env = \"ANTHROPIC_API_KEY\"` and export that variable where the daemon runs",
        );
    }
    let endpoint = match url {
        None => format!("{}{}", provider.default_base(), provider.endpoint_path()),
        Some((u, span)) => match endpoint(provider, &u, api_key_env.is_some()) {
            Ok(e) => e,
            Err((message, hint)) => {
                cx.problem(ProblemKind::WrongType, span, message, hint);
                return None;
            }
        },
    };
    if cx.problems.len() > before {
        return None;
    }
    Some(JudgeConf { provider, endpoint, model: model?, api_key_env, timeout_ms, cache_size, cache_ttl_seconds })
}

/// The endpoint for a `url`, or what is wrong with it.
fn endpoint(provider: Provider, url: &str, with_key: bool) -> Result<String, (String, String)> {
    let example = match provider {
        Provider::OpenAi => "\"http://127.0.0.1:8080/v1\" or \"https://api.openai.com/v1\"",
        Provider::Anthropic => "\"https://api.anthropic.com/v1\"",
    };
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
            (s.to_ascii_lowercase(), r)
        }
        _ => {
            return Err((
                format!("`url = {url:?}` is not an http:// or https:// URL"),
                format!("write the API's base URL, like {example}"),
            ));
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host.is_empty() || url.chars().any(char::is_whitespace) || url.contains(['?', '#']) {
        return Err((
            format!("`url = {url:?}` has no usable host"),
            format!("write the API's base URL, like {example}"),
        ));
    }
    if authority.contains('@') {
        return Err((
            format!("`url = {url:?}` carries a user name or password"),
            "never put credentials in the policy file: name an environment variable with `api_key_env`".to_owned(),
        ));
    }
    let local = host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1";
    if scheme == "http" && with_key && !local {
        return Err((
            format!("`url = {url:?}` would send the API key unencrypted to {host}"),
            "use https://, or drop `api_key_env` for a server on your own network that needs no key".to_owned(),
        ));
    }
    let trimmed = url.trim_end_matches('/');
    let path = provider.endpoint_path();
    Ok(if trimmed.ends_with(path) { trimmed.to_owned() } else { format!("{trimmed}{path}") })
}

/// Parses a rule's `condition = "…"`.
pub(crate) fn condition(cx: &mut Cx<'_>, v: &SValue<'_>) -> Option<Condition> {
    let s = cx.str(v, "condition", "`condition = \"the e-mail goes to someone outside the team\"`")?;
    let text = s.trim();
    if text.is_empty() {
        cx.problem(
            ProblemKind::WrongType,
            v.span(),
            "`condition` is empty",
            "say in plain English when the rule applies, or remove `condition`",
        );
        return None;
    }
    if text.chars().count() > MAX_CONDITION_CHARS {
        cx.problem(
            ProblemKind::OutOfRange,
            v.span(),
            format!("`condition` is longer than {MAX_CONDITION_CHARS} characters"),
            "keep a condition to a sentence or two; split long ones into several rules",
        );
        return None;
    }
    Some(Condition { text: text.to_owned(), line: cx.line(v.span().start) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_the_provider_path_once() {
        let e = |u: &str| endpoint(Provider::OpenAi, u, false).unwrap();
        assert_eq!(e("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(e("http://127.0.0.1:8080/v1/"), "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(e("http://localhost:11434/v1/chat/completions"), "http://localhost:11434/v1/chat/completions");
        assert_eq!(
            endpoint(Provider::Anthropic, "https://api.anthropic.com/v1", true).unwrap(),
            "https://api.anthropic.com/v1/messages"
        );
    }

    #[test]
    fn keys_never_travel_over_plain_http_to_another_host() {
        assert!(endpoint(Provider::OpenAi, "http://10.0.0.5:8000/v1", true).is_err());
        assert!(endpoint(Provider::OpenAi, "http://10.0.0.5:8000/v1", false).is_ok());
        assert!(endpoint(Provider::OpenAi, "http://127.0.0.1:8000/v1", true).is_ok());
        assert!(endpoint(Provider::OpenAi, "http://[::1]:8000/v1", true).is_ok());
        assert!(endpoint(Provider::OpenAi, "https://user:pw@example.com/v1", true).is_err());
        assert!(endpoint(Provider::OpenAi, "ftp://example.com", false).is_err());
    }

    #[test]
    fn timeouts_read_naturally() {
        let mut c = JudgeConf {
            provider: Provider::OpenAi,
            endpoint: String::new(),
            model: "m".into(),
            api_key_env: None,
            timeout_ms: 5000,
            cache_size: 1,
            cache_ttl_seconds: 1,
        };
        assert_eq!(c.timeout_text(), "5 s");
        c.timeout_ms = 2500;
        assert_eq!(c.timeout_text(), "2.5 s");
        c.timeout_ms = 300;
        assert_eq!(c.timeout_text(), "300 ms");
    }
}
