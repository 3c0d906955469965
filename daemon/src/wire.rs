//! The daemon's edge between the wire (`latch-proto`) and the decision
//! core (`latch-core`): the core never sees a socket message, so whatever
//! arrives in one is turned into the core's own types here, and nowhere
//! else.

use latch_core::approval;
use latch_core::canonical;
use latch_core::policy::LatchPaths;
use latch_proto::paths::Paths;

/// How far an answer reaches, from a peer's message to the approval
/// machine's own type.
pub fn scope(s: latch_proto::Scope) -> approval::Scope {
    use latch_proto::Scope as W;
    match s {
        W::Once => approval::Scope::Once,
        W::SessionArgs => approval::Scope::SessionArgs,
        W::SessionTool => approval::Scope::SessionTool,
        W::Always => approval::Scope::Always,
    }
}

/// The core's decision as it goes on the wire.
pub fn decision(d: latch_core::Decision) -> latch_proto::Decision {
    match d {
        latch_core::Decision::Allow => latch_proto::Decision::Allow,
        latch_core::Decision::Ask => latch_proto::Decision::Ask,
        latch_core::Decision::Deny => latch_proto::Decision::Deny,
    }
}

/// Latch's own files, as the core's self-protection sees them.
pub fn latch_paths(p: &Paths) -> LatchPaths {
    LatchPaths {
        policy: p.policy.clone(),
        database: p.database.clone(),
        socket: p.socket.clone(),
        log: p.log.clone(),
        data_dir: p.data_dir.clone(),
    }
}

/// The arguments' hash for a `Decide` frame: the canonical hash of the
/// parsed arguments, or, when parsing may have lost digits of a large
/// integer ([`canonical::lossy`]), the hash of their text in `frame`.
pub fn args_hash(args: &serde_json::Value, frame: &[u8]) -> String {
    if canonical::lossy(args)
        && let Some(h) = latch_proto::frame::decide_args(frame).and_then(|raw| canonical::hash_raw(raw.get()))
    {
        return h;
    }
    canonical::hash(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_wire_scope_converts_to_its_namesake() {
        use latch_proto::Scope as W;
        for w in [W::Once, W::SessionArgs, W::SessionTool, W::Always] {
            let text = serde_json::to_value(w).unwrap();
            assert_eq!(text.as_str(), Some(scope(w).as_str()), "{w:?}");
        }
        assert_eq!(scope(W::default()), approval::Scope::Once);
    }

    #[test]
    fn every_core_decision_converts_to_its_namesake() {
        for d in [latch_core::Decision::Allow, latch_core::Decision::Ask, latch_core::Decision::Deny] {
            assert_eq!(decision(d).as_str(), d.as_str());
        }
    }

    #[test]
    fn large_integers_hash_by_their_text() {
        let a = r#"{"amount": 18446744073709551617, "to": "x"}"#;
        let b = r#"{"amount": 18446744073709551616, "to": "x"}"#;
        let (va, vb): (Value, Value) = (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
        let frame = |args: &str| format!(r#"{{"decide":{{"req":1,"tool":"pay","args":{args},"retry":false}}}}"#);
        assert_ne!(args_hash(&va, frame(a).as_bytes()), args_hash(&vb, frame(b).as_bytes()));
    }

    #[test]
    fn the_frame_hash_is_the_value_hash_when_nothing_was_lost() {
        for text in [
            r#"{"b":[1.5,"x\"y",null,true,false],"a":{"\u00e9":-0.0,"z":1e21,"y":1.5e-7},"c":9007199254740993}"#,
            r#"[ 1 , 1.0 , 1e0 , -5 , 18446744073709551615 , -9223372036854775808, 0.000001, 100e-2 ]"#,
            r#"{"a":1,"a":2}"#,
            "{}",
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            let frame = format!(r#"{{"decide":{{"args":{text}}}}}"#);
            assert_eq!(args_hash(&v, frame.as_bytes()), canonical::hash(&v), "{text}");
        }
    }
}
