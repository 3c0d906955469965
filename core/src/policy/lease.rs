//! Which calls a shim may decide under a lease (issue 16): the policy
//! allows them from its own text, and nothing of the call depends on what
//! only the daemon knows (the file system, the server's place, counters,
//! sessions, a model).

use crate::class::{Class, Decision};
use crate::classify::{Call, Classification};
use crate::threat::taint::CallFacts;

use super::{Evaluation, Policy};

impl Policy {
    /// True when `verdict` of `call`, evaluated with no answers and no
    /// facts, is an allow the daemon would give too whatever its state:
    /// - the policy allows it, asking no model ([`Evaluation::questions`]);
    /// - the classification has no flag, found no host, and the call is
    ///   neither a WRITE nor an EXECUTE (whose arguments are read for the
    ///   workspace and for commands);
    /// - self-protection reads nothing of the arguments as a path or a
    ///   command ([`super::protect`]), and no rule that may concern the
    ///   call has an `under` test, which the daemon resolves
    ///   ([`super::under`]);
    /// - no rate limit selects it, no budget counts it, and it plays no
    ///   part in the lethal trifecta (not untrusted, private or a sink), so
    ///   no counter or session state of the daemon changes or decides it.
    pub fn lease_allows(&self, call: &Call<'_>, cls: &Classification, ev: &Evaluation) -> bool {
        if ev.decision != Decision::Allow || !ev.questions.is_empty() {
            return false;
        }
        if !cls.flags.is_empty() || !cls.domains.is_empty() || matches!(cls.class, Class::Write | Class::Execute) {
            return false;
        }
        if self.resolves_for(call.server, call.tool) {
            return false;
        }
        let t = self.threats();
        let facts = CallFacts {
            server: call.server,
            tool: call.tool,
            class: cls.class,
            flags: &cls.flags,
            target: None,
            at: 0,
        };
        if t.limits.iter().any(|l| l.select.matches(&facts)) {
            return false;
        }
        if t.budget.is_some() && cls.class == Class::TransferValue {
            return false;
        }
        let taint = &t.taint;
        if taint.effect != Decision::Allow
            && taint.untrusted.iter().chain(&taint.private).chain(&taint.sinks).any(|s| s.matches(&facts))
        {
            return false;
        }
        self.guard.place_free(call.args)
    }

    /// Some rule of this layer or the managed one that may match `server`
    /// and `tool` has an `under` test.
    fn resolves_for(&self, server: &str, tool: &str) -> bool {
        self.index.candidates(server, tool).any(|i| self.rules[i].resolves_paths())
            || self.managed.as_deref().is_some_and(|m| m.resolves_for(server, tool))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::classify::Call;
    use crate::path::{FileId, PathEnv, Resolved, Resolver};
    use crate::policy::{Facts, Place, Policy, Protected};
    use crate::tooldef::ToolDef;

    /// A file system where every path is the policy file: whatever the
    /// daemon could find by resolving, it finds here. Except the argument
    /// keys themselves: a plain key is compared by name here; the shim
    /// sends a call whose key is a link in the server's working directory
    /// to the daemon before it evaluates (`keys_linked` in the shim).
    struct AllIsPolicy;

    impl Resolver for AllIsPolicy {
        fn resolve(&self, abs: &str) -> Option<Resolved> {
            let name = abs.rsplit('/').next().unwrap_or("");
            if ["text", "n", "flag", "list"].contains(&name) {
                return Some(Resolved { real: abs.into(), file: None });
            }
            Some(Resolved { real: "/home/u/.config/latch/policy.toml".into(), file: Some(FileId { dev: 1, ino: 100 }) })
        }
    }

    fn policy(text: &str) -> Policy {
        let mut p = Policy::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        p.set_protected(Protected {
            paths: vec!["/home/u/.config/latch/policy.toml".into(), "/home/u/.config/latch".into()],
            home: Some("/home/u".into()),
            configs: vec!["/home/u/.cursor/mcp.json".into()],
            binary: vec!["/usr/local/bin/latch".into()],
            files: vec![(FileId { dev: 1, ino: 100 }, crate::policy::Kind::Latch)],
            pids: vec![4242],
            case_insensitive: false,
        });
        p
    }

    fn echo() -> ToolDef {
        ToolDef::from_value(&json!({
            "name": "echo",
            "description": "Return the arguments it was given. Reads nothing and changes nothing.",
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "openWorldHint": false}
        }))
        .unwrap()
    }

    /// What the shim decides (the server's cwd, no file system) and
    /// whether it may.
    fn in_shim(p: &Policy, cwd: &str, args: &Value) -> bool {
        let call = Call { server: "ours", tool: "echo", args };
        let env = PathEnv { cwd: Some(cwd.into()), ..p.default_path_env().clone() };
        let v = crate::decide_with(p, &call, Some(&echo()), &[], Place::new(&env, None), Facts::default());
        p.lease_allows(&call, &v.classification, &v.evaluation)
    }

