//! Commands that run another command: the inner one is listed too, and a
//! command string given to a shell (`bash -c`, `eval`, `env -S`, `su -c`,
//! `watch`) is parsed again.

use super::script::{Command, MAX_DEPTH, Script, Word};

enum Step {
    /// Not a wrapper, or one that runs nothing.
    Stop,
    /// Runs `words[skip..]`; `more` when it adds arguments at run time.
    Run { skip: usize, more: bool },
    /// Runs a command string.
    Parse(Word),
    /// `find … -exec CMD ;` (possibly several).
    Find(Vec<Vec<Word>>),
}

/// Reads a command string into the script at a nesting depth (the lexer's
/// own entry point, passed in so that this module stays below it).
pub(super) type Reparse<'a> = dyn FnMut(&str, &mut Script, usize) + 'a;

/// Lists what `cmd` runs inside it, recursively; a command string is read
/// again with `reparse`.
pub(super) fn unwrap(cmd: Command, out: &mut Script, depth: usize, reparse: &mut Reparse<'_>) {
    let mut words = cmd.words;
    let mut more = cmd.more_args;
    for _ in 0..=MAX_DEPTH {
        let Some(first) = words.first() else { return };
        if first.unknown {
            return;
        }
        let name = first.text.rsplit('/').next().unwrap_or(&first.text).to_owned();
        match step(&name, &words) {
            Step::Stop => return,
            Step::Run { skip, more: m } => {
                let inner: Vec<Word> = words.get(skip..).unwrap_or(&[]).to_vec();
                if inner.is_empty() {
                    return;
                }
                more |= m;
                out.commands.push(Command {
                    words: inner.clone(),
                    via: Some(name),
                    more_args: more,
                    depth,
                    ..Command::default()
                });
                words = inner;
            }
            Step::Parse(text) => {
                if text.unknown || depth >= MAX_DEPTH {
                    if depth >= MAX_DEPTH {
                        out.truncated = true;
                    }
                    // Code that cannot be read: an unknown command runs.
                    let w = Word { unknown: true, known_from: text.text.len(), ..text };
                    out.commands.push(Command { words: vec![w], via: Some(name), depth, ..Command::default() });
                    return;
                }
                let first = out.commands.len();
                reparse(&text.text, out, depth + 1);
                for c in &mut out.commands[first..] {
                    c.via.get_or_insert_with(|| name.clone());
                }
                return;
            }
            Step::Find(cmds) => {
                for inner in cmds {
                    out.commands.push(Command {
                        words: inner,
                        via: Some(name.clone()),
                        more_args: true,
                        depth,
                        ..Command::default()
                    });
                }
                return;
            }
        }
    }
    out.truncated = true;
}

