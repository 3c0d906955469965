use serde_json::{Value, json};

use super::*;
use crate::path::Resolved;

fn env(cwd: &str) -> PathEnv {
    PathEnv { home: Some("/home/u".into()), cwd: Some(cwd.into()), ..PathEnv::default() }
}

/// A file system where `/proj/link` is a symlink to `/etc` and
/// `/tmp/alias` one to `/proj`.
struct Links;

impl Resolver for Links {
    fn resolve(&self, abs: &str) -> Option<Resolved> {
        // `/proj/deep` is a chain too long to follow; `/proc/self` is
        // the resolver's own (as with the daemon's).
        if abs.starts_with("/proj/deep") || abs.starts_with("/proc/self") {
            return None;
        }
        let real = if let Some(rest) = abs.strip_prefix("/proj/link") {
            format!("/etc{rest}")
        } else if let Some(rest) = abs.strip_prefix("/tmp/alias") {
            format!("/proj{rest}")
        } else {
            abs.to_owned()
        };
        Some(Resolved { real, file: None })
    }
}

fn write(args: Value, e: &PathEnv, resolver: Option<&dyn Resolver>) -> Option<String> {
    outside(&args, true, false, e, resolver, &folders(e, None, &[]))
}

fn cls(class: Class) -> Classification {
    Classification { class, flags: Default::default(), reasons: Vec::new(), domains: Vec::new() }
}

fn shell(cmd: &str, e: &PathEnv) -> Option<String> {
    outside(&json!({ "command": cmd }), false, true, e, Some(&Links), &folders(e, None, &[]))
}

#[test]
fn the_workspace_is_the_clients_roots_else_the_servers_folders() {
    let mut e = env("/proj");
    e.roots = vec!["/data".into()];
    assert_eq!(folders(&e, None, &[]), ["/data", "/proj"]);
    let roots = ["file:///home/u/work%20space".to_owned(), "https://example.com/x".to_owned()];
    assert_eq!(folders(&e, Some(&roots), &[]), ["/home/u/work space"]);
    // Roots with no folder among them count as none sent.
    assert_eq!(folders(&e, Some(&roots[1..]), &[]), ["/data", "/proj"]);
    assert_eq!(folders(&e, Some(&[]), &["~/src".to_owned()]), ["/data", "/home/u/src", "/proj"]);
    // Only absolute roots: a host or a relative `file://` is no folder here.
    let odd = ["file://../..".to_owned(), "file://host/srv".to_owned(), "file://localhost/srv".to_owned()];
    assert_eq!(folders(&e, Some(&odd), &[]), ["/srv"]);
    // A working directory of `/` or the home folder is no workspace.
    assert!(folders(&env("/"), None, &[]).is_empty());
    assert!(folders(&env("/home/u/"), None, &[]).is_empty());
}

#[test]
fn writes_inside_are_plain_and_outside_are_flagged() {
    let e = env("/proj");
    for inside in [json!({"path": "/proj/src/main.rs"}), json!({"path": "src/x.rs"}), json!({"path": "/proj"})] {
        assert_eq!(write(inside.clone(), &e, None), None, "{inside}");
    }
    let why = write(json!({"path": "/tmp/elsewhere/x"}), &e, None).unwrap();
    assert!(why.contains("/tmp/elsewhere/x") && why.contains("/proj"), "{why}");
    for out in [
        json!({"path": "/projects/x"}),
        json!({"path": "../other/x"}),
        json!({"path": "/proj/../etc/passwd"}),
        json!({"path": "src/../../x"}),
        json!({"path": "~/notes.txt"}),
        json!({"path": "~bob/x"}),
        json!({"path": "$UNSET/x"}),
        json!({"path": "file:///etc/x"}),
        json!({"edits": [{"path": "a"}, {"path": "/var/x"}]}),
        json!({"files": {"/var/x": "content"}}),
        json!({"content": "x", "destination": "/srv/y"}),
    ] {
        assert!(write(out.clone(), &e, None).is_some(), "{out}");
    }
    // Text that is not a path is not read as one, nor the content written.
    assert_eq!(write(json!({"path": "a.txt", "content": "see /etc/hosts and https://x.org/y"}), &e, None), None);
    assert_eq!(write(json!({"path": "a.sh", "content": "/usr/bin/env"}), &e, None), None);
    let edit = json!({"path": "a", "edits": [{"oldText": "/usr/bin/a", "newText": "/usr/bin/b"}]});
    assert_eq!(write(edit, &e, None), None);
}

#[test]
fn symlinks_decide_where_a_write_lands() {
    let e = env("/proj");
    let why = write(json!({"path": "/proj/link/cron.d/x"}), &e, Some(&Links)).unwrap();
    assert!(why.contains("through a symlink to /etc/cron.d/x"), "{why}");
    // `..` after a symlink leaves the link's target.
    assert!(write(json!({"path": "/proj/link/../x"}), &e, Some(&Links)).is_some());
    assert_eq!(write(json!({"path": "/proj/link/../x"}), &e, None), None);
    // A symlink into the workspace lands inside it.
    assert_eq!(write(json!({"path": "/tmp/alias/x"}), &e, Some(&Links)), None);
}

