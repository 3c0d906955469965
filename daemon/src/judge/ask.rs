//! Asking the model over HTTP: one time limit per question, questions of
//! one call concurrently, anything but the answer asked for is no answer.

use std::time::Duration;

use latch_core::policy::{Answer, JudgeConf, Judgement, Provider, Question};
use serde_json::Value;

use super::prompt::{CallView, clip, parse_response, request_body};

/// Largest response body read.
const MAX_BODY: usize = 1 << 20;
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// An HTTP client for this judge: no redirects; no proxy for a model on
/// this machine.
pub(super) fn client(conf: &JudgeConf) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latch/", env!("CARGO_PKG_VERSION")));
    let local = reqwest::Url::parse(&conf.endpoint).ok().is_some_and(|u| {
        let host = u.host_str().unwrap_or("");
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    });
    if local {
        b = b.no_proxy();
    }
    b.build().map_err(|e| format!("could not set up an HTTP client: {e}"))
}

/// Asks the model one question about one call. Never fails: a missing
/// answer is [`Judgement::Unavailable`] with the reason for a person.
pub async fn ask(http: &reqwest::Client, conf: &JudgeConf, q: &Question, view: &CallView<'_>) -> Judgement {
    let body = request_body(conf, &q.condition, q.effect, view);
    ask_body(http, conf, body).await
}

async fn ask_body(http: &reqwest::Client, conf: &JudgeConf, body: Value) -> Judgement {
    let key = match &conf.api_key_env {
        None => None,
        Some(name) => match std::env::var(name) {
            Ok(k) if !k.trim().is_empty() => Some(k.trim().to_owned()),
            _ => {
                let why = format!("the environment variable {name} (api_key_env in [judge]) is not set for the daemon");
                tracing::warn!("judge: {why}");
                return Judgement::Unavailable { why };
            }
        },
    };
    let mut req = http.post(&conf.endpoint).json(&body);
    req = match (conf.provider, key) {
        (Provider::OpenAi, Some(k)) => req.bearer_auth(k),
        (Provider::OpenAi, None) => req,
        (Provider::Anthropic, k) => {
            req.header("x-api-key", k.unwrap_or_default()).header("anthropic-version", ANTHROPIC_VERSION)
        }
    };
    let limit = Duration::from_millis(conf.timeout_ms);
    let outcome = tokio::time::timeout(limit, async {
        let mut resp = req.send().await.map_err(|e| unreachable_why(conf, &e))?;
        let status = resp.status();
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("the model's answer broke off: {}", root(&e)))? {
            if buf.len() + chunk.len() > MAX_BODY {
                return Err("the model's answer is larger than 1 MiB".to_owned());
            }
            buf.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 | 403 => conf
                    .api_key_env
                    .as_ref()
                    .map(|n| format!(" (check the key in {n})"))
                    .unwrap_or_else(|| " (does it need a key? set api_key_env in [judge])".to_owned()),
                404 => " (check url and model in [judge])".to_owned(),
                _ => String::new(),
            };
            let text = String::from_utf8_lossy(&buf);
            tracing::warn!("judge: {} answered HTTP {status}: {}", conf.endpoint, clip(text.trim(), 300));
            return Err(format!("the model's endpoint answered HTTP {}{hint}", status.as_u16()));
        }
        parse_response(conf.provider, &buf).map_err(|e| format!("the model gave no usable answer: {e}"))
    })
    .await;
    match outcome {
        Err(_) => {
            let why = format!("the model did not answer in {}", conf.timeout_text());
            tracing::warn!("judge: {why} ({})", conf.endpoint);
            Judgement::Unavailable { why }
        }
        Ok(Err(why)) => {
            tracing::warn!("judge: {why}");
            Judgement::Unavailable { why }
        }
        Ok(Ok((true, reason))) => Judgement::Holds { reason },
        Ok(Ok((false, reason))) => Judgement::DoesNotHold { reason },
    }
}

fn unreachable_why(conf: &JudgeConf, e: &reqwest::Error) -> String {
    format!("could not reach the model at {} ({})", conf.endpoint, root(e))
}

/// The innermost cause: "Connection refused (os error 111)".
fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Answers every question for one call, concurrently, with its own client
/// (for `latch policy explain --ask-model`).
pub async fn ask_all(conf: &JudgeConf, questions: &[Question], view: &CallView<'_>) -> Vec<Answer> {
    let http = match client(conf) {
        Ok(h) => h,
        Err(why) => {
            return questions.iter().map(|q| Answer::to(q, Judgement::Unavailable { why: why.clone() })).collect();
        }
    };
    ask_concurrently(&http, conf, questions, view).await
}

pub(super) async fn ask_concurrently(
    http: &reqwest::Client,
    conf: &JudgeConf,
    questions: &[Question],
    view: &CallView<'_>,
) -> Vec<Answer> {
    let mut set = tokio::task::JoinSet::new();
    for (i, q) in questions.iter().enumerate() {
        let body = request_body(conf, &q.condition, q.effect, view);
        let (http, conf) = (http.clone(), conf.clone());
        set.spawn(async move { (i, ask_body(&http, &conf, body).await) });
    }
    let mut out: Vec<Option<Judgement>> = vec![None; questions.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, j)) = done {
            out[i] = Some(j);
        }
    }
    questions
        .iter()
        .zip(out)
        .map(|(q, j)| {
            Answer::to(q, j.unwrap_or(Judgement::Unavailable { why: "asking the model failed inside Latch".into() }))
        })
        .collect()
}
