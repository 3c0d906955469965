//! The policy the person accepted, and what is in force because of it.
//!
//! Once an approval PIN is set, a policy change takes force at once only
//! when it only tightens ([`latch_core::policy::compare`]); any other waits
//! as pending until the person accepts it with the PIN. The last accepted
//! policy stays in force meanwhile, also across restarts: its text lives in
//! `accepted-policy.json` in the daemon's data folder with an HMAC under a
//! key derived from the PIN ([`crate::pin`]), which the agent — able to
//! write the daemon's files — cannot compute. A daemon that has not learnt
//! the key since it started cannot tell a genuine record from a forged one:
//! it enforces the stricter of that policy and the built-in defaults until
//! someone types the PIN; a record that then fails verification is replaced
//! by the built-in defaults (and the file's policy waits for acceptance).
//!
//! Without a PIN nobody could accept anything: changes apply as they come,
//! and `latch status`, `doctor` and the console say approvals are
//! unprotected.

use std::path::{Path, PathBuf};

use latch_core::Policy;
use latch_core::policy::{DEFAULT_POLICY, PolicyDiff, compare};
use latch_proto::PolicyPending;
use serde::{Deserialize, Serialize};

use crate::pin::Key;
use crate::pin::kdf::{self, Hmac};

const FILE: &str = "accepted-policy.json";

#[derive(Serialize, Deserialize)]
struct Record {
    text: String,
    mac: String,
}

fn mac(key: &Key, text: &str) -> String {
    kdf::hex(&Hmac::new(key).mac(&[b"latch accepted policy v1\n", text.as_bytes()]))
}

/// What the guard decided is in force.
pub(crate) struct Settled {
    /// The text of the policy in force.
    pub text: String,
    /// Also evaluate the built-in defaults and take the stricter decision.
    pub floor: bool,
}

#[derive(Default)]
pub(crate) struct Guard {
    file: PathBuf,
    /// The accepted policy's text, as read or sealed.
    accepted: Option<String>,
    /// Its MAC was checked with the key (or this daemon sealed it).
    verified: bool,
    /// The file's text and how it differs, while it loosens.
    pending: Option<(String, PolicyDiff)>,
    /// The text of the policy in force.
    pub(crate) in_force: String,
    /// What limits the policy in force, for status.
    pub note: Option<String>,
}

