//! The shim's lease journal: the rows of the calls it allowed itself,
//! each appended (one line, one `write(2)`) before the call is forwarded,
//! so it survives SIGKILL of any Latch process. Files are
//! `PREFIX.SEGMENT.jsonl` in the daemon's lease folder, 0600; a segment is
//! closed at [`SEGMENT`] bytes and removed once the daemon acknowledged
//! every row in it. With [`MAX_CLOSED`] segments waiting for that, the
//! journal is full and calls go to the daemon.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Size at which a segment is closed.
const SEGMENT: u64 = 256 << 10;
/// Closed segments not yet acknowledged, at most.
const MAX_CLOSED: usize = 16;

pub(crate) struct Journal {
    dir: PathBuf,
    prefix: String,
    seg: u64,
    file: Option<File>,
    path: PathBuf,
    size: u64,
    /// The last row number in the open segment.
    last: u64,
    /// Closed segments and their last row number.
    closed: VecDeque<(PathBuf, u64)>,
}

impl Journal {
    pub(crate) fn new(dir: &Path, prefix: &str) -> Journal {
        Journal {
            dir: dir.to_owned(),
            prefix: prefix.to_owned(),
            seg: 0,
            file: None,
            path: PathBuf::new(),
            size: 0,
            last: 0,
            closed: VecDeque::new(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Room for another row.
    pub(crate) fn has_room(&self) -> bool {
        self.closed.len() < MAX_CLOSED
    }

    fn open_segment(&mut self) -> std::io::Result<()> {
        self.seg += 1;
        let path = self.dir.join(format!("{}.{}.jsonl", self.prefix, self.seg));
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        self.file = Some(f);
        self.path = path;
        self.size = 0;
        Ok(())
    }

    /// Appends `line` (newline-terminated) for row `n` in one write; on a
    /// short write the file is cut back to its last whole line and the
    /// segment closed. An error: nothing may be forwarded on this row.
    pub(crate) fn append(&mut self, line: &[u8], n: u64) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open_segment()?;
        }
        let f = self.file.as_mut().expect("opened");
        match f.write(line) {
            // A file no longer linked (removed or replaced) keeps nothing.
            Ok(w) if w == line.len() && f.metadata().is_ok_and(|m| m.nlink() > 0) => {}
            Ok(w) if w == line.len() => {
                self.file = None;
                self.last = 0;
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "the journal file was removed"));
            }
            other => {
                let _ = f.set_len(self.size);
                self.file = None;
                if self.last > 0 {
                    self.closed.push_back((std::mem::take(&mut self.path), self.last));
                } else {
                    let _ = std::fs::remove_file(&self.path);
                }
                self.last = 0;
                return Err(match other {
                    Err(e) => e,
                    Ok(_) => std::io::Error::new(std::io::ErrorKind::WriteZero, "short write"),
                });
            }
        }
        self.size += line.len() as u64;
        self.last = n;
        if self.size >= SEGMENT {
            self.file = None;
            self.closed.push_back((std::mem::take(&mut self.path), n));
            self.last = 0;
        }
        Ok(())
    }

    /// The daemon recorded every row up to `upto`: closed segments that
    /// hold nothing newer go.
    pub(crate) fn acked(&mut self, upto: u64) {
        while let Some((path, last)) = self.closed.front() {
            if *last > upto {
                break;
            }
            let _ = std::fs::remove_file(path);
            self.closed.pop_front();
        }
    }
}
