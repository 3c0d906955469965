//! The daemon's side of history paging, as a trait: something that answers
//! `Audit { limit, before, filter }` with at most `limit` rows, newest
//! first, all with ids below `before`. The real source is the daemon's
//! SQLite store behind the socket; tests and the bench plug in a synthetic
//! log of any size to show that the console only ever holds one page.

use latch_proto::{AuditFilter, AuditRow, ClientMsg, DaemonMsg};

pub trait PageSource {
    fn page(&mut self, limit: u32, before: Option<i64>, filter: &AuditFilter) -> Vec<AuditRow>;
}

/// Answers the `Audit` requests among `msgs` the way the daemon would;
/// other messages are left alone.
pub fn serve(source: &mut impl PageSource, msgs: &[ClientMsg]) -> Vec<DaemonMsg> {
    msgs.iter()
        .filter_map(|m| match m {
            ClientMsg::Audit { req, limit, before, filter } => {
                Some(DaemonMsg::AuditRows { req: *req, rows: source.page(*limit, *before, filter) })
            }
            _ => None,
        })
        .collect()
}
