//! Command identity for rules: `{ path = "command", command = ["npm",
//! "run", "test"] }` holds when the argument is exactly one simple command
//! whose words start with those words.
//!
//! The comparison is on the words the shell parser finds, never on the
//! text: `npm run test; rm -rf ~` is two commands and `npm run testx` has
//! the word `testx`, so neither matches. Anything the parser cannot pin
//! down fails to match: a second command anywhere (`;`, `&&`, `|`, `&`,
//! a newline, `$(…)`, backquotes, `<(…)`, a wrapper's inner command), a
//! subshell or group, an assignment before the name (`LD_PRELOAD=…`), a
//! redirection to a file, a word with an unknown expansion, a string the
//! parser had to cut or could not finish.

use serde_json::Value;

use crate::shell;

/// The words of `text` when it is one plain simple command (see the
/// module's conditions), else `None`.
pub fn single_command(text: &str) -> Option<Vec<String>> {
    let script = shell::parse(text, &shell::Vars::new());
    if script.truncated || script.malformed || script.commands.len() != 1 {
        return None;
    }
    let c = &script.commands[0];
    let plain = c.depth == 0
        && c.via.is_none()
        && !c.more_args
        && c.assigns.is_empty()
        && c.redirects.iter().all(|r| r.target.is_none())
        && c.words.iter().all(|w| !w.unknown);
    plain.then(|| c.words.iter().map(|w| w.text.clone()).collect())
}

/// The words of a command argument: a shell string (see
/// [`single_command`]) or an argv array of strings.
pub fn command_words(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => single_command(s),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// `v` is one command whose words start with `prefix` (never true for an
/// empty prefix).
pub(crate) fn starts_with(v: &Value, prefix: &[String]) -> bool {
    !prefix.is_empty()
        && command_words(v).is_some_and(|w| w.len() >= prefix.len() && w.iter().zip(prefix).all(|(a, b)| a == b))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn npm_run_test() -> Vec<String> {
        ["npm", "run", "test"].map(String::from).to_vec()
    }

    #[test]
    fn a_prefix_is_words_not_text() {
        let p = npm_run_test();
        assert!(starts_with(&json!("npm run test"), &p));
        assert!(starts_with(&json!("npm  run   test -- --watch"), &p));
        assert!(starts_with(&json!("npm 'run' \"test\""), &p));
        assert!(starts_with(&json!(["npm", "run", "test", "x"]), &p));
        assert!(!starts_with(&json!("npm run testx"), &p));
        assert!(!starts_with(&json!("npm run"), &p));
        assert!(!starts_with(&json!(["npm", "run"]), &p));
        assert!(!starts_with(&json!(""), &[]));
    }

    #[test]
    fn a_second_command_never_matches() {
        let p = npm_run_test();
        for cmd in [
            "npm run test; rm -rf ~",
            "npm run test && rm -rf ~",
            "npm run test || rm -rf ~",
            "npm run test | sh",
            "npm run test & rm -rf ~",
            "npm run test\nrm -rf ~",
            "npm run test $(rm -rf ~)",
            "npm run test `rm -rf ~`",
            "npm run test <(rm -rf ~)",
            "(npm run test)",
            "{ npm run test; } > ~/.bashrc",
            "(npm run test) > ~/.bashrc",
            "npm run test 3> ~/.bashrc",
            "LD_PRELOAD=/tmp/x.so npm run test",
            "npm run test > ~/.bashrc",
            "npm run test >> ~/.bashrc",
            "npm run test $HOME",
            "npm run test 'unclosed",
        ] {
            assert!(!starts_with(&json!(cmd), &p), "{cmd:?} must not match");
        }
    }

    #[test]
    fn wrappers_are_not_the_wrapped_command() {
        let p = npm_run_test();
        assert!(!starts_with(&json!("sudo npm run test"), &p));
        assert!(!starts_with(&json!("bash -c 'npm run test'"), &p));
        assert!(!starts_with(&json!("sudo npm run test"), &["sudo".to_owned()]));
    }

    #[test]
    fn harmless_redirects_and_comments_still_match() {
        let p = npm_run_test();
        assert!(starts_with(&json!("npm run test 2>&1"), &p));
        assert!(starts_with(&json!("npm run test # ; rm -rf ~"), &p));
        assert!(starts_with(&json!("{ npm run test; }"), &p));
        assert!(starts_with(&json!("npm run test <<< x"), &p));
    }
}
