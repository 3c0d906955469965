//! The approval PIN: what proves that a person, not a process running as
//! the same user, answers an approval, accepts a looser policy or changes
//! the PIN.
//!
//! The PIN is kept only as a slow salted hash (PBKDF2-HMAC-SHA256, see
//! [`kdf`]) in `pin.json` in the daemon's data folder (mode 0600). One
//! PBKDF2 run gives a 32-byte master `m`; the file stores
//! `SHA-256("latch pin verifier v1" ‖ m)`, and the key that authenticates
//! the accepted policy is `HMAC(m, "latch accepted policy v1")`, which is
//! never stored: reading the file does not give it. The daemon learns the
//! key when someone types the PIN (a console unlocking, an answer, `latch
//! pin set`) and keeps it in memory only.
//!
//! Clients send the PIN itself over the socket (the daemon's peer is
//! checked to be the same user): a proof derived from a stored value would
//! make that stored value the credential, and the agent can read the
//! daemon's files.
//!
//! Wrong PINs: checks run one at a time; after [`FREE_FAILURES`] wrong
//! PINs in a row every further check waits a backoff that doubles, up to
//! [`MAX_BACKOFF_MS`], during which even the right PIN is refused.

pub mod kdf;
mod peer;
pub(crate) mod record;

use std::collections::HashMap;
use std::sync::Mutex;

pub use peer::login_of;
pub use record::{PinError, PinRecord};

/// PBKDF2 iterations for a new PIN (OWASP's 2023 figure for
/// PBKDF2-HMAC-SHA256). Stored with the hash, so it can grow later.
pub const ITERATIONS: u32 = 600_000;
/// Shortest PIN accepted.
pub const MIN_PIN_CHARS: usize = 4;
/// Longest PIN accepted (a passphrase is welcome; a megabyte is not).
pub const MAX_PIN_BYTES: usize = 1024;
/// Wrong PINs in a row that cost nothing more than the hash (typos).
pub const FREE_FAILURES: u32 = 3;
/// The longest wait between checks after many wrong PINs.
pub const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The key the accepted policy is authenticated with.
pub type Key = [u8; 32];

/// Why a PIN check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a PIN protects approvals and none was given: a person must answer in Latch")]
    Missing,
    #[error("wrong PIN ({0} wrong in a row)")]
    Wrong(u32),
    #[error("too many wrong PINs: PIN checks are paused for {0} s more")]
    Paused(i64),
    #[error("the PIN is not valid: {0}")]
    Invalid(String),
}

/// Who is on one connection, as the daemon observed it.
#[derive(Clone, Debug)]
struct Peer {
    /// The peer's login (from its user id).
    who: String,
    /// Its process id, for the record of a refusal.
    pid: Option<i32>,
    /// A console typed the PIN on this connection.
    unlocked: bool,
}

#[derive(Default)]
struct State {
    record: Option<PinRecord>,
    key: Option<Key>,
    failures: u32,
    paused_until: i64,
    peers: HashMap<u64, Peer>,
}

/// The daemon's PIN state: the record, the key once known, the wrong-PIN
/// counter and which connections are unlocked.
pub struct Gate {
    state: Mutex<State>,
    /// One check at a time: parallel connections cannot multiply the rate.
    checking: tokio::sync::Mutex<()>,
    file: std::path::PathBuf,
}

