//! `latch policy check|explain|test|default`.
//!
//! Exit codes (as in `cli/mod.rs`): 0 = fine (the policy is valid, every
//! case passed); 1 = the policy or a test table has problems, or a case
//! failed; 2 = a usage mistake (bad `--args` JSON, a policy file named
//! that does not exist); 70 = could not run (a file that cannot be read).
//! Problems go to stderr in `FILE:LINE:COLUMN: error: …` form with the
//! source line and a fix.
//!
//! Every subcommand reads the user's policy file (from `LATCH_HOME` or the
//! platform's config folder) unless given another one, and protects
//! Latch's own paths the same way the daemon does, so `explain` shows the
//! decision the daemon would make.
//!
//! Rules with a plain-English `condition` are judged by a model in the
//! daemon. `explain` does not ask the model unless given `--ask-model`: it
//! says which conditions the model would be asked about, what each would
//! decide if it held, and what decides otherwise. With `--ask-model` it
//! asks the policy's `[judge]` exactly as the daemon would (same prompt,
//! redacted arguments, time limit; no cache) and shows the model's reasons.
//! `test` never asks the model: a case whose call raises a question
//! expects `ask`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use latch_core::policy::{CaseTable, DEFAULT_POLICY, Explanation, Policy, PolicyError, Protected, render_problems};
use latch_core::{Call, ToolDef};
use latch_proto::paths::Paths;

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCmd {
    /// Validate a policy file and list every problem with its line.
    Check {
        /// The file to check (default: your policy file).
        file: Option<PathBuf>,
        /// Print JSON: the file, ok, the rule count, problems and warnings
        /// (each with line, column, message and hint).
        #[arg(long)]
        json: bool,
    },
    /// Show how one call would be classified and decided: the class and
    /// why, every rule that matched, and the decision.
    Explain {
        /// Server name, as given to `latch shim --name`.
        #[arg(long, required_unless_present = "hook")]
        server: Option<String>,
        /// Tool name.
        #[arg(long, required_unless_present = "hook")]
        tool: Option<String>,
        /// A coding agent's pre-tool hook payload (a JSON file), decided as
        /// `latch hook AGENT` would: `--hook claude-code payload.json`.
        #[arg(long, num_args = 2, value_names = ["AGENT", "FILE"], conflicts_with_all = ["server", "tool", "args", "tool_def"])]
        hook: Option<Vec<String>>,
        /// The call's arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// The tool's definition as `tools/list` returns it (a JSON file).
        #[arg(long, value_name = "FILE")]
        tool_def: Option<PathBuf>,
        /// Policy file to use (default: yours).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Ask the policy's [judge] model about rule conditions that could
        /// change the decision (by default explain only says it would).
        #[arg(long)]
        ask_model: bool,
    },
    /// Run a table of cases (`[[case]]` entries in a TOML file) against a
    /// policy; see docs/policy.md for the format.
    Test {
        /// The test table.
        file: PathBuf,
        /// Policy file to test (default: the table's `policy = "…"`, else yours).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Print the default policy file (what the daemon writes on first run).
    Default,
    /// Accept the policy change that waits because it loosens the policy
    /// (shown first; needs the approval PIN).
    Accept {
        /// Read the PIN from standard input instead of the terminal.
        #[arg(long)]
        pin_stdin: bool,
    },
    /// Run a candidate policy over the recorded calls: every call whose
    /// decision would change, grouped by the rule that would decide it.
    Replay {
        /// The candidate policy file.
        file: PathBuf,
        /// How far back: a duration (30m, 2h, 7d) or a UTC date.
        #[arg(long, default_value = "7d", value_parser = super::client::parse_time)]
        since: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The audit database (default: yours).
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
    },
}

/// Runs a `latch policy` subcommand; returns the exit code.
pub fn run(cmd: PolicyCmd) -> anyhow::Result<i32> {
    match cmd {
        PolicyCmd::Check { file, json: false } => check(file),
        PolicyCmd::Check { file, json: true } => check_json(file),
        PolicyCmd::Explain { server, tool, args, tool_def, hook, policy, json, ask_model } => match hook {
            Some(h) => {
                let (server, tool, args, def) = super::hook::explain_inputs(&h[0], Path::new(&h[1]))?;
                explain_def(&server, &tool, args, def, policy, json, ask_model)
            }
            None => explain(
                server.as_deref().unwrap_or_default(),
                tool.as_deref().unwrap_or_default(),
                &args,
                tool_def.as_deref(),
                policy,
                json,
                ask_model,
            ),
        },
        PolicyCmd::Test { file, policy } => test(&file, policy),
        PolicyCmd::Accept { pin_stdin } => super::pin::accept(pin_stdin),
        PolicyCmd::Replay { file, since, json, database } => {
            super::policy_replay::run(super::policy_replay::ReplayArgs { file, since, json, database })
        }
        PolicyCmd::Default => {
            print!("{DEFAULT_POLICY}");
            Ok(0)
        }
    }
}

fn paths() -> anyhow::Result<Paths> {
    Ok(Paths::from_env()?)
}

fn protected(paths: &Paths) -> Protected {
    latch_daemon::identity::protected(paths)
}

/// Reads and parses a policy file, printing problems and warnings to
/// stderr; `None` when it has problems (already printed). `None` for `file` means the user's file, or the built-in policy
/// when that does not exist yet.
pub(super) fn load(file: Option<PathBuf>) -> anyhow::Result<(Option<Policy>, String)> {
    let paths = paths()?;
    let (path, explicit) = match file {
        Some(f) => (f, true),
        None => (paths.policy.clone(), false),
    };
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            eprintln!(
                "note: no policy file at {shown} yet (the daemon writes it on first run); using the built-in defaults"
            );
            let mut p = Policy::builtin();
            p.set_protected(protected(&paths));
            let p = with_managed(p, &paths, DEFAULT_POLICY, "built-in defaults", &path);
            return Ok((Some(p), "built-in defaults".to_owned()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(super::Usage(format!(
                "there is no policy file at {shown}: check the path (without a FILE, your own policy is used)"
            ))
            .into());
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot read the policy file {shown}"))),
    };
    match Policy::parse(&text) {
        Ok(mut p) => {
            eprint!("{}", render_problems(p.warnings(), "warning", &shown, &text));
            p.set_protected(protected(&paths));
            let p = with_managed(p, &paths, &text, &shown, &path);
            Ok((Some(p), shown))
        }
        Err(e) => {
            eprint!("{}", e.render(&shown, &text));
            eprintln!("{shown}: {}", summary(&e));
            Ok((None, shown))
        }
    }
}

/// `p` with the managed policy above it, as the daemon enforces it (unless
/// `path` is the managed file itself); says on stderr what the managed
/// layer is and which of the file's rules it makes of no effect.
fn with_managed(p: Policy, paths: &Paths, text: &str, shown: &str, path: &Path) -> Policy {
    let managed = latch_daemon::managed::path();
    let same = |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().is_ok_and(|b| a == b));
    if same(path, &managed) {
        return p;
    }
    let state = latch_daemon::managed::load(&managed);
    if let Some(d) = state.describe() {
        eprintln!("note: managed policy {d}");
    }
    let p = latch_daemon::managed::apply(p, &state, protected(paths));
    eprint!("{}", render_problems(&p.overridden(), "warning", shown, text));
    p
}

fn summary(e: &PolicyError) -> String {
    let n = e.problems.len();
    format!("{n} problem{} found; nothing was changed", if n == 1 { "" } else { "s" })
}

fn check(file: Option<PathBuf>) -> anyhow::Result<i32> {
    let (loaded, shown) = load(file)?;
    match loaded {
        None => Ok(1),
        Some(p) => {
            let n = p.rule_count();
            println!("{shown}: ok ({n} rule{})", if n == 1 { "" } else { "s" });
            Ok(0)
        }
    }
}

/// `policy check --json`: the same checks as [`check`], as one JSON object
/// on stdout (and the same exit codes).
fn check_json(file: Option<PathBuf>) -> anyhow::Result<i32> {
    let paths = paths()?;
    let path = file.clone().unwrap_or_else(|| paths.policy.clone());
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(super::Usage(format!("there is no policy file at {shown}: check the path")).into());
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot read the policy file {shown}"))),
    };
    let list = |problems: &[latch_core::policy::Problem]| -> Vec<serde_json::Value> {
        problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "line": p.line,
                    "column": p.column,
                    "message": latch_core::redact::redact_text(&p.message),
                    "hint": latch_core::redact::redact_text(&p.hint),
                })
            })
            .collect()
    };
    let (report, code) = match text.as_deref().map(Policy::parse) {
        None => (
            serde_json::json!({"file": shown, "ok": true, "builtin": true, "rules": Policy::builtin().rule_count(),
            "problems": [], "warnings": []}),
            0,
        ),
        Some(Ok(p)) => {
            let state = latch_daemon::managed::load(&latch_daemon::managed::path());
            let layered = latch_daemon::managed::apply(p.clone(), &state, protected(&paths));
            let warnings: Vec<_> = p.warnings().iter().chain(&layered.overridden()).cloned().collect();
            (
                serde_json::json!({"file": shown, "ok": true, "rules": p.rule_count(), "problems": [],
                "warnings": list(&warnings), "managed": state.describe()}),
                0,
            )
        }
        Some(Err(e)) => (
            serde_json::json!({"file": shown, "ok": false, "problems": list(&e.problems),
            "warnings": []}),
            1,
        ),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(code)
}

