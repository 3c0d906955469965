use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::class::Flags;
use crate::path::{FileId, Resolved, Resolver};

const POLICY: &str = "/home/u/.config/latch/policy.toml";

fn protected() -> Protected {
    Protected {
        paths: vec![
            POLICY.into(),
            "/home/u/.config/latch".into(),
            "/home/u/.local/share/latch".into(),
            "/home/u/.local/share/latch/audit.db".into(),
            "/home/u/.local/share/latch/run/latch.sock".into(),
            "/usr/local/bin/latch".into(),
        ],
        home: Some("/home/u".into()),
        configs: vec!["/home/u/.cursor/mcp.json".into(), "/home/u/.config/Code/User/settings.json".into()],
        binary: vec!["/usr/local/bin/latch".into()],
        files: vec![(FileId { dev: 1, ino: 100 }, Kind::Latch), (FileId { dev: 1, ino: 200 }, Kind::Binary)],
        pids: vec![4242],
        case_insensitive: false,
    }
}

/// The file system of the tests: two symlinks and two hard links.
struct Fs;

impl Resolver for Fs {
    fn resolve(&self, abs: &str) -> Option<Resolved> {
        // As the daemon's resolver: a chain too long to follow
        // (`/tmp/deep` links through hundreds of steps), the asking
        // process's own `/proc/self` and `/dev/fd`.
        let unfollowable = ["/tmp/deep/", "/proc/self", "/proc/thread-self", "/dev/fd", "/dev/std"];
        if unfollowable.iter().any(|u| abs.starts_with(u)) {
            return None;
        }
        let (real, file) = match abs {
            "/tmp/link" => (POLICY.to_owned(), Some(FileId { dev: 1, ino: 100 })),
            "/tmp/dirlink/policy.toml" => (POLICY.to_owned(), Some(FileId { dev: 1, ino: 100 })),
            "/tmp/hard" => ("/tmp/hard".to_owned(), Some(FileId { dev: 1, ino: 100 })),
            "/tmp/bin/l" => ("/usr/local/bin/latch".to_owned(), Some(FileId { dev: 1, ino: 200 })),
            "/tmp/bin/copy" => ("/tmp/bin/copy".to_owned(), Some(FileId { dev: 1, ino: 200 })),
            // `/tmp/sub` links to `/home/u/.config/latch/sub`: `..` leaves the target.
            "/tmp/sub/../policy.toml" => (POLICY.to_owned(), Some(FileId { dev: 1, ino: 100 })),
            other => (other.to_owned(), None),
        };
        Some(Resolved { real, file })
    }
}

fn cls(class: Class) -> Classification {
    let mut flags = Flags::new();
    if class == Class::Execute {
        flags.insert(Flag::Shell);
    }
    Classification { class, flags, reasons: Vec::new(), domains: Vec::new() }
}

fn env(cwd: &str) -> PathEnv {
    let mut vars = BTreeMap::new();
    vars.insert("HOME".to_owned(), "/home/u".to_owned());
    PathEnv { home: Some("/home/u".into()), cwd: Some(cwd.into()), vars, ..PathEnv::default() }
}

fn check_in(tool: &str, class: Class, args: &Value, cwd: &str) -> Option<Finding> {
    let g = Guard::new(&protected());
    let e = env(cwd);
    let call = Call { server: "s", tool, args };
    g.check(&call, &cls(class), Place::new(&e, Some(&Fs)))
}

fn write(path: &str) -> Option<Finding> {
    check_in("write_file", Class::Write, &json!({"path": path, "content": "[defaults]\nwrite = \"allow\""}), "/srv/app")
}

fn run(cmd: &str) -> Option<Finding> {
    check_in("run_command", Class::Execute, &json!({ "command": cmd }), "/srv/app")
}

fn denied(f: Option<Finding>) -> bool {
    f.is_some_and(|f| f.deny)
}