impl Gate {
    /// Reads `pin.json` from `data_dir`. A record that cannot be read is
    /// reported and treated as set but matching no PIN (fail closed): a
    /// person removes the broken file by hand and sets a new PIN. So is a
    /// missing record when `pin_was_set` (an accepted-policy record exists,
    /// which only a PIN creates): deleting the file must not unprotect.
    pub fn load(data_dir: &std::path::Path, pin_was_set: bool) -> (Gate, Option<String>) {
        let file = data_dir.join("pin.json");
        let (record, problem) = match PinRecord::load(&file) {
            Ok(None) if pin_was_set => (
                Some(PinRecord::unusable()),
                Some(format!(
                    "{} is missing although a PIN was set (an accepted-policy record exists): approvals stay locked. \
                     If you removed it on purpose, also remove accepted-policy.json beside it and set a new PIN",
                    file.display()
                )),
            ),
            Ok(r) => (r, None),
            Err(e) => (Some(PinRecord::unusable()), Some(e.to_string())),
        };
        let gate = Gate {
            state: Mutex::new(State { record, ..Default::default() }),
            checking: tokio::sync::Mutex::new(()),
            file,
        };
        (gate, problem)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_set(&self) -> bool {
        self.state().record.is_some()
    }

    /// The accepted-policy key, once someone typed the PIN.
    pub fn key(&self) -> Option<Key> {
        self.state().key
    }

    pub fn connected(&self, conn: u64, who: String, pid: Option<i32>) {
        self.state().peers.insert(conn, Peer { who, pid, unlocked: false });
    }

    pub fn disconnected(&self, conn: u64) {
        self.state().peers.remove(&conn);
    }

    /// Who is on `conn`, as observed (never as claimed).
    pub fn who(&self, conn: u64) -> String {
        self.state().peers.get(&conn).map(|p| p.who.clone()).unwrap_or_else(|| "unknown peer".into())
    }

    /// The peer's process id, when the socket told it.
    pub fn pid(&self, conn: u64) -> Option<i32> {
        self.state().peers.get(&conn).and_then(|p| p.pid)
    }

    pub fn is_unlocked(&self, conn: u64) -> bool {
        let s = self.state();
        s.record.is_none() || s.peers.get(&conn).is_some_and(|p| p.unlocked)
    }

    pub fn unlock(&self, conn: u64) {
        if let Some(p) = self.state().peers.get_mut(&conn) {
            p.unlocked = true;
        }
    }

    /// Checks `pin` against the record. `Ok(None)` when no PIN is set.
    pub async fn check(&self, pin: Option<&str>, now_ms: i64) -> Result<Option<Key>, Refusal> {
        let _one = self.checking.lock().await;
        let record = {
            let s = self.state();
            let Some(record) = s.record.clone() else { return Ok(None) };
            if s.paused_until > now_ms {
                return Err(Refusal::Paused((s.paused_until - now_ms + 999) / 1000));
            }
            record
        };
        let Some(pin) = pin else { return Err(Refusal::Missing) };
        let given = pin.to_owned();
        let started = std::time::Instant::now();
        let derived = tokio::task::spawn_blocking(move || record.matches(&given)).await.unwrap_or(None);
        // The pause counts from the end of this check, not its start.
        let now_ms = now_ms + started.elapsed().as_millis() as i64;
        let mut s = self.state();
        match derived {
            Some(key) => {
                s.failures = 0;
                s.key = Some(key);
                Ok(Some(key))
            }
            None => {
                s.failures += 1;
                let pause = backoff_ms(s.failures);
                if pause > 0 {
                    s.paused_until = now_ms + pause;
                }
                Err(Refusal::Wrong(s.failures))
            }
        }
    }

    /// Sets a new PIN (the old one, when one is set, must be `old`).
    /// Returns the new key and the old one (to move what the old key
    /// authenticated over).
    pub async fn set(&self, old: Option<&str>, new: &str, now_ms: i64) -> Result<(Key, Option<Key>), Refusal> {
        validate(new).map_err(Refusal::Invalid)?;
        let old_key = self.check(old, now_ms).await?;
        let _one = self.checking.lock().await;
        let new = new.to_owned();
        let made = tokio::task::spawn_blocking(move || PinRecord::create(&new, ITERATIONS)).await;
        let (record, key) = match made {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(Refusal::Invalid(e.to_string())),
            Err(e) => return Err(Refusal::Invalid(e.to_string())),
        };
        record.save(&self.file).map_err(|e| Refusal::Invalid(e.to_string()))?;
        let mut s = self.state();
        s.record = Some(record);
        s.key = Some(key);
        s.failures = 0;
        Ok((key, old_key))
    }
}

/// How long checks pause after `failures` wrong PINs in a row.
pub fn backoff_ms(failures: u32) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(32);
    (1000i64 << doublings).min(MAX_BACKOFF_MS)
}

/// What a PIN must be.
pub fn validate(pin: &str) -> Result<(), String> {
    if pin.chars().count() < MIN_PIN_CHARS {
        return Err(format!("a PIN has at least {MIN_PIN_CHARS} characters (a passphrase is better)"));
    }
    if pin.len() > MAX_PIN_BYTES {
        return Err(format!("a PIN has at most {MAX_PIN_BYTES} bytes"));
    }
    if pin.chars().any(char::is_control) {
        return Err("a PIN has no control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_the_free_failures_and_is_capped() {
        assert_eq!(backoff_ms(1), 0);
        assert_eq!(backoff_ms(2), 0);
        assert_eq!(backoff_ms(3), 1000);
        assert_eq!(backoff_ms(4), 2000);
        assert_eq!(backoff_ms(10), 128_000);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn a_six_digit_pin_takes_years_online() {
        // After the cap, one guess an hour: a million PINs, half on average.
        let hours = 500_000.0 * (MAX_BACKOFF_MS as f64 / 3_600_000.0);
        assert!(hours / 24.0 / 365.0 > 50.0);
    }

    #[test]
    fn validate_refuses_short_and_control_pins() {
        assert!(validate("123").is_err());
        assert!(validate("1234").is_ok());
        assert!(validate("12\n34").is_err());
        assert!(validate(&"x".repeat(MAX_PIN_BYTES + 1)).is_err());
    }

    #[tokio::test]
    async fn wrong_pins_pause_checks_even_for_the_right_pin() {
        let dir = std::env::temp_dir().join(format!("latch-pin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (gate, problem) = Gate::load(&dir, false);
        assert!(problem.is_none());
        assert_eq!(gate.check(Some("whatever"), 0).await, Ok(None), "no PIN: nothing to check");
        gate.set(None, "2468", 0).await.unwrap();
        assert!(gate.set(None, "1357", 0).await.is_err(), "changing needs the old PIN");
        for n in 1..FREE_FAILURES {
            assert_eq!(gate.check(Some("0000"), 0).await, Err(Refusal::Wrong(n)));
        }
        assert_eq!(gate.check(Some("0000"), 0).await, Err(Refusal::Wrong(FREE_FAILURES)));
        assert!(matches!(gate.check(Some("2468"), 10).await, Err(Refusal::Paused(1..))));
        assert!(gate.check(Some("2468"), 60_000).await.unwrap().is_some());
        assert_eq!(gate.check(None, 60_000).await, Err(Refusal::Missing));
        // A second gate reads the same record.
        let (again, _) = Gate::load(&dir, false);
        assert!(again.is_set() && again.key().is_none());
        assert_eq!(again.check(Some("2468"), 0).await.unwrap(), gate.key());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
