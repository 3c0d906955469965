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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("latch-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn segments_close_at_their_size_and_go_once_acknowledged() {
        let dir = scratch("segments");
        let mut j = Journal::new(&dir, "p");
        let mut line = vec![b'x'; 100 << 10];
        line.push(b'\n');
        for n in 1..=6 {
            j.append(&line, n).unwrap();
        }
        // 100 KiB rows: segments close after the third row each.
        assert_eq!(files(&dir), ["p.1.jsonl", "p.2.jsonl"]);
        assert_eq!(j.closed.len(), 2);
        j.acked(2);
        assert_eq!(files(&dir), ["p.1.jsonl", "p.2.jsonl"], "row 3 of the first is not acknowledged");
        j.acked(3);
        assert_eq!(files(&dir), ["p.2.jsonl"]);
        j.acked(6);
        assert!(files(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_append_to_a_removed_file_fails() {
        let dir = scratch("removed");
        let mut j = Journal::new(&dir, "p");
        j.append(b"{}\n", 1).unwrap();
        std::fs::remove_file(dir.join("p.1.jsonl")).unwrap();
        assert!(j.append(b"{}\n", 2).is_err());
        // The next row opens a new segment.
        j.append(b"{}\n", 3).unwrap();
        assert_eq!(files(&dir), ["p.2.jsonl"]);
        // A name taken by a folder: the append fails.
        std::fs::remove_file(dir.join("p.2.jsonl")).unwrap();
        std::fs::create_dir(dir.join("p.3.jsonl")).unwrap();
        assert!(j.append(b"{}\n", 4).is_err());
        assert!(j.append(b"{}\n", 5).is_err(), "p.3 is a folder");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn too_many_unacknowledged_segments_leave_no_room() {
        let dir = scratch("room");
        let mut j = Journal::new(&dir, "p");
        let mut line = vec![b'x'; SEGMENT as usize];
        line.push(b'\n');
        for n in 1..=MAX_CLOSED as u64 {
            assert!(j.has_room());
            j.append(&line, n).unwrap();
        }
        assert!(!j.has_room());
        j.acked(1);
        assert!(j.has_room());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