fn explain(
    server: &str,
    tool: &str,
    args: &str,
    tool_def: Option<&Path>,
    policy: Option<PathBuf>,
    json: bool,
    ask_model: bool,
) -> anyhow::Result<i32> {
    let args: serde_json::Value = serde_json::from_str(args).map_err(|e| {
        super::Usage(format!(
            "--args is not valid JSON ({e}): give the arguments as one JSON object in single quotes, e.g. \
             --args '{{\"path\": \"/tmp/notes.txt\"}}'"
        ))
    })?;
    let def = match tool_def {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the tool definition {}", path.display()))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
            Some(ToolDef::from_value(&v).ok_or_else(|| {
                anyhow!(
                    "{} is not a tool definition: it needs a string `name` (give one entry of tools/list)",
                    path.display()
                )
            })?)
        }
    };
    explain_def(server, tool, args, def, policy, json, ask_model)
}

fn explain_def(
    server: &str,
    tool: &str,
    args: serde_json::Value,
    def: Option<ToolDef>,
    policy: Option<PathBuf>,
    json: bool,
    ask_model: bool,
) -> anyhow::Result<i32> {
    let (loaded, shown) = load(policy)?;
    let Some(p) = loaded else { return Ok(1) };
    let call = Call { server, tool, args: &args };
    // Paths are read as a server started here would read them.
    let env = latch_daemon::identity::server_env(Some(std::process::id()));
    let memo = latch_daemon::identity::Memo::default();
    let mut x = p.explain_in(&call, def.as_ref(), latch_daemon::identity::place(&env, &memo));
    if ask_model && !x.questions.is_empty() {
        x = ask_the_model(&p, &call, def.as_ref(), x)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&x)?);
    } else {
        print!("{}", render_explanation(&x, &shown, &args));
    }
    Ok(0)
}

