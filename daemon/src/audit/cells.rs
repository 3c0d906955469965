//! Reading the cells of one row as the log writes them, without stopping at
//! one it never writes: overwritten bytes can leave text that is not UTF-8,
//! or a value of another type, which SQLite's own check does not see
//! (tests/reliability/faults.py `corrupted`). Such a cell is read as best
//! it can be (replacement characters, the value as text) and named, so the
//! row is shown marked as damaged and the readers go on to the next one.

use rusqlite::Row;
use rusqlite::types::ValueRef;

/// One row's cells, and the columns that did not hold what the log writes.
pub(super) struct Cells<'r, 's> {
    row: &'r Row<'s>,
    names: &'static [&'static str],
    damaged: Vec<&'static str>,
}

impl<'r, 's> Cells<'r, 's> {
    /// `names`: the selected columns, in order (named in the damage note).
    pub(super) fn new(row: &'r Row<'s>, names: &'static [&'static str]) -> Self {
        Cells { row, names, damaged: Vec::new() }
    }

    fn mark(&mut self, i: usize) {
        let name = self.names.get(i).copied().unwrap_or("?");
        if !self.damaged.contains(&name) {
            self.damaged.push(name);
        }
    }

    /// A text column the log may leave empty (NULL).
    pub(super) fn opt_text(&mut self, i: usize) -> rusqlite::Result<Option<String>> {
        Ok(match self.row.get_ref(i)? {
            ValueRef::Null => None,
            ValueRef::Text(t) => Some(match std::str::from_utf8(t) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    self.mark(i);
                    String::from_utf8_lossy(t).into_owned()
                }
            }),
            ValueRef::Blob(b) => {
                self.mark(i);
                Some(String::from_utf8_lossy(b).into_owned())
            }
            ValueRef::Integer(n) => {
                self.mark(i);
                Some(n.to_string())
            }
            ValueRef::Real(f) => {
                self.mark(i);
                Some(f.to_string())
            }
        })
    }

    /// A text column the log always fills.
    pub(super) fn text(&mut self, i: usize) -> rusqlite::Result<String> {
        match self.opt_text(i)? {
            Some(s) => Ok(s),
            None => {
                self.mark(i);
                Ok(String::new())
            }
        }
    }

    /// An integer column the log may leave empty (NULL).
    pub(super) fn opt_int(&mut self, i: usize) -> rusqlite::Result<Option<i64>> {
        Ok(match self.row.get_ref(i)? {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n),
            _ => {
                self.mark(i);
                None
            }
        })
    }

    /// An integer column the log always fills (0 when it holds something
    /// else).
    pub(super) fn int(&mut self, i: usize) -> rusqlite::Result<i64> {
        match self.opt_int(i)? {
            Some(n) => Ok(n),
            None => {
                self.mark(i);
                Ok(0)
            }
        }
    }

    /// Whether a column was found damaged so far.
    pub(super) fn is_damaged(&self, i: usize) -> bool {
        self.names.get(i).is_some_and(|n| self.damaged.contains(n))
    }

    /// What a person reads about the row, when a cell was not as written.
    pub(super) fn damage(self) -> Option<String> {
        if self.damaged.is_empty() {
            return None;
        }
        Some(format!(
            "damaged: {} {} not hold what the log writes there (its bytes were overwritten); `latch audit verify` \
             names the first changed row",
            self.damaged.join(", "),
            if self.damaged.len() == 1 { "does" } else { "do" },
        ))
    }
}
