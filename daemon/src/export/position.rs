//! Where the export stands, kept in `<data dir>/otlp-export.json` (0600):
//! the next row to send and the counts. Written (to a new file, then
//! renamed over the old) after every request the collector answered and
//! every drop, so a daemon killed at any moment resends at most the one
//! batch whose answer it had not saved yet.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "otlp-export.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The id of the next row to send (every row below it was sent,
    /// rejected or dropped).
    pub next_id: i64,
    /// Records the collector accepted.
    pub delivered: u64,
    /// Rows never sent: the queue bound was reached, or they left the log
    /// (retention) before they were sent.
    pub dropped: u64,
    /// Records the collector refused (a 4xx, or a partial success).
    pub rejected: u64,
}

pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The saved position; None when there is none (or it cannot be read, which
/// is logged: the export then starts at the log's end).
pub fn load(path: &Path) -> Option<Position> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read the export position {}: {e}", path.display());
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("the export position {} is not valid ({e}); starting at the log's end", path.display());
            None
        }
    }
}

/// Saves `p` atomically (a page-cache write: it survives the death of the
/// daemon, as the journal does).
pub fn save(path: &Path, p: &Position) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(serde_json::to_string(p).unwrap_or_default().as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_a_round_trip_and_garbage_is_none() {
        let dir = std::env::temp_dir().join(format!("latch-pos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_in(&dir);
        assert_eq!(load(&path), None);
        let p = Position { next_id: 42, delivered: 40, dropped: 1, rejected: 1 };
        save(&path, &p).unwrap();
        save(&path, &p).unwrap();
        assert_eq!(load(&path), Some(p));
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(load(&path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
