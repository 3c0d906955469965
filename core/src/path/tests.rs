use super::*;

fn env() -> PathEnv {
    let mut vars = BTreeMap::new();
    vars.insert("CFG".to_owned(), "/home/u/.config".to_owned());
    PathEnv { home: Some("/home/u".into()), cwd: Some("/srv/work".into()), vars, ..PathEnv::default() }
}

fn abs(s: &str) -> Option<Lexical> {
    Some(Lexical::Abs(s.to_owned()))
}

#[test]
fn every_spelling_of_the_policy_is_one_path() {
    let e = env();
    let want = abs("/home/u/.config/latch/policy.toml");
    for s in [
        "/home/u/.config/latch/policy.toml",
        "/home/u//.config/latch/policy.toml",
        "//home/u/.config/latch//policy.toml",
        "/home/u/./.config/./latch/policy.toml",
        "/home/u/x/../.config/latch/policy.toml",
        "/../home/u/.config/latch/policy.toml",
        "~/.config/latch/policy.toml",
        "~//.config/latch/policy.toml",
        "$HOME/.config/latch/policy.toml",
        "${HOME}/.config/latch/policy.toml",
        "${HOME:-/nowhere}/.config/latch/policy.toml",
        "$CFG/latch/policy.toml",
        "${CFG}/latch/../latch/policy.toml",
        "../../home/u/.config/latch/policy.toml",
        "../../../../../home/u/.config/latch/policy.toml",
        "file:///home/u/.config/latch/policy.toml",
        "file://localhost/home/u/.config/latch/policy.toml",
        "file:///home/u/%2Econfig/latch/policy%2Etoml",
        "  /home/u/.config/latch/policy.toml ",
    ] {
        assert_eq!(normalise(s, &e), want, "{s}");
    }
}

#[test]
fn relative_paths_join_the_working_directory() {
    let mut e = env();
    e.cwd = Some("/home/u/.config/latch".into());
    assert_eq!(normalise("policy.toml", &e), abs("/home/u/.config/latch/policy.toml"));
    assert_eq!(normalise("./policy.toml", &e), abs("/home/u/.config/latch/policy.toml"));
    e.cwd = Some("/home/u".into());
    assert_eq!(normalise(".config/latch/policy.toml", &e), abs("/home/u/.config/latch/policy.toml"));
}

#[test]
fn what_cannot_be_known_is_a_tail() {
    let mut e = env();
    assert_eq!(normalise("~bob/.ssh/id_rsa", &e), Some(Lexical::Tail(".ssh/id_rsa".into())));
    assert_eq!(
        normalise("$NOPE/.config/latch/policy.toml", &e),
        Some(Lexical::Tail(".config/latch/policy.toml".into()))
    );
    assert_eq!(normalise("${NOPE}/../x", &e), Some(Lexical::Tail("x".into())));
    e.cwd = None;
    assert_eq!(normalise("latch/policy.toml", &e), Some(Lexical::Tail("latch/policy.toml".into())));
    e.home = None;
    assert_eq!(normalise("~/.config/latch", &e), Some(Lexical::Tail(".config/latch".into())));
}

#[test]
fn case_folds_on_case_insensitive_file_systems() {
    let mut e = env();
    e.case_insensitive = true;
    assert_eq!(normalise("/Home/U/.Config/LATCH/Policy.TOML", &e), abs("/home/u/.config/latch/policy.toml"));
}

#[test]
fn not_paths() {
    let e = env();
    assert_eq!(normalise("", &e), None);
    assert_eq!(normalise("https://example.com/a", &e), None);
    assert_eq!(normalise("line\nbreak", &e), None);
    assert_eq!(normalise(&"a".repeat(MAX_PATH + 1), &e), None);
}

#[test]
fn helpers() {
    assert!(is_under("/a/b/c", "/a/b"));
    assert!(is_under("/a/b", "/a/b"));
    assert!(!is_under("/a/bc", "/a/b"));
    assert!(is_under("/a", "/"));
    assert!(ends_with_tail("/a/b/c", "b/c"));
    assert!(!ends_with_tail("/a/xb/c", "b/c"));
    assert_eq!(join("/a/b", "../c"), "/a/c");
    assert_eq!(base_name("/usr/bin/latch"), "latch");
}

#[test]
fn only_the_openers_own_streams_and_information_need_no_following() {
    for s in [
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/fd/2",
        "/proc/self",
        "/proc/self/fd/17",
        "/proc/thread-self/fd/0",
        "/proc/self/status",
        "/proc/self/net/tcp",
        "/proc/self/fd",
        "/proc/self/exe",
        "/dev/fd",
    ] {
        assert!(names_the_opener(s), "{s}");
    }
    for s in [
        "/proc/self/cwd/../.config/latch/policy.toml",
        "/proc/self/cwd",
        "/proc/self/root/home/u/.config/latch/policy.toml",
        "/proc/thread-self/root/etc/passwd",
        "/proc/self/fd/3/policy.toml",
        "/proc/self/fd/3/../x",
        "/proc/self/map_files/1-2",
        "/proc/self/task/7/cwd/x",
        "/proc/self/status/../cwd/x",
        "/proc/self/./cwd/x",
        "/proc/self/../1/cwd",
        "/dev/fd/3/x",
        "/dev/fd/../sda",
        "/home/u/deep/policy.toml",
    ] {
        assert!(!names_the_opener(s), "{s}");
    }
}