impl Guard {
    pub fn load(data_dir: &Path) -> Guard {
        let file = data_dir.join(FILE);
        let accepted = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Record>(&t).ok())
            .map(|r| (r.text, r.mac));
        let mut g = Guard { file, in_force: DEFAULT_POLICY.to_owned(), ..Default::default() };
        g.accepted = accepted.as_ref().map(|(t, _)| t.clone());
        g
    }

    /// There is an accepted-policy record on disk (so a PIN was set).
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join(FILE).exists()
    }

    pub fn pending(&self) -> Option<PolicyPending> {
        self.pending.as_ref().map(|(_, d)| PolicyPending {
            loosen: d.loosening() as u32,
            diff: d.lines(),
            ..PolicyPending::default()
        })
    }

    /// The text of the pending policy, to replay it.
    pub fn pending_text(&self) -> Option<String> {
        self.pending.as_ref().map(|(t, _)| t.clone())
    }

    fn seal(&mut self, text: String, key: &Key) -> Result<(), String> {
        let record = Record { mac: mac(key, &text), text: text.clone() };
        let json = serde_json::to_string_pretty(&record).unwrap_or_default();
        crate::pin::record::write_private(&self.file, json.as_bytes())
            .map_err(|e| format!("could not save {}: {e}", self.file.display()))?;
        self.accepted = Some(text);
        self.verified = true;
        Ok(())
    }

    /// Checks the record on disk with `key`, once. Returns a note for the
    /// audit log when the record was missing or forged.
    fn verify(&mut self, key: &Key) -> Option<String> {
        if self.verified {
            return None;
        }
        let on_disk = std::fs::read_to_string(&self.file).ok().and_then(|t| serde_json::from_str::<Record>(&t).ok());
        let genuine = on_disk
            .filter(|r| kdf::same(mac(key, &r.text).as_bytes(), r.mac.as_bytes()) && Policy::parse(&r.text).is_ok());
        match genuine {
            Some(r) => {
                self.accepted = Some(r.text);
                self.verified = true;
                None
            }
            None => {
                let why = format!(
                    "the accepted-policy record {} is missing or not authentic (changed outside Latch); the built-in \
                     defaults are now the accepted policy, and the policy file waits for a person to accept it",
                    self.file.display()
                );
                let _ = self.seal(DEFAULT_POLICY.to_owned(), key);
                Some(why)
            }
        }
    }

    /// Decides what is in force, given the policy file's text (`None` when
    /// it is missing or not valid: the policy in force stays), whether a
    /// PIN is set and the key if known. Returns audit notes.
    pub fn settle(&mut self, file: Option<&str>, pin_set: bool, key: Option<&Key>) -> (Settled, Vec<String>) {
        let mut notes = Vec::new();
        if !pin_set {
            self.pending = None;
            self.note = None;
            if let Some(f) = file {
                self.in_force = f.to_owned();
            }
            return (Settled { text: self.in_force.clone(), floor: false }, notes);
        }
        if let Some(k) = key {
            notes.extend(self.verify(k));
        }
        let base = self.accepted.clone().filter(|t| Policy::parse(t).is_ok()).unwrap_or_else(|| DEFAULT_POLICY.into());
        self.note = (!self.verified).then(|| {
            "the accepted policy cannot be verified until a person types the PIN (unlock `latch tui`); the stricter \
             of it and the built-in defaults is in force"
                .to_owned()
        });
        let Some(f) = file else {
            if self.pending.is_none() && !self.verified {
                self.in_force = base;
            }
            return (Settled { text: self.in_force.clone(), floor: !self.verified }, notes);
        };
        match compare(&base, f) {
            Ok(d) if d.loosening() == 0 => {
                self.pending = None;
                self.in_force = f.to_owned();
                if self.verified
                    && !d.is_empty()
                    && let Some(k) = key
                    && let Err(e) = self.seal(f.to_owned(), k)
                {
                    notes.push(e);
                }
            }
            Ok(d) => {
                self.pending = Some((f.to_owned(), d));
                self.in_force = base;
            }
            Err(e) => {
                notes.push(e);
                self.in_force = base;
            }
        }
        (Settled { text: self.in_force.clone(), floor: !self.verified }, notes)
    }

    /// The person accepts what waits. `Err` says why nothing changed.
    pub(crate) fn accept(&mut self, key: &Key) -> Result<String, String> {
        let Some((text, diff)) = self.pending.take() else {
            return Err("no policy change is waiting".into());
        };
        self.seal(text.clone(), key)?;
        self.in_force = text;
        Ok(format!("policy change accepted ({} loosening, {} in all)", diff.loosening(), diff.changes.len()))
    }

    /// The PIN was set or changed: seal what is accepted under the new key
    /// (on the first PIN, the policy in force becomes the accepted one).
    pub(crate) fn rekey(&mut self, new: &Key, old: Option<&Key>) -> Vec<String> {
        let mut notes = Vec::new();
        match old {
            None if !self.verified => {
                let text = self.in_force.clone();
                notes.extend(self.seal(text, new).err());
            }
            _ => {
                if let Some(o) = old {
                    notes.extend(self.verify(o));
                }
                let text = self.accepted.clone().unwrap_or_else(|| self.in_force.clone());
                notes.extend(self.seal(text, new).err());
            }
        }
        notes
    }

    /// An "always" answer given with the PIN is accepted: the rule joins
    /// the accepted text too (a pending change stays pending).
    pub fn accept_rule(&mut self, rule: &latch_core::policy::NewRule, key: Option<&Key>) {
        if let (true, Some(k), Some(text)) = (self.verified, key, self.accepted.clone()) {
            let _ = self.seal(latch_core::policy::append_rule(&text, rule), k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loose() -> String {
        DEFAULT_POLICY.replace("transfer_value = \"deny\"", "transfer_value = \"allow\"")
    }

    fn tight() -> String {
        DEFAULT_POLICY.replace("execute = \"ask\"", "execute = \"deny\"")
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("latch-accepted-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn without_a_pin_every_change_applies() {
        let d = dir("nopin");
        let mut g = Guard::load(&d);
        let (s, _) = g.settle(Some(loose().as_str()), false, None);
        assert_eq!((s.text, s.floor), (loose(), false));
    }

    #[test]
    fn loosening_waits_tightening_applies_and_accept_seals() {
        let d = dir("flow");
        let key = [7u8; 32];
        let mut g = Guard::load(&d);
        g.settle(Some(DEFAULT_POLICY), false, None);
        g.rekey(&key, None);
        let (s, _) = g.settle(Some(loose().as_str()), true, Some(&key));
        assert_eq!(s.text, DEFAULT_POLICY, "the loosening waits");
        assert_eq!(g.pending().unwrap().loosen, 1);
        let (s, _) = g.settle(Some(tight().as_str()), true, Some(&key));
        assert_eq!((s.text, s.floor), (tight(), false), "a tightening applies at once");
        assert!(g.pending().is_none());
        // The tightened policy is now the accepted one, across a restart.
        let mut again = Guard::load(&d);
        let (s, _) = again.settle(Some(tight().as_str()), true, None);
        assert_eq!((s.text, s.floor), (tight(), true), "unverified: the built-in floor applies too");
        let (s, notes) = again.settle(Some(tight().as_str()), true, Some(&key));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!((s.text, s.floor), (tight(), false));
        // Back to the defaults loosens execute: it waits, then is accepted.
        again.settle(Some(DEFAULT_POLICY), true, Some(&key));
        assert!(again.pending().is_some());
        assert!(again.accept(&key).is_ok());
        assert_eq!(again.in_force, DEFAULT_POLICY);
        assert!(again.accept(&key).is_err(), "nothing waits any more");
    }

    #[test]
    fn a_forged_record_is_replaced_by_the_defaults_once_the_key_is_known() {
        let d = dir("forged");
        let key = [9u8; 32];
        let mut g = Guard::load(&d);
        g.settle(Some(DEFAULT_POLICY), false, None);
        g.rekey(&key, None);
        // The agent writes a loose record with a MAC of its own and the
        // same loose policy file, then the daemon restarts.
        let forged = Record { text: loose(), mac: mac(&[1u8; 32], &loose()) };
        std::fs::write(d.join(FILE), serde_json::to_string(&forged).unwrap()).unwrap();
        let mut after = Guard::load(&d);
        let (s, _) = after.settle(Some(loose().as_str()), true, None);
        assert!(s.floor, "until verified, the built-in defaults bound it");
        let (s, notes) = after.settle(Some(loose().as_str()), true, Some(&key));
        assert_eq!(notes.len(), 1, "the forgery is reported");
        assert_eq!((s.text.as_str(), s.floor), (DEFAULT_POLICY, false));
        assert_eq!(after.pending().unwrap().loosen, 1, "the loose file waits for the person");
    }
}
