//! Classification + policy evaluation of one call, with a 500-rule policy.
//!
//! `cargo bench -p latch-core --bench decide` times N = 100 000 decisions
//! over a mix of realistic calls (file reads and writes, shell commands,
//! e-mails, pull requests, a self-protection hit) and prints p50 / p99 in
//! microseconds. Most calls fall through every rule to the class default,
//! the slowest path; target p50 ≤ 20 µs. The calls judged by the argument
//! readers and domain lexicons (an HTTP refund, a click on "Confirm
//! purchase", a kubectl rollout, nested SQL, closing positions, a call
//! nothing speaks for) are timed per kind only, so that the mixed figure
//! stays comparable with earlier runs (docs/speed.md).

use std::hint::black_box;
use std::time::Instant;

use latch_core::policy::{Policy, Protected};
use latch_core::{Call, ToolDef};
use serde_json::{Value, json};

const N: usize = 100_000;

/// 500 rules of the shapes people write, none of which match the benched
/// calls except the few named ones near the end.
fn policy_text() -> String {
    let mut t = String::from("internal_domains = [\"example.com\", \"corp.example.net\"]\n\n");
    for i in 0..500 {
        let rule = match i % 10 {
            0 => format!("server = \"srv{i}\"\ntool = \"tool_{i}\"\neffect = \"allow\""),
            1 => format!("server = \"srv{i}*\"\ntool = [\"get_{i}_*\", \"list_{i}\"]\neffect = \"allow\""),
            2 => format!(
                "tool = [\"write_file\", \"edit_file\"]\nargs = [{{ path = \"path\", prefix = \"/srv/data{i}/\" }}]\neffect = \"deny\""
            ),
            3 => format!(
                "flags = [\"shell\"]\nargs = [{{ path = \"command\", regex = '^\\s*rm\\s+-rf\\s+/opt/x{i}' }}]\neffect = \"deny\""
            ),
            4 => format!("class = \"SEND\"\nany_domain = [\"rival{i}.com\"]\neffect = \"deny\""),
            5 => format!("class = \"SEND\"\nonly_domains = [\"partner{i}.org\"]\neffect = \"allow\""),
            6 => format!(
                "server = \"github\"\ntool = \"merge_pull_request\"\nargs = [{{ path = \"repo\", equals = \"org/repo{i}\" }}]\neffect = \"deny\""
            ),
            7 => format!(
                "tool = \"*_file\"\nargs = [{{ path = \"path\", glob = \"/home/*/secret{i}/**\" }}]\neffect = \"deny\""
            ),
            8 => format!(
                "class = [\"SUBMIT\", \"TRANSFER_VALUE\"]\nflags = [\"external\", \"!destructive\"]\nserver = \"pay{i}\"\neffect = \"ask\""
            ),
            _ => format!(
                "server = \"mail\"\ntool = \"send_email\"\nargs = [{{ path = \"to.*\", one_of = [\"ceo{i}@example.com\"] }}]\neffect = \"ask\""
            ),
        };
        t.push_str(&format!("[[rule]]\nname = \"r{i}\"\n{rule}\n\n"));
    }
    t
}

