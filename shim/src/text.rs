//! Every sentence the shim writes for the agent to read.
//!
//! The agent is the party Latch guards against, and it may run commands:
//! text that reaches it says that a person decides in Latch, with the
//! approval id the person will see, and never names a command (`latch …`)
//! it could run to approve, start, stop or inspect anything.

/// A held call's progress notification.
pub fn waiting(approval: &str) -> String {
    format!("waiting for approval {approval}: a person must decide it in Latch")
}

/// A held call whose hold ended before a person decided.
pub fn awaiting(tool: &str, approval: &str) -> String {
    format!(
        "Latch is holding {tool} for a person: approval {approval} is pending and only a person can decide it in \
         Latch. The call did not run. Once the person has approved it, retrying the identical call will go through."
    )
}

/// Held calls whose daemon went away.
pub fn daemon_gone(tool: &str) -> String {
    format!(
        "Latch blocked {tool}: the Latch daemon went away before the call was decided, so it did not run. \
         The person who runs Latch must bring it back; retry later."
    )
}

/// A call made while no daemon answers.
pub fn offline(tool: &str) -> String {
    format!(
        "Latch blocked {tool}: no Latch daemon is reachable, so the call could not be checked and did not run. \
         The person who runs Latch must start it; retry later."
    )
}

/// A call refused because something that is not Latch's daemon answers
/// at its socket (`who`: its pid and executable).
pub fn impostor(tool: &str, who: &str) -> String {
    format!(
        "Latch blocked {tool}: the process answering at Latch's socket is not Latch's daemon ({who}), so the call \
         could not be checked and did not run. The person who runs Latch must look into it."
    )
}

/// A held result that was not let through (`reason`: the daemon's words,
/// a person's deny or the daemon shutting down).
pub fn result_denied(subject: &str, approval: &str, reason: &str) -> String {
    format!(
        "Latch withheld the result of {subject} (approval {approval}): it held text or secrets the agent should not \
         read, and it was not let through: {reason}. Only a person can let such a result through, in Latch. The \
         call itself ran."
    )
}

/// A held result whose hold ended before a person decided.
pub fn result_timed_out(subject: &str, approval: &str) -> String {
    format!(
        "Latch withheld the result of {subject}: it held text or secrets the agent should not read, and no person \
         decided about it in Latch in time (approval {approval}). The call itself ran."
    )
}

/// A result that needs a person while no daemon is reachable.
pub fn result_no_daemon(subject: &str) -> String {
    format!(
        "Latch withheld the result of {subject}: it held text or secrets a person must see first, and the Latch \
         daemon is not reachable. The call itself ran."
    )
}

/// A held result whose server exited (the shim ends with it).
pub fn result_server_gone(subject: &str) -> String {
    format!(
        "Latch withheld the result of {subject}: it was waiting for a person in Latch when the MCP server exited. \
         The call itself ran."
    )
}

/// A hold the daemon could not start (`reason` in its words).
pub fn result_refused(subject: &str, reason: &str) -> String {
    format!("Latch withheld the result of {subject}: it needs a person, and Latch could not ask one ({reason}).")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_agent_text_names_a_latch_command() {
        for t in [
            waiting("k3m9qz"),
            awaiting("pay", "k3m9qz"),
            daemon_gone("pay"),
            offline("pay"),
            result_denied("pay", "k3m9qz", "denied by a person"),
            result_timed_out("pay", "k3m9qz"),
            result_no_daemon("pay"),
            result_server_gone("pay"),
        ] {
            // Commands are spelled in lower case; "Latch" the product is not one.
            assert!(!t.contains("latch ") && !t.contains('`'), "{t}");
        }
        assert!(waiting("k3m9qz").contains("k3m9qz") && awaiting("pay", "k3m9qz").contains("k3m9qz"));
    }
}
