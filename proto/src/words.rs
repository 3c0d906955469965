//! Who answered and how long a call waited, in words a person reads (the
//! console, `latch audit`): never the `channel:who` the log stores.

/// `alice in the console`, `bob via Telegram`, or `a person in the console`
/// when the name says nothing more than the place.
pub fn who_answered(by: &str) -> String {
    let (channel, who) = by.split_once(':').unwrap_or((by, ""));
    let who = who.trim();
    let place = match channel {
        "tui" => "in the console",
        "cli" => "on the command line",
        "telegram" => "via Telegram",
        "desktop" => "from a desktop notification",
        "client" => "in the agent's client",
        "hook" => "in the agent's own dialog",
        other => return if who.is_empty() { format!("a person via {other}") } else { format!("{who} via {other}") },
    };
    if who.is_empty() || who == channel || who == "unknown peer" {
        format!("a person {place}")
    } else {
        format!("{who} {place}")
    }
}

/// `420ms`, `24.3s`, `2m05s`, `3h12m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        ..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1e3),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1_000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// How a call a person answered ended: `denied by alice in the console
/// after 24.3s`. None for a row without an answer.
pub fn answered(row: &crate::AuditRow) -> Option<String> {
    let verb = match row.answer.as_deref()? {
        "allow" => "approved",
        _ => "denied",
    };
    let by = row.answered_by.as_deref().map(|b| format!(" by {}", who_answered(b))).unwrap_or_default();
    let wait = row.waited_ms.map(|ms| format!(" after {}", duration_ms(ms))).unwrap_or_default();
    Some(format!("{verb}{by}{wait}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_answered_names_no_internals() {
        assert_eq!(who_answered("tui:tui"), "a person in the console");
        assert_eq!(who_answered("tui:alice"), "alice in the console");
        assert_eq!(who_answered("telegram:bob"), "bob via Telegram");
        assert_eq!(who_answered("cli:unknown peer"), "a person on the command line");
        assert_eq!(who_answered("pager:"), "a person via pager");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_ms(420), "420ms");
        assert_eq!(duration_ms(24_300), "24.3s");
        assert_eq!(duration_ms(125_000), "2m05s");
        assert_eq!(duration_ms(3 * 3_600_000 + 12 * 60_000), "3h12m");
    }
}