#[test]
fn every_spelling_of_the_policy_is_denied() {
    for p in [
        POLICY,
        "/home/u//.config/latch/policy.toml",
        "//home/u/.config//latch/policy.toml",
        "/home/u/./.config/./latch/policy.toml",
        "/home/u/.config/x/../latch/policy.toml",
        "/srv/../home/u/.config/latch/policy.toml",
        "~/.config/latch/policy.toml",
        "$HOME/.config/latch/policy.toml",
        "${HOME}/.config/latch/policy.toml",
        "../../home/u/.config/latch/policy.toml",
        "file:///home/u/.config/latch/policy.toml",
        "/home/u/.config/latch/policy.toml.latch-tmp",
        "/home/u/.config/latch",
        "/tmp/link",
        "/tmp/dirlink/policy.toml",
        "/tmp/hard",
        "/tmp/sub/../policy.toml",
    ] {
        assert!(denied(write(p)), "{p}");
    }
    // Relative to the server's working directory.
    let args = json!({"path": "latch/policy.toml", "content": ""});
    assert!(denied(check_in("write_file", Class::Write, &args, "/home/u/.config")));
    let args = json!({"path": "policy.toml", "content": ""});
    assert!(denied(check_in("write_file", Class::Write, &args, "/home/u/.config/latch")));
    assert!(check_in("write_file", Class::Write, &args, "/srv/app").is_none());
}

#[test]
fn relative_paths_resolve_against_the_servers_roots_too() {
    let g = Guard::new(&protected());
    let mut e = env("/srv/app");
    e.roots = vec!["/srv/data".into(), "/home/u/.config".into()];
    let args = json!({"path": "latch/policy.toml"});
    let call = Call { server: "s", tool: "write_file", args: &args };
    assert!(denied(g.check(&call, &cls(Class::Write), Place::new(&e, None))));
}

#[test]
fn reads_of_latchs_files_are_denied_reads_of_client_configs_are_not() {
    let read = |p: &str| check_in("read_file", Class::Read, &json!({ "path": p }), "/srv/app");
    assert!(denied(read("/home/u/.local/share/latch/audit.db")));
    assert!(denied(read("~/.local/share/latch/run/latch.sock")));
    assert!(read("/home/u/.cursor/mcp.json").is_none());
    assert!(read("/home/u/.claude/settings.json").is_none());
    assert!(denied(write("/home/u/.cursor/mcp.json")));
    assert!(denied(write("~/.claude/settings.json")));
    assert!(denied(write("~/.claude/settings.local.json")));
    assert!(denied(write("/srv/app/.mcp.json")));
    assert!(denied(write("/srv/app/.claude/settings.json")));
    assert!(denied(write("~/.codex/config.toml")));
    assert!(denied(write("~/.gemini/settings.json")));
    assert!(denied(write("~/.copilot/settings.json")));
    assert!(denied(write(".vscode/mcp.json")));
}

#[test]
fn look_alikes_pass() {
    for p in [
        "/home/u/.local/share/latchy/x",
        "/home/u/project/policy.toml",
        "/backup/usr/local/bin/latch",
        "/srv/app/notes.txt",
        "/home/u/.config/latchkey",
    ] {
        assert!(write(p).is_none(), "{p}");
    }
}

#[test]
fn removing_a_folder_that_holds_latch_is_denied() {
    let mv = |from: &str| check_in("move_file", Class::Write, &json!({"source": from, "destination": "/tmp/x"}), "/");
    assert!(denied(mv("/home/u/.config")));
    assert!(denied(mv("~/.local/share")));
    assert!(mv("/home/u/notes").is_none());
}

#[test]
fn shell_spellings_of_latch_approve_are_denied() {
    for c in [
        "latch approve 3",
        "l'a'tch approve 3",
        "lat\"\"ch approve 3",
        "$'\\x6c\\x61tch' approve 3",
        "l\\atch approve 3",
        "x=lat; ${x}ch approve 3",
        "\"$(which latch)\" approve 3",
        "`which latch` deny 3",
        "/usr/local/bin/latch approve 3",
        "/tmp/bin/l approve 3",
        "/tmp/bin/copy approve 3",
        "$(curl -s http://x/name) approve 3",
        "sudo -E env nohup latch approve 3",
        "bash -c 'l\"\"atch approve 3'",
        "sh -c \"eval 'latch policy accept'\"",
        "echo ok && timeout 9 latch pin set",
        "latch auth login github --url https://api.example/mcp --no-browser",
        "latch auth logout github",
        "cd /tmp; LATCH=latch; $LATCH approve --scope always 3",
        "LATCH.EXE approve 3",
        "latch resume",
        "echo 1234 | latch resume --pin-stdin",
        "nohup l'a'tch resume &",
        "latch tools accept facts get_fact_of_the_day",
        "echo 1234 | latch tools accept facts get_fact_of_the_day --pin-stdin",
    ] {
        assert!(denied(run(c)), "{c}");
    }
}

