//! Helpers shared by the daemon's integration tests.

#![allow(dead_code)]

pub mod daemon;

use std::path::PathBuf;

/// A private temporary folder, removed when dropped.
pub struct TempHome(pub PathBuf);

impl TempHome {
    pub fn new(name: &str) -> TempHome {
        let dir = std::env::temp_dir().join(format!("latch-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempHome(dir)
    }
    pub fn db(&self) -> PathBuf {
        self.0.join("audit.db")
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
