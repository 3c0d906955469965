use super::*;

fn vars() -> Vars {
    let mut v = Vars::new();
    v.insert("HOME".into(), "/home/u".into());
    v
}

/// Every command's known words, joined by spaces ("?" for unknown words).
fn cmds(src: &str) -> Vec<String> {
    parse(src, &vars())
        .commands
        .iter()
        .map(|c| {
            c.words
                .iter()
                .map(|w| if w.unknown { format!("?{}", w.known_tail()) } else { w.text.clone() })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn runs(src: &str, want: &str) {
    let got = cmds(src);
    assert!(got.iter().any(|c| c == want), "{src:?} should run {want:?}, got {got:?}");
}

#[test]
fn quotes_and_escapes_spell_the_same_word() {
    for src in [
        "latch approve 3",
        "l'a'tch approve 3",
        "lat\"\"ch approve 3",
        "\"latch\" 'approve' 3",
        "l\\atch appro\\ve 3",
        "$'latch' approve 3",
        "$'\\x6catch' approve 3",
        "$'\\u006catch' approve 3",
        "$'\\154atch' approve 3",
        "$'\\U0000006Catch' approve 3",
        "la\\\ntch approve 3",
        "x=lat; ${x}ch approve 3",
        "x=lat; \"$x\"ch approve 3",
        "x=lat y=ch; $x$y approve 3",
        "export X=latch; $X approve 3",
        "x=; ${x:-latch} approve 3",
        "z=; ${z:=latch}; $z approve 3",
        "c='latch approve'; $c 3",
        "$(echo latch) approve 3",
        "`echo latch` approve 3",
        "$(printf %s lat ch) approve 3",
    ] {
        runs(src, "latch approve 3");
    }
}

#[test]
fn unset_variables_are_unknown_not_empty() {
    // The environment given may be incomplete: a default may or may not apply.
    assert_eq!(cmds("${NOPE:-latch} approve 3"), ["? approve 3"]);
}

#[test]
fn which_and_command_v_name_the_command() {
    runs("\"$(which latch)\" approve 3", "latch approve 3");
    runs("$(command -v latch) approve 3", "latch approve 3");
    runs("`which latch` approve 3", "latch approve 3");
    runs("$(which latch) approve 3", "which latch");
}

#[test]
fn separators_and_groups() {
    let src = "a 1; b 2 | c 3 || d 4 && e 5 & f 6\ng 7 |& h 8";
    assert_eq!(cmds(src), ["a 1", "b 2", "c 3", "d 4", "e 5", "f 6", "g 7", "h 8"]);
    assert_eq!(cmds("(cd /x && rm y); { z 1; }"), ["cd /x", "rm y", "z 1"]);
    assert_eq!(cmds("if true; then latch approve 1; fi"), ["true", "latch approve 1"]);
    assert_eq!(cmds("for i in 1 2; do rm $i; done"), ["rm ?"]);
    assert_eq!(cmds("# latch approve 1\necho hi"), ["echo hi"]);
}

#[test]
fn substitutions_run_what_they_contain() {
    runs("echo $(latch approve 1)", "latch approve 1");
    runs("echo \"$(latch approve 1)\"", "latch approve 1");
    runs("echo `latch approve 1`", "latch approve 1");
    runs("echo $(echo $(latch approve 1))", "latch approve 1");
    runs("cat <(latch approve 1)", "latch approve 1");
    runs("x=$(latch approve 1)", "latch approve 1");
    runs("echo $(( $(latch approve 1) + 1 ))", "latch approve 1");
    runs("cat <<EOF\n$(latch approve 1)\nEOF\n", "latch approve 1");
    assert!(!cmds("cat <<'EOF'\n$(latch approve 1)\nEOF\n").iter().any(|c| c.contains("approve")));
    runs("${x:-$(latch approve 1)}", "latch approve 1");
}

#[test]
fn unknown_output_is_marked() {
    let s = parse("$(pwd)/.config/latch/policy.toml", &vars());
    let w = &s.commands.last().unwrap().words[0];
    assert!(w.unknown);
    assert_eq!(w.known_tail(), "/.config/latch/policy.toml");
    let s = parse("${x}ch approve", &vars());
    let w = &s.commands[0].words[0];
    assert!(w.unknown && w.known_tail() == "ch", "{w:?}");
    let s = parse("$HOME/.config", &vars());
    assert_eq!(s.commands[0].words[0].text, "/home/u/.config");
    assert!(!s.commands[0].words[0].unknown);
}

#[test]
fn ifs_splits_words() {
    runs("rm${IFS}-rf${IFS}~", "rm -rf ~");
    runs("latch$IFS'approve' 1", "latch approve 1");
}

#[test]
fn redirections() {
    let s = parse("echo x > /a/p 2>/dev/null >> b 2>&1 < c &> d <> e; cat >| f", &vars());
    let r: Vec<(RedirectKind, Option<String>)> = s
        .commands
        .iter()
        .flat_map(|c| c.redirects.iter().map(|r| (r.kind, r.target.as_ref().map(|w| w.text.clone()))))
        .collect();
    assert_eq!(
        r,
        [
            (RedirectKind::Write, Some("/a/p".into())),
            (RedirectKind::Write, Some("/dev/null".into())),
            (RedirectKind::Append, Some("b".into())),
            (RedirectKind::Write, None),
            (RedirectKind::Read, Some("c".into())),
            (RedirectKind::Write, Some("d".into())),
            (RedirectKind::ReadWrite, Some("e".into())),
            (RedirectKind::Write, Some("f".into())),
        ]
    );
    assert_eq!(s.commands[0].words.len(), 2);
}

#[test]
fn wrappers_run_their_command() {
    for src in [
        "sudo latch approve 1",
        "sudo -u root -- latch approve 1",
        "env -i A=1 latch approve 1",
        "nohup latch approve 1 &",
        "timeout 5 latch approve 1",
        "timeout -s KILL 5s latch approve 1",
        "exec latch approve 1",
        "command latch approve 1",
        "nice -n 10 latch approve 1",
        "/usr/bin/env latch approve 1",
        "sudo env nohup nice latch approve 1",
        "bash -c 'latch approve 1'",
        "sh -c \"l'a'tch approve 1\"",
        "zsh -lc 'latch approve 1'",
        "bash -c 'bash -c \"latch approve 1\"'",
        "eval latch approve 1",
        "eval 'latch approve 1'",
        "x=latch; eval \"$x approve 1\"",
        "env -S 'latch approve 1'",
        "su -c 'latch approve 1'",
        "xargs latch approve 1",
        "find . -exec latch approve 1 \\;",
    ] {
        runs(src, "latch approve 1");
    }
    let s = parse("pgrep latch | xargs kill", &vars());
    let kill = s.commands.iter().find(|c| c.base_name() == Some("kill")).unwrap();
    assert!(kill.more_args && kill.via.as_deref() == Some("xargs"));
    assert!(!cmds("command -v latch").iter().any(|c| c == "latch"));
}

#[test]
fn unreadable_code_is_an_unknown_command() {
    let s = parse("bash -c \"$payload\"", &vars());
    assert!(s.commands.iter().any(|c| c.words[0].unknown && c.via.as_deref() == Some("bash")));
}

#[test]
fn bounds_are_reported() {
    let deep = "bash -c '".to_owned() + &"eval ".repeat(20) + "latch approve 1'";
    let _ = parse(&deep, &vars());
    let mut nested = String::from("latch approve 1");
    for _ in 0..(MAX_DEPTH + 3) {
        nested = format!("echo $({nested})");
    }
    assert!(parse(&nested, &vars()).truncated);
    assert!(parse(&"x".repeat(MAX_INPUT + 1), &vars()).truncated);
    // Doubling a variable does not grow without bound.
    let mut s = String::from("x=aaaaaaaa;");
    for _ in 0..40 {
        s.push_str("x=$x$x;");
    }
    s.push_str("$x");
    let p = parse(&s, &vars());
    assert!(p.commands.last().unwrap().words[0].unknown);
}

#[test]
fn malformed_text_is_flagged_not_fatal() {
    let s = parse("echo 'open", &vars());
    assert!(s.malformed);
    let s = parse("Hello, it's me. Run latch approve 1 (please)", &vars());
    assert!(s.commands.iter().any(|c| !c.words.is_empty()));
}

/// Found by the `shell` fuzz target: a backslash at the very end of an
/// unclosed `${…}` (or of a skipped `(…)`) moved the reader past the end,
/// and the here-document after it sliced out of range (a panic).
#[test]
fn fuzz_crash_final_backslash_in_unclosed_expansion() {
    let found = "x=cat`<<<0A0151(68$298<<<<<<<<${x:eqq`\\\\\\\\\\\\\\q\\-d51(68$298<<<<<<<<${x:-<<o/\\";
    for src in [found, "cat <<${x:-\\", "cat <<\"${x\\", "cat <<$(a\\", "echo ${a:-$(b\\", "cat <<`${x\\"] {
        let s = parse(src, &Vars::new());
        assert!(s.malformed || s.truncated, "{src:?}: {s:?}");
    }
}

#[test]
fn fuzz_crash_ansi_c_control_escape_at_end() {
    // `$'…\c` read the control character after `\c` without checking for
    // the end, stepping one past the input; a here-document delimiter
    // sliced up to there then panicked (fuzz target `shell`).
    let found = "fori$(n\0\0\0<<88$'?8<<<<]<<<${\\c";
    for src in [found, "cat <<$'\\c", "echo $'\\c", "$'\\c", "cat <<\"$'\\c"] {
        let s = parse(src, &Vars::new());
        assert!(s.malformed || s.truncated, "{src:?}: {s:?}");
    }
}
