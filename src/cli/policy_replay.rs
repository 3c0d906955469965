//! `latch policy replay FILE [--since 7d] [--json]`: a candidate policy run
//! over the calls in the audit log; every call whose decision would change,
//! grouped by the rule that would decide it, with counts. Reads the log
//! directly, so it works without a daemon. See
//! `latch_core::policy::replay` for what makes a replay approximate.

use std::path::PathBuf;

use latch_core::policy::replay::{Report, replay};

/// Calls listed per group in text (all of them in `--json`).
const SHOWN: usize = 5;

pub struct ReplayArgs {
    pub file: PathBuf,
    pub since: i64,
    pub json: bool,
    pub database: Option<PathBuf>,
}

pub fn run(a: ReplayArgs) -> anyhow::Result<i32> {
    let (Some(policy), shown) = super::policy::load(Some(a.file.clone()))? else { return Ok(1) };
    let database = match a.database {
        Some(d) => d,
        None => super::paths()?.database,
    };
    if !database.exists() {
        return Err(super::Usage(format!("there is no audit log at {}: no calls to replay", database.display())).into());
    }
    let calls = latch_daemon::audit::recorded::calls_since(&database, a.since, usize::MAX)?;
    let report = replay(&policy, &calls);
    if a.json {
        println!("{}", json(&report, &shown, a.since));
    } else {
        print!("{}", text(&report, &shown, a.since));
    }
    Ok(0)
}

fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = latch_proto::civil::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3_600, rem % 3_600 / 60)
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

fn text(r: &Report, policy: &str, since: i64) -> String {
    let mut out = format!("replay of {policy} over {} recorded calls since {}\n", r.calls, utc(since));
    let changed = r.changed();
    if changed == 0 {
        out.push_str("no call would be decided differently\n");
    } else {
        out.push_str(&format!("{changed} call{} would be decided differently:\n", if changed == 1 { "" } else { "s" }));
    }
    for g in &r.groups {
        let by = g.rule.as_deref().map(|x| format!("by {x}")).unwrap_or_else(|| "by the class default".to_owned());
        out.push_str(&format!(
            "\n  {} → {}  {by}: {} call{}\n",
            g.from,
            g.to,
            g.calls.len(),
            if g.calls.len() == 1 { "" } else { "s" }
        ));
        for c in g.calls.iter().take(SHOWN) {
            let mark = if c.approximate.is_some() { "  (approximate)" } else { "" };
            out.push_str(&format!(
                "    #{:<6} {}  {}/{}  {}{mark}\n",
                c.call.id,
                utc(c.call.time_ms),
                c.call.server,
                c.call.tool,
                cut(&c.call.args.to_string(), 60)
            ));
        }
        if g.calls.len() > SHOWN {
            out.push_str(&format!("    … and {} more (--json lists them all)\n", g.calls.len() - SHOWN));
        }
    }
    if r.approximate > 0 {
        out.push_str(&format!(
            "\n{} of the {} calls replay only approximately: their arguments were redacted in the log, or their \
             class differs without the tool's definition\n",
            r.approximate, r.calls
        ));
    }
    out
}

fn json(r: &Report, policy: &str, since: i64) -> serde_json::Value {
    let groups: Vec<_> = r
        .groups
        .iter()
        .map(|g| {
            let calls: Vec<_> = g
                .calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.call.id, "time": c.call.time_ms, "server": c.call.server, "tool": c.call.tool,
                        "class": c.call.class, "args": c.call.args, "approximate": c.approximate,
                    })
                })
                .collect();
            serde_json::json!({"from": g.from, "to": g.to.as_str(), "rule": g.rule, "count": g.calls.len(), "calls": calls})
        })
        .collect();
    serde_json::json!({
        "policy": policy, "since": since, "calls": r.calls, "changed": r.changed(),
        "approximate": r.approximate, "groups": groups,
    })
}