#[test]
fn the_servers_command_line_folders_count_for_relative_paths() {
    let mut e = env("/proj");
    e.roots = vec!["/data".into()];
    assert_eq!(write(json!({"path": "/data/x"}), &e, None), None);
    assert_eq!(write(json!({"path": "x"}), &e, None), None);
    assert!(write(json!({"path": "../x"}), &e, None).is_some());
}

#[test]
fn shell_words_that_write() {
    let e = env("/proj");
    for cmd in [
        "echo hi > out.txt",
        "cargo build 2>&1 | tee build.log",
        "cp /etc/hosts ./hosts",
        "ls -la /etc && cat /etc/hosts",
        "mv a.txt b.txt",
        "sed -i s/a/b/ src/x.rs",
        "curl -o dl.bin https://example.com/x",
        "make 2>/dev/null > build.log",
        "cargo test 2>&1 | tee /dev/stderr",
    ] {
        assert_eq!(shell(cmd, &e), None, "{cmd}");
    }
    for cmd in [
        "echo x >> /tmp/elsewhere",
        "cat a | tee -a ~/.profile",
        "cp a.txt /srv/b",
        "cp -t /srv a b",
        "install -m 755 tool /usr/local/bin/tool",
        "mv /srv/a b",
        "rm -rf /var/lib/x",
        "touch ../x",
        "cd /etc && echo x > hosts",
        "cd $UNSET; echo x > y",
        "dd if=/dev/zero of=/dev/sda",
        "echo x > /dev/null/../../etc/x",
        "sed -i s/a/b/ /etc/hosts",
        "curl -o /usr/bin/x https://example.com/x",
        "echo x > /proj/link/cron.d/job",
        "echo x > $UNSET",
        "$CMD /etc/x",
        "find . -name '*.o' | xargs rm",
        "bash -c 'echo x > /tmp/y'",
    ] {
        assert!(shell(cmd, &e).is_some(), "{cmd}");
    }
    // The command runs where its `cwd` argument says.
    let args = json!({"command": "echo x > out.txt", "cwd": "/tmp"});
    assert!(outside(&args, false, true, &e, None, &folders(&e, None, &[])).is_some());
    let args = json!({"command": "echo x > out.txt", "cwd": "/proj/sub"});
    assert_eq!(outside(&args, false, true, &e, None, &folders(&e, None, &[])), None);
}

#[test]
fn the_flag_is_set_for_write_and_shell_calls_only() {
    let e = env("/proj");
    let f = folders(&e, None, &[]);
    let mut read = cls(Class::Read);
    flag(&mut read, &json!({"path": "/etc/hosts"}), &e, None, &f);
    assert!(!read.flags.contains(&Flag::OutsideWorkspace));
    let mut w = cls(Class::Write);
    flag(&mut w, &json!({"path": "/etc/hosts"}), &e, None, &f);
    assert!(w.flags.contains(&Flag::OutsideWorkspace) && w.reasons.iter().any(|r| r.contains("/etc/hosts")));
    // An unknown workspace flags nothing.
    let mut w = cls(Class::Write);
    flag(&mut w, &json!({"path": "/etc/hosts"}), &env("/"), None, &[]);
    assert!(w.flags.is_empty());
}

#[test]
fn resolving_is_bounded() {
    let e = env("/proj");
    let many: Vec<String> = (0..MAX_RESOLVES + 1).map(|i| format!("/proj/f{i}")).collect();
    let why = write(json!({ "paths": many }), &e, Some(&Links)).unwrap();
    assert!(why.contains("not resolved"), "{why}");
}

/// A write whose path cannot be followed is not inside because its name
/// is: before, `/proj/deep/x` (a chain of links out of the project too long
/// to follow) counted as inside by name.
#[test]
fn a_path_that_cannot_be_followed_is_not_inside_by_name() {
    let e = env("/proj");
    for p in ["/proj/deep/x", "deep/x", "/proc/self/cwd/x"] {
        let why = write(json!({ "path": p }), &e, Some(&Links)).unwrap_or_else(|| panic!("{p}: not flagged"));
        assert!(why.contains("cannot follow"), "{p}: {why}");
    }
    assert!(shell("echo x > deep/notes", &e).is_some_and(|w| w.contains("cannot follow")));
    assert_eq!(shell("cargo test 2>&1 | tee /dev/stderr", &e), None);
    assert_eq!(write(json!({"path": "/proj/src/x.rs"}), &e, Some(&Links)), None);
}

/// An archive unpacked outside the workspace writes there.
#[test]
fn an_archive_unpacked_elsewhere_is_outside() {
    let e = env("/proj");
    assert!(shell("tar -xzf tool.tar.gz -C /usr/local/bin", &e).is_some());
    assert!(shell("unzip x.zip -d /opt/x", &e).is_some());
    assert_eq!(shell("tar -xzf dep.tgz -C vendor", &e), None);
}