    /// What the daemon decides in a hostile place: every path resolving
    /// to the policy file, roots in Latch's folder.
    fn in_daemon(p: &Policy, cwd: &str, args: &Value) -> crate::Decision {
        let call = Call { server: "ours", tool: "echo", args };
        let env = PathEnv {
            home: Some("/home/u".into()),
            cwd: Some(cwd.into()),
            roots: vec!["/home/u/.config/latch".into()],
            ..PathEnv::default()
        };
        let v =
            crate::decide_with(p, &call, Some(&echo()), &[], Place::new(&env, Some(&AllIsPolicy)), Facts::default());
        v.evaluation.decision
    }

    #[test]
    fn whatever_the_shim_may_decide_the_daemon_allows_in_any_place() {
        let p = policy("");
        let cases = [
            json!({"text": "hello world"}),
            json!({"text": "policy.toml"}),
            json!({"n": 3, "flag": true, "list": ["a", "b"]}),
            json!({"text": "~/.config/latch/policy.toml"}),
            json!({"text": "/home/u/.config/latch/policy.toml"}),
            json!({"text": "please run latch approve abc"}),
            json!({"text": "kill 4242"}),
            json!({"path": "notes"}),
            json!({"policy.toml": "x"}),
            json!({"text": "../policy.toml"}),
            json!({"text": "$HOME/.config/latch/policy.toml"}),
            json!({"text": "see .config/latch/policy.toml"}),
            json!({"text": "file:policy.toml"}),
            json!({"text": "a\\b"}),
            json!({"text": "mcp.json"}),
        ];
        for (cwd, expect) in [("/home/u/project", 5), ("/home/u/.config/latch", 0), ("/home/u/.config", 5)] {
            let mut allowed = 0;
            for args in &cases {
                if in_shim(&p, cwd, args) {
                    allowed += 1;
                    assert_eq!(in_daemon(&p, cwd, args), crate::Decision::Allow, "{cwd} {args}");
                }
            }
            // Plain text, bare names that are not paths, numbers; nothing
            // where a key would name something inside Latch's folders.
            assert_eq!(allowed, expect, "in {cwd}");
        }
    }

    #[test]
    fn paths_commands_and_mentions_are_left_to_the_daemon() {
        let p = policy("");
        for args in [
            json!({"text": "~/.ssh/id_rsa"}),
            json!({"text": "see /etc/passwd"}),
            json!({"path": "notes"}),
            json!({"text": "please run latch approve abc"}),
            json!({"text": "kill 4242"}),
            json!({"policy.toml": "x"}),
            json!({"text": ".env"}),
        ] {
            assert!(!in_shim(&p, "/home/u/project", &args), "{args}");
        }
    }

    fn in_shim2(p: &Policy, args: &Value) -> bool {
        in_shim(p, "/home/u/project", args)
    }

    #[test]
    fn limits_budgets_taint_and_conditions_keep_a_call_from_the_shim() {
        let args = json!({"text": "hello"});
        assert!(in_shim2(&policy(""), &args));
        let limited = "[[limits]]\nname = \"e\"\nserver = \"ours\"\nper_minute = 5\n";
        assert!(!in_shim2(&policy(limited), &args));
        let untrusted = "[threats.taint]\nuntrusted = [{ class = \"READ\" }]\n";
        assert!(!in_shim2(&policy(untrusted), &args));
        let off = "[threats.taint]\neffect = \"allow\"\nuntrusted = [{ class = \"READ\" }]\n";
        assert!(in_shim2(&policy(off), &args));
        let judged = "[judge]\nprovider = \"openai\"\nmodel = \"m\"\napi_key_env = \"K\"\n\n[[rule]]\nname = \"j\"\nserver = \"ours\"\ntool = \"echo\"\neffect = \"deny\"\ncondition = \"the text is rude\"\n";
        assert!(!in_shim2(&policy(judged), &args));
        let deny = "[[rule]]\nname = \"d\"\nserver = \"ours\"\ntool = \"echo\"\neffect = \"deny\"\n";
        assert!(!in_shim2(&policy(deny), &args));
    }

    /// The shim cannot resolve paths: a deny `under` a folder may match a
    /// plain name that a link in the server's folder leads into it, so no
    /// call such a rule may concern is decided under a lease.
    #[test]
    fn under_rules_keep_their_calls_from_the_shim() {
        let args = json!({"text": "notes"});
        let deny =
            "[[rule]]\nserver = \"ours\"\nargs = [{ path = \"text\", under = \"/secret/\" }]\neffect = \"deny\"\n";
        assert!(!in_shim2(&policy(deny), &args));
        let other_tool =
            "[[rule]]\ntool = \"other\"\nargs = [{ path = \"text\", under = \"/secret/\" }]\neffect = \"deny\"\n";
        assert!(in_shim2(&policy(other_tool), &args));
        let layered = Policy::layered(policy(deny), policy(""));
        assert!(!in_shim2(&layered, &args));
    }
}
