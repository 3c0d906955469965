//! `pin.json`: the PIN's salted slow hash, written atomically, mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Key;
use super::kdf::{self, Hmac};

const KDF: &str = "pbkdf2-hmac-sha256";

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a PIN record Latch can read ({why}); approvals stay locked: remove it and run `latch pin set`"
    )]
    Unreadable { path: String, why: String },
    #[error("no randomness for a salt: {0}")]
    Random(std::io::Error),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    kdf: String,
    iterations: u32,
    salt: String,
    verifier: String,
}

impl PinRecord {
    /// A record no PIN matches (the file was there but unreadable).
    pub fn unusable() -> PinRecord {
        PinRecord { kdf: "unusable".into(), iterations: 0, salt: String::new(), verifier: String::new() }
    }

    /// A new record for `pin`, and its key.
    pub fn create(pin: &str, iterations: u32) -> Result<(PinRecord, Key), PinError> {
        let mut salt = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut salt))
            .map_err(PinError::Random)?;
        let (verifier, key) = derive(pin, &salt, iterations);
        let record = PinRecord { kdf: KDF.into(), iterations, salt: kdf::hex(&salt), verifier: kdf::hex(&verifier) };
        Ok((record, key))
    }

    /// The key, when `pin` is the PIN. Slow on purpose: run it off the
    /// async runtime.
    pub fn matches(&self, pin: &str) -> Option<Key> {
        if self.kdf != KDF || self.iterations == 0 {
            return None;
        }
        let salt = kdf::unhex(&self.salt)?;
        let stored = kdf::unhex(&self.verifier)?;
        let (verifier, key) = derive(pin, &salt, self.iterations);
        kdf::same(&verifier, &stored).then_some(key)
    }

    /// `Ok(None)` when there is no file.
    pub fn load(path: &Path) -> Result<Option<PinRecord>, PinError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PinError::Io { path: shown, source: e }),
        };
        let record: PinRecord = serde_json::from_str(&text)
            .map_err(|e| PinError::Unreadable { path: shown.clone(), why: e.to_string() })?;
        if record.kdf != KDF || record.iterations == 0 {
            return Err(PinError::Unreadable { path: shown, why: format!("unknown kdf {}", record.kdf) });
        }
        Ok(Some(record))
    }

    /// Written to a temporary file (0600) and renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<(), PinError> {
        let io = |source| PinError::Io { path: path.display().to_string(), source };
        write_private(path, serde_json::to_string_pretty(self).unwrap_or_default().as_bytes()).map_err(io)
    }
}

/// The verifier stored and the key kept in memory, from one PBKDF2 run.
fn derive(pin: &str, salt: &[u8], iterations: u32) -> ([u8; 32], Key) {
    let master = kdf::pbkdf2(pin.as_bytes(), salt, iterations);
    let mut h = Sha256::new();
    h.update(b"latch pin verifier v1");
    h.update(master);
    let verifier: [u8; 32] = h.finalize().into();
    let key = Hmac::new(&master).mac(&[b"latch accepted policy v1"]);
    (verifier, key)
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("latch-tmp");
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_matches_its_pin_only_and_never_holds_the_key() {
        let (record, key) = PinRecord::create("correct horse", 1000).unwrap();
        assert_eq!(record.matches("correct horse"), Some(key));
        assert_eq!(record.matches("correct horsf"), None);
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains(&kdf::hex(&key)), "the key is never stored");
        let (other, other_key) = PinRecord::create("correct horse", 1000).unwrap();
        assert_ne!(record.salt, other.salt, "a fresh salt each time");
        assert_ne!(key, other_key);
        assert_eq!(PinRecord::unusable().matches(""), None);
    }
}