/// Asks the `[judge]` about the open questions, as the daemon would, and
/// explains again with the answers.
fn ask_the_model(
    p: &Policy,
    call: &Call<'_>,
    def: Option<&ToolDef>,
    mut x: Explanation,
) -> anyhow::Result<Explanation> {
    let Some(conf) = p.judge() else { return Ok(x) };
    let redacted = latch_core::redact::redact_value(&latch_core::redact::bounded(call.args));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut answers = Vec::new();
    while !x.questions.is_empty() {
        eprintln!(
            "asking {} at {} about {} condition{}…",
            conf.model,
            conf.endpoint,
            x.questions.len(),
            if x.questions.len() == 1 { "" } else { "s" }
        );
        let view =
            latch_daemon::judge::CallView { server: call.server, tool: call.tool, class: x.class, args: &redacted };
        answers.extend(rt.block_on(latch_daemon::judge::ask_all(conf, &x.questions, &view)));
        x = p.explain_judged(call, def, &answers);
    }
    Ok(x)
}

fn render_explanation(x: &Explanation, policy: &str, args: &serde_json::Value) -> String {
    let mut out = String::new();
    let flags: Vec<&str> = x.flags.iter().map(|f| f.as_str()).collect();
    out.push_str(&format!("call      {} / {}  {}\n", x.server, x.tool, args));
    out.push_str(&format!("policy    {policy}\n"));
    out.push_str(&format!(
        "class     {}{}\n",
        x.class,
        if flags.is_empty() { String::new() } else { format!("  flags: {}", flags.join(", ")) }
    ));
    for r in &x.class_reasons {
        out.push_str(&format!("            - {r}\n"));
    }
    if !x.domains.is_empty() {
        out.push_str(&format!("domains   {}\n", x.domains.join(", ")));
    }
    out.push_str(
        "order     1. built-in self-protection  2. your rules, top to bottom, first match decides  3. class default\n",
    );
    if x.matched_rules.is_empty() {
        out.push_str("matched   no rule\n");
    } else {
        out.push_str("matched\n");
        for m in &x.matched_rules {
            let at = m.line.map_or_else(|| "built-in".to_owned(), |l| format!("line {l}"));
            let mark = match (&m.condition, m.holds) {
                _ if m.decided => "decides",
                (Some(_), Some(false)) => "(the model judged its condition does not hold)",
                (Some(_), _) if x.questions.iter().any(|q| q.rule == m.rule) => "would ask the model",
                (Some(_), _) => "(not asked: it cannot change the decision)",
                (None, _) => "(later, not used)",
            };
            out.push_str(&format!(
                "  {:<10} {} -> {}  {mark}\n              when {}\n",
                at, m.rule, m.effect, m.matches
            ));
            if let Some(c) = &m.condition {
                out.push_str(&format!("              if   {c:?}\n"));
            }
        }
    }
    let by = match (&x.rule, x.decided_by) {
        (Some(r), _) => format!("by {r}"),
        (None, _) => format!("by the default for {}", x.class),
    };
    out.push_str(&format!("layer     {}\n", layer_words(x.layer)));
    if x.questions.is_empty() {
        out.push_str(&format!("decision  {} {by}\n", x.decision.as_str().to_uppercase()));
    } else {
        out.push_str("decision  depends on the model, which explain does not ask (add --ask-model to ask it)\n");
        for q in &x.questions {
            out.push_str(&format!(
                "            - if {:?} holds: {} by {}\n",
                q.condition,
                q.effect.as_str().to_uppercase(),
                q.rule
            ));
        }
        if let Some(o) = &x.otherwise {
            let by = o.rule.as_ref().map_or_else(|| format!("the default for {}", x.class), |r| r.clone());
            out.push_str(&format!("            - if none holds: {} by {by}\n", o.decision.as_str().to_uppercase()));
        }
        out.push_str("            - if the model cannot answer (down, slow, nonsense): ASK\n");
        return out;
    }
    let n = x.class_reasons.len();
    for r in &x.reasons[n.min(x.reasons.len())..] {
        out.push_str(&format!("            - {r}\n"));
    }
    out
}