fn main() {
    let text = policy_text();
    let t0 = Instant::now();
    let mut policy = Policy::parse(&text).expect("bench policy parses");
    let parse_ms = t0.elapsed().as_secs_f64() * 1e3;
    policy.set_protected(Protected {
        paths: vec![
            "/home/u/.config/latch/policy.toml".into(),
            "/home/u/.local/share/latch".into(),
            "/home/u/.local/share/latch/audit.db".into(),
            "/home/u/.local/share/latch/run/latch.sock".into(),
            "/home/u/.cargo/bin/latch".into(),
        ],
        home: Some("/home/u".into()),
        ..Default::default()
    });
    assert_eq!(policy.rule_count(), 500);

    let write_def = ToolDef::from_value(&json!({
        "name": "write_file",
        "description": "Create a new file or completely overwrite an existing file with new content.",
        "annotations": {"readOnlyHint": false, "destructiveHint": true},
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}
    }))
    .expect("def");
    let calls: Vec<(&str, &str, Value, Option<&ToolDef>)> = vec![
        ("fs", "read_file", json!({"path": "/home/me/project/src/main.rs"}), None),
        (
            "fs",
            "write_file",
            json!({"path": "/home/me/project/README.md", "content": "# Project\n\nSome text.\n".repeat(20)}),
            Some(&write_def),
        ),
        ("fs", "list_directory", json!({"path": "/home/me/project"}), None),
        (
            "shell",
            "run_command",
            json!({"command": "cargo test -p latch-core -- --nocapture", "cwd": "/home/me/project"}),
            None,
        ),
        (
            "mail",
            "send_email",
            json!({"to": ["alice@example.com", "bob@partner7.org"], "subject": "Status", "body": "All green."}),
            None,
        ),
        (
            "github",
            "create_pull_request",
            json!({"repo": "org/app", "title": "Fix", "head": "fix", "base": "main"}),
            None,
        ),
        ("github", "search_issues", json!({"q": "is:open label:bug", "per_page": 50}), None),
        ("shell", "run_command", json!({"command": "latch approve 17"}), None),
    ];

    // Calls the argument readers and domain lexicons judge (issue 15), timed
    // per kind only, so that the mixed figure below stays comparable.
    let click_def = ToolDef::from_value(&json!({
        "name": "browser_click",
        "description": "Perform click on a web page",
        "annotations": {"readOnlyHint": false, "destructiveHint": true, "openWorldHint": true},
        "inputSchema": {"type": "object"}
    }))
    .expect("def");
    let kube_def = ToolDef::from_value(&json!({
        "name": "kubectl_generic",
        "description": "Execute any kubectl command with the provided arguments and flags",
        "inputSchema": {"type": "object"}
    }))
    .expect("def");
    let mut kinds = calls.clone();
    kinds.extend([
        (
            "pw",
            "playwright_post",
            json!({"url": "https://api.stripe.com/v1/refunds", "value": "{\"payment_intent\":\"pi_1\"}"}),
            None,
        ),
        ("pw", "browser_click", json!({"element": "Confirm purchase button", "target": "e42"}), Some(&click_def)),
        (
            "k8s",
            "kubectl_generic",
            json!({"command": "rollout", "subCommand": "restart", "name": "web", "namespace": "prod"}),
            Some(&kube_def),
        ),
        ("neon", "run_sql_transaction", json!({"params": {"sqlStatements": ["SELECT 1", "DELETE FROM t"]}}), None),
        ("alpaca", "close_all_positions", json!({"cancel_orders": true}), None),
        ("x", "frobnicate_widget", json!({"id": "w1"}), None),
    ]);

    // Per call kind, classification alone and the whole decision.
    for (server, tool, args, def) in &kinds {
        let call = Call { server, tool, args };
        let ctx = latch_core::classify::Context {
            internal_domains: policy.internal_domains(),
            user_class: policy.user_class(server, tool),
        };
        let mut c = Vec::with_capacity(2000);
        let mut d = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let t = Instant::now();
            black_box(latch_core::classify::classify(black_box(&call), *def, &ctx));
            c.push(t.elapsed().as_nanos());
            let t = Instant::now();
            black_box(latch_core::decide(black_box(&policy), black_box(&call), *def));
            d.push(t.elapsed().as_nanos());
        }
        c.sort_unstable();
        d.sort_unstable();
        let v = latch_core::decide(&policy, &call, *def);
        println!(
            "  {server}/{tool}: classify p50 {:.2} µs, decide p50 {:.2} µs -> {} ({})",
            c[1000] as f64 / 1e3,
            d[1000] as f64 / 1e3,
            v.evaluation.decision,
            v.evaluation.rule.as_deref().unwrap_or("default"),
        );
    }

    // Writes in a server's place (issue 15): the workspace check on top.
    let env = latch_core::path::PathEnv {
        home: Some("/home/me".into()),
        cwd: Some("/home/me/project".into()),
        ..Default::default()
    };
    let place = latch_core::policy::Place::new(&env, None);
    for (tool, args) in [
        ("write_file", json!({"path": "/home/me/project/README.md", "content": "# Project\n"})),
        ("write_file", json!({"path": "/tmp/elsewhere/x", "content": "# Project\n"})),
        ("run_command", json!({"command": "cargo build 2>&1 | tee build.log && cp target/x /usr/local/bin/"})),
    ] {
        let call = Call { server: "fs", tool, args: &args };
        let mut d = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let t = Instant::now();
            black_box(latch_core::decide_in(black_box(&policy), black_box(&call), None, &[], place));
            d.push(t.elapsed().as_nanos());
        }
        d.sort_unstable();
        let v = latch_core::decide_in(&policy, &call, None, &[], place);
        println!(
            "  in a place, {tool} {}: decide p50 {:.2} µs -> {} ({})",
            args.get("path").or(args.get("command")).and_then(Value::as_str).unwrap_or(""),
            d[1000] as f64 / 1e3,
            v.evaluation.decision,
            v.evaluation.rule.as_deref().unwrap_or("default"),
        );
    }

    let mut times = Vec::with_capacity(N);
    let mut denies = 0usize;
    for i in 0..N {
        let (server, tool, args, def) = &calls[i % calls.len()];
        let call = Call { server, tool, args };
        let t = Instant::now();
        let v = latch_core::decide(black_box(&policy), black_box(&call), *def);
        let dt = t.elapsed();
        denies += usize::from(v.evaluation.decision == latch_core::Decision::Deny);
        black_box(&v);
        times.push(dt.as_nanos() as f64 / 1e3);
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    println!(
        "decide (classify + policy, 500 rules): N={N} p50={:.2} µs p99={:.2} µs max={:.1} µs (parse {parse_ms:.1} ms, {denies} denied)",
        p(0.50),
        p(0.99),
        times[times.len() - 1],
    );
}
