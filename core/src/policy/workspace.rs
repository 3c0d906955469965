//! `[workspace]`: folders the user counts as the workspace of every
//! server, beside the client's roots or the server's own folders.
//!
//! ```toml
//! [workspace]
//! paths = ["~/src", "/srv/data"]
//! ```
//!
//! Each path is absolute or starts with `~/` (the server's home). Writes
//! outside every workspace folder carry the flag `outside_workspace`
//! ([`crate::path::workspace`]).

use toml::de::DeTable;

use super::error::ProblemKind;
use super::read::{Cx, entries};

const WORKSPACE_KEYS: &[&str] = &["paths"];
/// More folders than this is not a workspace any more.
pub const MAX_PATHS: usize = 64;

/// Reads the `[workspace]` table; problems go to `cx` with their line.
pub(crate) fn parse(cx: &mut Cx<'_>, t: &DeTable<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "paths" => {
                let Some(items) = cx.strs(v, "paths", "`paths = [\"~/src\", \"/srv/data\"]`") else { continue };
                if items.len() > MAX_PATHS {
                    cx.problem(
                        ProblemKind::OutOfRange,
                        v.span(),
                        format!("`paths` lists {} folders; at most {MAX_PATHS}", items.len()),
                        "name the folders agents work in, not every folder",
                    );
                    continue;
                }
                for (p, span) in items {
                    let ok = (p.starts_with('/') || p == "~" || p.starts_with("~/"))
                        && p.len() <= crate::path::MAX_PATH
                        && !p.contains(['\n', '\r', '\0']);
                    if ok {
                        out.push(p);
                    } else {
                        cx.problem(
                            ProblemKind::WrongType,
                            span,
                            format!("workspace path {p:?} is not an absolute folder"),
                            "write an absolute path (`/srv/data`) or one under your home (`~/src`)",
                        );
                    }
                }
            }
            _ => cx.unknown_key(k, "in [workspace]", WORKSPACE_KEYS),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    #[test]
    fn paths_are_read_and_checked() {
        let p = Policy::parse("[workspace]\npaths = [\"~/src\", \"/srv/data\"]\n").unwrap();
        assert_eq!(p.workspace_paths(), ["~/src", "/srv/data"]);
        for bad in ["paths = [\"src\"]", "paths = 5", "folders = [\"/x\"]", "paths = [\"~bob/x\"]"] {
            let e = Policy::parse(&format!("[workspace]\n{bad}\n")).unwrap_err();
            assert_eq!(e.problems.len(), 1, "{bad}: {e:?}");
        }
        assert!(Policy::parse("workspace = 1\n").is_err());
    }
}