/// Which layer decided, for a person.
fn layer_words(layer: latch_core::policy::Layer) -> String {
    use latch_core::policy::Layer;
    match layer {
        Layer::Managed => format!(
            "managed ({}): stricter here than your policy, which cannot loosen it",
            latch_daemon::managed::path().display()
        ),
        Layer::User => "user (your policy file)".to_owned(),
        Layer::Builtin => "built-in (no policy can change it)".to_owned(),
    }
}

fn test(file: &Path, policy: Option<PathBuf>) -> anyhow::Result<i32> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read the test table {shown}"))?;
    let table = match CaseTable::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            eprint!("{}", e.render(&shown, &text));
            eprintln!("{shown}: {}", summary(&e));
            return Ok(1);
        }
    };
    let policy = policy.or_else(|| table.policy.as_ref().map(|p| file.parent().unwrap_or(Path::new(".")).join(p)));
    let (loaded, policy_shown) = load(policy)?;
    let Some(p) = loaded else { return Ok(1) };
    println!("testing {policy_shown} with {shown}");
    let results = table.run(&p);
    let failed = results.iter().filter(|r| !r.passed()).count();
    for r in &results {
        let x = &r.explanation;
        let by = x.rule.clone().unwrap_or_else(|| format!("default for {}", x.class));
        if r.passed() {
            println!("PASS  {} (line {}): {} by {by}", r.name, r.line, x.decision);
        } else {
            println!("FAIL  {} (line {}): {}", r.name, r.line, r.failures.join("; "));
            println!("      class {}, decided by {by}", x.class);
        }
    }
    println!(
        "{} case{}: {} passed, {failed} failed",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        results.len() - failed
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