/// Skips options; `with_arg` lists those that take the next word.
fn skip_opts(words: &[Word], with_arg: &[&str]) -> usize {
    let mut i = 1;
    while let Some(w) = words.get(i) {
        let t = w.text.as_str();
        if t == "--" {
            return i + 1;
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        i += 1;
        if with_arg.contains(&t) {
            i += 1;
        }
    }
    i
}

fn joined(words: &[Word]) -> Word {
    let mut w = Word { text: String::new(), ..Word::default() };
    for (i, x) in words.iter().enumerate() {
        if i > 0 {
            w.text.push(' ');
        }
        if x.unknown {
            w.unknown = true;
        }
        w.text.push_str(&x.text);
        w.glob |= x.glob;
    }
    w
}

fn step(name: &str, words: &[Word]) -> Step {
    let arg_after = |i: usize| words.get(i).cloned();
    match name {
        "nohup" | "builtin" | "unbuffer" | "busybox" | "catchsegv" | "dbus-run-session" | "fakeroot" => {
            Step::Run { skip: skip_opts(words, &[]), more: false }
        }
        "exec" => Step::Run { skip: skip_opts(words, &["-a"]), more: false },
        "time" => Step::Run { skip: skip_opts(words, &["-o", "-f"]), more: false },
        "command" => {
            if words.iter().skip(1).take_while(|w| w.text.starts_with('-')).any(|w| w.text.contains(['v', 'V'])) {
                Step::Stop
            } else {
                Step::Run { skip: skip_opts(words, &[]), more: false }
            }
        }
        "env" => {
            let mut i = 1;
            while let Some(w) = words.get(i) {
                let t = w.text.as_str();
                if t == "-S" || t == "--split-string" {
                    return if i + 1 < words.len() { Step::Parse(joined(&words[i + 1..])) } else { Step::Stop };
                }
                if let Some(s) = t.strip_prefix("-S").or_else(|| t.strip_prefix("--split-string=")) {
                    let mut rest = vec![Word { text: s.to_owned(), ..w.clone() }];
                    rest.extend(words[i + 1..].iter().cloned());
                    return Step::Parse(joined(&rest));
                }
                if t == "--" {
                    i += 1;
                    break;
                }
                if matches!(t, "-u" | "-C" | "--unset" | "--chdir") {
                    i += 2;
                } else if t.starts_with('-') || (t.contains('=') && !t.starts_with('=')) {
                    i += 1;
                } else {
                    break;
                }
            }
            // Assignments after `--` too.
            while words.get(i).is_some_and(|w| w.text.contains('=') && !w.text.starts_with('=')) {
                i += 1;
            }
            Step::Run { skip: i, more: false }
        }
        "sudo" | "doas" | "run0" => {
            let mut i = skip_opts(words, &["-u", "-g", "-h", "-p", "-r", "-t", "-U", "-C", "-D", "-T", "-R"]);
            while words.get(i).is_some_and(|w| w.text.contains('=') && !w.text.starts_with('=')) {
                i += 1;
            }
            Step::Run { skip: i, more: false }
        }
        "nice" => Step::Run { skip: skip_opts(words, &["-n"]), more: false },
        "ionice" => Step::Run { skip: skip_opts(words, &["-c", "-n", "-t"]), more: false },
        "setsid" | "stdbuf" | "caffeinate" => {
            Step::Run { skip: skip_opts(words, &["-i", "-o", "-e", "-t", "-w"]), more: false }
        }
        "taskset" | "chrt" | "chroot" | "flock" => {
            let with_arg: &[&str] = match name {
                "flock" => &["-w", "-E", "--timeout", "--conflict-exit-code"],
                _ => &[],
            };
            if name == "flock"
                && let Some(p) = words.iter().position(|w| w.text == "-c" || w.text == "--command")
            {
                return arg_after(p + 1).map_or(Step::Stop, Step::Parse);
            }
            Step::Run { skip: skip_opts(words, with_arg) + 1, more: false }
        }
        "timeout" => Step::Run { skip: skip_opts(words, &["-s", "-k", "--signal", "--kill-after"]) + 1, more: false },
        "watch" => {
            let i = skip_opts(words, &["-n", "--interval", "-d", "-q"]);
            if i < words.len() { Step::Parse(joined(&words[i..])) } else { Step::Stop }
        }
        "xargs" => {
            let i = skip_opts(
                words,
                &[
                    "-a",
                    "-d",
                    "-E",
                    "-I",
                    "-L",
                    "-n",
                    "-P",
                    "-s",
                    "--arg-file",
                    "--delimiter",
                    "--max-args",
                    "--max-procs",
                ],
            );
            if i < words.len() { Step::Run { skip: i, more: true } } else { Step::Stop }
        }
        "strace" | "ltrace" => Step::Run { skip: skip_opts(words, &["-o", "-e", "-p", "-s", "-u"]), more: false },
        "eval" => {
            if words.len() > 1 {
                Step::Parse(joined(&words[1..]))
            } else {
                Step::Stop
            }
        }
        "su" | "runuser" | "script" | "sg" => {
            match words.iter().position(|w| w.text == "-c" || w.text == "--command") {
                Some(p) => arg_after(p + 1).map_or(Step::Stop, Step::Parse),
                None => Step::Stop,
            }
        }
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "mksh" | "ash" | "fish" | "yash" | "posh" => {
            let mut i = 1;
            let mut c = false;
            while let Some(w) = words.get(i) {
                let t = w.text.as_str();
                if t == "--" {
                    i += 1;
                    break;
                }
                if !(t.starts_with('-') || t.starts_with('+')) || t.len() < 2 {
                    break;
                }
                if !t.starts_with("--") && t[1..].contains('c') {
                    c = true;
                }
                i += 1;
                if matches!(t, "-o" | "+o" | "--rcfile" | "--init-file") {
                    i += 1;
                }
            }
            if c { arg_after(i).map_or(Step::Stop, Step::Parse) } else { Step::Stop }
        }
        "find" => {
            let mut cmds = Vec::new();
            let mut i = 1;
            while i < words.len() {
                if matches!(words[i].text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                    let start = i + 1;
                    let mut end = start;
                    while end < words.len() && !matches!(words[end].text.as_str(), ";" | "+") {
                        end += 1;
                    }
                    let inner: Vec<Word> = words[start..end]
                        .iter()
                        .map(|w| if w.text == "{}" { Word { unknown: true, ..Word::literal("") } } else { w.clone() })
                        .collect();
                    if !inner.is_empty() {
                        cmds.push(inner);
                    }
                    i = end;
                }
                i += 1;
            }
            if cmds.is_empty() { Step::Stop } else { Step::Find(cmds) }
        }
        _ => Step::Stop,
    }
}