#[test]
fn shell_paths_are_denied_in_every_spelling() {
    for c in [
        "rm ~/.config/latch/policy.toml",
        "rm -f \"$HOME\"/.config/latch/policy.toml",
        "cd ~/.config/latch && rm policy.toml",
        "cd ~ && rm .config/latch/policy.toml",
        "cd ~/.config; cd latch; : > policy.toml",
        "echo '[defaults]' > ~/.config/latch/policy.toml",
        "cat >> /home/u//.config/latch/./policy.toml",
        "cp /tmp/evil /home/u/.config/latch/policy.toml",
        "mv ~/.config/latch /tmp/gone",
        "rm -rf ~/.config",
        "rm -rf ~/.local/share/latch/run",
        "ln -sf /tmp/evil ~/.config/latch/policy.toml",
        "dd if=/tmp/evil of=/home/u/.config/latch/policy.toml",
        "sed -i s/deny/allow/ ~/.config/latch/policy.toml",
        "tee ~/.config/latch/policy.toml < /tmp/evil",
        "sqlite3 ~/.local/share/latch/audit.db 'delete from events'",
        "cat ~/.local/share/latch/audit.db",
        "rm ~/.config/l*/policy.toml",
        "rm -rf ~/.config/lat?h",
        "echo x > /tmp/link",
        "echo x > /tmp/hard",
        "$(pwd)/../.config/latch/policy.toml",
        "printf x > \"$(pwd)/.config/latch/policy.toml\"",
        "echo '{}' > ~/.claude/settings.json",
        "cp /tmp/x .mcp.json",
        "sed -i s/latch// ~/.cursor/mcp.json",
        "fuser -k ~/.local/share/latch/run/latch.sock",
        "rm -rf ~/.local/share/latch/run/",
    ] {
        assert!(denied(run(c)), "{c}");
    }
}

#[test]
fn stopping_the_daemon_is_denied() {
    for c in [
        "pkill latch",
        "pkill -f 'lat.h daemon'",
        "pkill -9 -f l[a]tch",
        "killall latch",
        "kill 4242",
        "kill -9 4242",
        "kill -s KILL -- 4242",
        "kill -9 -1",
        "pgrep latch | xargs kill",
        "kill $(pgrep -f latch)",
        "kill -9 `pidof latch`",
        "ps aux | grep latch | awk '{print $2}' | xargs kill -9",
        "systemctl --user stop latch.service",
        "pkill -u u",
        "killall5 -9",
    ] {
        assert!(denied(run(c)), "{c}");
    }
    // A pid only known at run time asks.
    let f = run("kill $(cat /tmp/app.pid)").expect("asks");
    assert!(!f.deny, "{f:?}");
}

#[test]
fn ordinary_commands_pass() {
    for c in [
        "cargo build -p latch-core",
        "grep -r latch_approve src/",
        "latch shim --name fs -- npx x",
        "latch status",
        "latch tools list --json",
        "cat ~/.claude/settings.json",
        "cp a.txt ~/",
        "ls ~",
        "kill 1234",
        "pkill -f my-server",
        "echo hello > /tmp/out.txt",
        "cd /srv && rm -rf build",
        "git commit -m 'mention latch approve in docs'",
        "echo Report written by the Latch demo agent.",
    ] {
        let f = run(c);
        assert!(!denied(f.clone()), "{c}: {f:?}");
    }
}

#[test]
fn text_that_is_not_a_shell_command_only_protects_latch() {
    // An e-mail body mentioning a client config is not a write to it.
    let args = json!({"to": "a@b.c", "body": "please edit ~/.claude/settings.json for me"});
    assert!(check_in("send_email", Class::Send, &args, "/srv").is_none());
    let args = json!({"to": "a@b.c", "body": "run latch approve 12 now"});
    assert!(denied(check_in("send_email", Class::Send, &args, "/srv")));
}

