//! The lease in the relay: taking up and dropping leases, and deciding a
//! call under one ([`crate::lease`]).

use latch_proto::ClientMsg;
use latch_proto::lease::Lease;

use super::{Held, Relay};
use crate::lease::Leased;

impl Relay {
    /// A new lease from the daemon, or `None`: calls go to the daemon.
    pub(super) fn on_lease(&mut self, lease: Option<Box<Lease>>) {
        // Leases may arrive out of order: an older one never replaces a newer.
        if let (Some(new), Some(now)) = (&lease, &self.lease)
            && new.epoch < now.epoch()
        {
            return;
        }
        let previous = self.lease.take();
        self.lease = match lease {
            Some(l) => match Leased::new(*l, previous) {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("latch shim: lease not taken up ({e}); every call asks the daemon");
                    None
                }
            },
            None => None,
        };
    }

    /// Decides `held` under the lease when it is a plain allow: its row is
    /// journaled and rides along to the daemon, and the call is forwarded.
    /// Otherwise it is given back for the daemon to decide.
    pub(super) fn try_local(&mut self, mut held: Box<Held>) -> Option<Box<Held>> {
        if held.retry || !self.daemon {
            return Some(held);
        }
        let Some(lease) = self.lease.as_mut() else { return Some(held) };
        let args = match &held.args {
            None => "{}",
            Some(range) => match held.line.get(range.clone()).map(std::str::from_utf8) {
                Some(Ok(args)) => args,
                _ => return Some(held),
            },
        };
        let Some(row) = lease.decide(&held.tool, self.tool_defs.get(&held.tool), args) else { return Some(held) };
        held.call_id = Some(row.call_id.clone());
        held.class = row.class.clone();
        held.args = None;
        self.report(&ClientMsg::LocalCall(row));
        self.forward_call(*held);
        None
    }
}
