//! One OTLP/HTTP request and what its answer means: delivered, worth
//! trying again (no connection, a timeout, 429, 5xx; `Retry-After`
//! honoured), or refused for good (any other status: a request the
//! collector will never take).
//!
//! One exception to "4xx is final": 401, 403 and 404 say the *setup* is
//! wrong (the headers, the endpoint), not the records. Refusing each batch
//! for good would destroy every record until a person fixes it, so these
//! are retried like a collector that is away: the rows wait in the log
//! (bounded by `max_queue_rows`) and `latch status` says what to fix.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

/// First pause after a failure; doubled per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Most of a collector's answer that is read (an OTLP answer is a few
/// bytes; a hostile one could be endless).
const MAX_ANSWER: usize = 64 * 1024;
/// Longest `Retry-After` taken as said.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// What came of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// 2xx: the records are the collector's; `rejected` of them it refused
    /// (partial success).
    Delivered { rejected: u64 },
    /// Try the same request again, after `after` when the collector said.
    Retry { after: Option<Duration>, why: String },
    /// Never sent again.
    Refused { status: u16, why: String },
}

/// An HTTP client for the collector: no redirects (the headers must not
/// travel on), no proxy for a collector on this machine.
pub fn client(timeout: Duration, loopback: bool) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("latch/", env!("CARGO_PKG_VERSION")));
    if loopback {
        b = b.no_proxy();
    }
    b.build()
}

/// POSTs `body` (an encoded `ExportLogsServiceRequest`) to `url`.
pub async fn post(client: &reqwest::Client, url: &str, headers: &HeaderMap, body: Vec<u8>) -> Sent {
    let resp = client
        .post(url)
        .headers(headers.clone())
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(body)
        .send()
        .await;
    let mut resp = match resp {
        Ok(r) => r,
        // reqwest's errors name the URL, never the headers.
        Err(e) => return Sent::Retry { after: None, why: format!("cannot reach the collector: {}", plain(&e)) },
    };
    let status = resp.status();
    let after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry_after);
    if status.is_success() {
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            if body.len() + chunk.len() > MAX_ANSWER {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        return Sent::Delivered { rejected: super::otlp::rejected_in(&body) };
    }
    let code = status.as_u16();
    if code == 429 || status.is_server_error() {
        return Sent::Retry { after, why: format!("the collector answered HTTP {code}") };
    }
    if matches!(code, 401 | 403) {
        let why = format!(
            "the collector refused the credentials (HTTP {code}): set them in the daemon's environment \
             (OTEL_EXPORTER_OTLP_HEADERS) and restart it; the rows wait"
        );
        return Sent::Retry { after, why };
    }
    if code == 404 {
        let why = "the collector has no OTLP logs endpoint at this URL (HTTP 404): check [export] otlp_endpoint; \
                   the rows wait"
            .to_owned();
        return Sent::Retry { after, why };
    }
    Sent::Refused { status: code, why: format!("the collector refused the records with HTTP {code}") }
}

/// An error's message and its causes, on one line.
fn plain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

/// `Retry-After` in seconds (an HTTP date is not honoured: the backoff
/// applies), at most [`RETRY_AFTER_MAX`].
pub fn retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX))
}

/// Exponential backoff with jitter: each pause is drawn between half and
/// all of the current step, so many daemons behind one collector do not
/// retry in step.
#[derive(Debug)]
pub struct Backoff {
    step: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(seed: u64) -> Backoff {
        Backoff { step: BACKOFF_MIN, seed: seed | 1 }
    }

    /// The pause before the next try (`asked`: the collector's
    /// `Retry-After`, which is waited out in full).
    pub fn next(&mut self, asked: Option<Duration>) -> Duration {
        // xorshift64: jitter needs no secret.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let step = self.step;
        self.step = (self.step * 2).min(BACKOFF_MAX);
        let half = step / 2;
        let jitter = Duration::from_nanos(self.seed % (half.as_nanos() as u64).max(1));
        let pause = half + jitter;
        asked.map_or(pause, |a| a.max(pause))
    }

    pub fn reset(&mut self) {
        self.step = BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let mut b = Backoff::new(12345);
        let mut step = BACKOFF_MIN;
        for _ in 0..12 {
            let p = b.next(None);
            assert!(p >= step / 2 && p <= step, "{p:?} for step {step:?}");
            step = (step * 2).min(BACKOFF_MAX);
        }
        assert!(b.next(Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        b.reset();
        assert!(b.next(None) <= BACKOFF_MIN);
        // Two daemons do not pause alike.
        let (mut x, mut y) = (Backoff::new(1), Backoff::new(2));
        let (px, py): (Vec<_>, Vec<_>) = (0..5).map(|_| (x.next(None), y.next(None))).unzip();
        assert_ne!(px, py);
    }

    #[test]
    fn retry_after_in_seconds_is_read_and_capped() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 100000 "), Some(RETRY_AFTER_MAX));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