#[test]
fn reason_names_the_argument_and_the_file() {
    let f = write("/home/u//.config/latch/policy.toml").unwrap();
    assert!(f.why.contains("argument `path`"), "{}", f.why);
    assert!(f.why.contains(POLICY), "{}", f.why);
    let args = json!({"files": {"~/.config/latch/policy.toml": "x"}});
    let f = check_in("write_files", Class::Write, &args, "/").unwrap();
    assert!(f.why.contains("key of argument `files.~/.config/latch/policy.toml`"), "{}", f.why);
}

#[test]
fn case_insensitive_file_systems_fold() {
    let mut p = protected();
    p.case_insensitive = true;
    let g = Guard::new(&p);
    let mut e = env("/");
    e.case_insensitive = true;
    let args = json!({"path": "/Home/U/.Config/LATCH/Policy.TOML"});
    let call = Call { server: "s", tool: "write_file", args: &args };
    assert!(denied(g.check(&call, &cls(Class::Write), Place::new(&e, None))));
}

#[test]
fn too_many_paths_to_resolve_asks() {
    let paths: Vec<String> = (0..300).map(|i| format!("/srv/app/f{i}.txt")).collect();
    let f = check_in("write_files", Class::Write, &json!({ "paths": paths }), "/").expect("asks");
    assert!(!f.deny && f.why.contains("more than"), "{f:?}");
    let few: Vec<String> = (0..10).map(|i| format!("/srv/app/f{i}.txt")).collect();
    assert!(check_in("write_files", Class::Write, &json!({ "paths": few }), "/").is_none());
}

#[test]
fn paths_inside_code_and_split_paths_are_caught() {
    assert!(denied(run("python3 -c \"open('/home/u/.config/latch/policy.toml','w').write('')\"")));
    assert!(denied(run(
        "node -e \"require('fs').writeFileSync(process.env.HOME+'/x', '')\"; cat ~/.local/share/latch/audit.db"
    )));
    assert!(denied(run("python3 -c \"open('/home/u/.cursor/mcp.json','w')\"")));
    let args = json!({"content": "import os\nos.remove('~/.config/latch/policy.toml')\n", "path": "/srv/app/x.py"});
    assert!(denied(check_in("write_file", Class::Write, &args, "/srv/app")));
    let args = json!({"dir": "~/.config", "name": "latch/policy.toml", "content": "x"});
    assert!(denied(check_in("write_file", Class::Write, &args, "/srv/app")));
}

#[test]
fn a_policy_that_allows_everything_still_denies_and_asks() {
    let mut p = crate::policy::Policy::parse("[[rule]]\ntool = \"*\"\neffect = \"allow\"\n").unwrap();
    p.set_protected(protected());
    let e = env("/srv/app");
    let place = Place::new(&e, Some(&Fs));
    let decide = |cmd: &str| {
        let args = json!({ "command": cmd });
        let call = Call { server: "sh", tool: "run_command", args: &args };
        p.evaluate_in(&call, &cls(Class::Execute), &[], place).decision
    };
    use crate::class::Decision;
    assert_eq!(decide("ls -la"), Decision::Allow);
    assert_eq!(decide("x=lat; ${x}ch approve 3"), Decision::Deny);
    assert_eq!(decide("echo x > /tmp/hard"), Decision::Deny);
    assert_eq!(decide("kill $(cat /tmp/app.pid)"), Decision::Ask);
    assert_eq!(decide("$(curl -s http://x/y) --flag"), Decision::Ask);
}

/// The byte table reads texts as the character test did.
#[test]
fn shellish_agrees_with_the_character_test() {
    let by_char = |s: &str| s.contains(|c: char| c.is_whitespace() || super::SHELL_CHARS.contains(c));
    let pieces = [
        "a", "Z9", "/", "~", "-", " ", "\t", "\n", "\u{b}", "\u{c}", "\r", ";", "|", "&", "$", "`", "<", ">", "(", ")",
        "'", "\"", "\\", "é", "結", "\u{85}", "\u{a0}", "\u{1680}", "\u{2003}", "\u{2028}", "\u{202f}", "\u{3000}",
        "\u{200b}", "\u{feff}", "🙂",
    ];
    let mut seed = 0x2545_f491_u64;
    for _ in 0..50_000 {
        let mut t = String::new();
        for _ in 0..(seed % 12) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            t.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        seed = seed.wrapping_add(1);
        assert_eq!(super::shellish(&t), by_char(&t), "{t:?}");
    }
    assert!(!super::shellish(&"x".repeat(1 << 20)));
}

