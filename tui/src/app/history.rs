//! The history pane's paging: one page of audit rows held at a time.

use latch_proto::{AuditRow, ClientMsg};

use super::state::{App, Land, Level, PAGE, PAGE_STEP, Req};

impl App {
    // ---- history paging ----

    pub(super) fn load_page(&mut self, page: usize, land: Land, now: i64) -> Option<ClientMsg> {
        if !self.connected() {
            return None;
        }
        let before = *self.history.cursors.get(page)?;
        let r = self.req(Req::Audit { page, land });
        self.history.loading = Some(r);
        Some(ClientMsg::Audit { req: r, limit: PAGE, before, filter: self.history.filter(now) })
    }

    pub(super) fn page_arrived(&mut self, page: usize, land: Land, rows: Vec<AuditRow>, now: i64) {
        let h = &mut self.history;
        if rows.is_empty() && page > 0 {
            // Older than the oldest page: stay where we are.
            h.at_end = true;
            h.cursors.truncate(page);
            self.say(Level::Info, "end of the log", now);
            return;
        }
        h.at_end = (rows.len() as u32) < PAGE;
        h.page = page;
        h.cursors.truncate(page + 1);
        if !h.at_end {
            h.cursors.push(rows.last().map(|r| r.id));
        }
        if page == 0 {
            h.new_rows = 0;
        }
        // The cursor above is the daemon's last id; what is shown is folded.
        let rows = fold_connections(rows);
        h.sel = match land {
            Land::First => 0,
            Land::Last => rows.len().saturating_sub(1),
        };
        for r in &rows {
            self.servers.insert(r.server.clone());
        }
        self.history.rows = rows;
    }

    pub(super) fn history_reset(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        self.history.cursors = vec![None];
        self.history.at_end = false;
        out.extend(self.load_page(0, Land::First, now));
    }

    pub(super) fn history_down(&mut self, n: usize, now: i64, out: &mut Vec<ClientMsg>) {
        let h = &mut self.history;
        if h.sel + n < h.rows.len() {
            h.sel += n;
        } else if !h.at_end && h.loading.is_none() && h.page + 1 < h.cursors.len() {
            let next = h.page + 1;
            out.extend(self.load_page(next, Land::First, now));
        } else {
            h.sel = h.rows.len().saturating_sub(1);
        }
    }

    pub(super) fn history_up(&mut self, n: usize, now: i64, out: &mut Vec<ClientMsg>) {
        let h = &mut self.history;
        if h.sel >= n {
            h.sel -= n;
        } else if h.page > 0 && h.loading.is_none() {
            let prev = h.page - 1;
            out.extend(self.load_page(prev, Land::Last, now));
        } else {
            h.sel = 0;
        }
    }

    /// PgDn: a screenful down within the page while rows are below the
    /// selection; at the page's last row, the next page.
    pub(super) fn history_page_down(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        let h = &mut self.history;
        let last = h.rows.len().saturating_sub(1);
        if h.sel < last {
            h.sel = (h.sel + PAGE_STEP).min(last);
        } else if !h.at_end && h.loading.is_none() && h.page + 1 < h.cursors.len() {
            let next = h.page + 1;
            out.extend(self.load_page(next, Land::First, now));
        }
    }

    /// PgUp: a screenful up within the page; at its first row, the page
    /// before (landing on its last row).
    pub(super) fn history_page_up(&mut self, now: i64, out: &mut Vec<ClientMsg>) {
        let h = &mut self.history;
        if h.sel > 0 {
            h.sel = h.sel.saturating_sub(PAGE_STEP);
        } else if h.page > 0 && h.loading.is_none() {
            let prev = h.page - 1;
            out.extend(self.load_page(prev, Land::Last, now));
        }
    }
}

/// Runs of shims connecting and disconnecting folded into one row each, so
/// that they do not fill half of History: the newest row of the run stands
/// for it, saying how many there were (paging goes by the ids the daemon
/// sent, so it is unaffected).
fn fold_connections(rows: Vec<AuditRow>) -> Vec<AuditRow> {
    let is_conn = |r: &AuditRow| r.kind == "shim_connect" || r.kind == "shim_disconnect";
    let mut out: Vec<AuditRow> = Vec::with_capacity(rows.len());
    let mut run = 0usize;
    for r in rows {
        if is_conn(&r) {
            run += 1;
            if run == 1 {
                out.push(r);
                continue;
            }
            if let Some(head) = out.last_mut() {
                if head.server != r.server {
                    head.server = String::new();
                }
                head.kind = "connections".into();
                head.tool = format!("{run} shim connects and disconnects");
            }
            continue;
        }
        run = 0;
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, kind: &str, server: &str) -> AuditRow {
        AuditRow { id, time: id, kind: kind.into(), server: server.into(), ..AuditRow::default() }
    }

    #[test]
    fn runs_of_connections_fold_into_one_row_each() {
        let rows = vec![
            row(9, "call", "fs"),
            row(8, "shim_disconnect", "fs"),
            row(7, "shim_connect", "github"),
            row(6, "shim_connect", "fs"),
            row(5, "call", "fs"),
            row(4, "shim_connect", "fs"),
            row(3, "call", "fs"),
        ];
        let folded = fold_connections(rows);
        let shown: Vec<(i64, &str, &str)> = folded.iter().map(|r| (r.id, r.kind.as_str(), r.tool.as_str())).collect();
        assert_eq!(
            shown,
            [
                (9, "call", ""),
                (8, "connections", "3 shim connects and disconnects"),
                (5, "call", ""),
                (4, "shim_connect", ""),
                (3, "call", "")
            ]
        );
        assert_eq!(folded[1].server, "", "servers differ: none named");
    }
}
