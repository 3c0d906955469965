//! SQL under keys the argument walk does not know by name
//! (`params.sqlStatements`, `sql_statements`): any key one of whose words
//! is `sql`, at any depth up to [`MAX_DEPTH`], as a string or an array of
//! strings. The most consequential statement wins.

use serde_json::Value;

use super::sql::{self, SqlVerdict};
use super::words::word_slices;

const MAX_DEPTH: usize = 4;
/// Most statements judged.
const MAX_STATEMENTS: usize = 64;

fn is_sql_key(k: &str) -> bool {
    word_slices(k).any(|w| w.eq_ignore_ascii_case("sql"))
}

fn better(a: &SqlVerdict, b: &SqlVerdict) -> bool {
    a.class > b.class || (a.class == b.class && a.destructive && !b.destructive)
}

/// The key and verdict of the most consequential statement found.
pub(crate) fn find(args: &Value) -> Option<(String, SqlVerdict)> {
    let mut best: Option<(String, SqlVerdict)> = None;
    let mut seen = 0;
    walk(args, 0, &mut best, &mut seen);
    best
}

fn walk(v: &Value, depth: usize, best: &mut Option<(String, SqlVerdict)>, seen: &mut usize) {
    let Value::Object(map) = v else { return };
    if depth > MAX_DEPTH {
        return;
    }
    for (k, item) in map {
        if is_sql_key(k) {
            let texts: Vec<&str> = match item {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).take(MAX_STATEMENTS).collect(),
                _ => Vec::new(),
            };
            for t in texts {
                *seen += 1;
                if *seen > MAX_STATEMENTS {
                    return;
                }
                if let Some(v) = sql::judge_text(t, true)
                    && best.as_ref().is_none_or(|(_, b)| better(&v, b))
                {
                    *best = Some((k.clone(), v));
                }
            }
        } else if item.is_object() {
            walk(item, depth + 1, best, seen);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::class::Class;

    #[test]
    fn nested_statement_lists() {
        let v = find(&json!({"params": {"sqlStatements": ["SELECT 1", "DELETE FROM t"]}})).expect("found");
        assert_eq!((v.0.as_str(), v.1.class, v.1.destructive), ("sqlStatements", Class::Write, true));
        let v = find(&json!({"params": {"sqlStatements": ["SELECT 1"]}})).expect("found");
        assert_eq!(v.1.class, Class::Read);
        assert!(find(&json!({"params": {"note": "DELETE FROM t"}})).is_none());
    }
}