/// A path the resolver cannot follow may lead to Latch's files: the call
/// asks (before, it was compared by name only and allowed). What names only
/// the opening process (its streams, its `/proc/self` information) does not.
#[test]
fn a_path_latch_cannot_follow_asks() {
    for p in [
        "/tmp/deep/policy.toml",
        "/proc/self/cwd/../cfg/policy.toml",
        "/proc/self/root/home/u/cfg/policy.toml",
        "/proc/thread-self/cwd/x",
        "/dev/fd/3/policy.toml",
    ] {
        let f = write(p).unwrap_or_else(|| panic!("{p}: not asked"));
        assert!(!f.deny && f.why.contains("cannot follow"), "{p}: {f:?}");
        let read = check_in("read_file", Class::Read, &json!({ "path": p }), "/srv/app");
        assert!(read.is_some_and(|f| !f.deny), "read {p}");
    }
    let f = run("echo x > /proc/self/cwd/../cfg/policy.toml").expect("asked");
    assert!(f.why.contains("cannot follow"), "{f:?}");
    // Spelled out, it is denied as before.
    assert!(denied(write("/proc/self/cwd/../.config/latch/policy.toml")));
    // A deny elsewhere in the call still wins.
    let both = json!({"path": "/tmp/deep/a", "also": POLICY});
    assert!(denied(check_in("write_file", Class::Write, &both, "/srv/app")));
    for cmd in ["cat /proc/self/status", "echo hi > /dev/stderr", "tee /dev/fd/2 < notes.txt", "wc /dev/stdin"] {
        assert_eq!(run(cmd), None, "{cmd}");
    }
    assert_eq!(write("/dev/stdout"), None);
}

/// A link the command makes for itself does not exist when the call is
/// decided: a write through it asks (before: `C/latch/policy.toml` was a
/// harmless relative name and the write ran).
#[test]
fn a_link_the_command_makes_then_uses_asks() {
    for cmd in [
        "ln -s ~/.config C && echo x > C/latch/policy.toml",
        "ln -s ~/.config C; exec 3<>C/latch/policy.toml; echo x >&3",
        "ln -s $HOME/.config C && echo x > C/latch/policy.toml",
    ] {
        let f = run(cmd).unwrap_or_else(|| panic!("{cmd}: allowed"));
        assert!(f.deny && f.why.contains("the same command makes"), "{cmd}: {f:?}");
    }
    assert!(denied(run("mv ~/.config c2 && cat c2/latch/policy.toml")));
    for cmd in [
        "ln -s ../lib/libfoo.so.1 libfoo.so && ls",
        "cp -r template newproj && cd newproj && npm install",
        "ln -sf build/compile_commands.json . && cat compile_commands.json",
    ] {
        assert_eq!(run(cmd), None, "{cmd}");
    }
}

/// An archive unpacked into a folder that holds Latch's files may replace
/// them: a person decides.
#[test]
fn an_archive_unpacked_over_latchs_folder_asks() {
    for cmd in [
        "tar -xf x.tar -C ~/.config",
        "cd ~/.config && tar -xf /srv/app/x.tar",
        "unzip -o x.zip -d ~",
        "tar -xf x.tar --directory=$HOME",
        "git --work-tree=$HOME/.config checkout -f .",
        "tar -xf a.tar --dir ~",
        "tar -xf a.tar -C vendor -C ~",
        "unzip -od ~ a.zip",
    ] {
        assert!(run(cmd).is_some_and(|f| !f.deny && f.why.contains("unpacks")), "{cmd}: {:?}", run(cmd));
    }
    assert_eq!(run("tar -xf x.tar -C vendor"), None);
    assert_eq!(run("unzip x.zip -d dist"), None);
}
