//! Progress on a client's token, shared by the shim and the server.
//!
//! While a call is held, the shim sends the client keep-alive progress on
//! the call's own token; once the call runs, the server's progress on that
//! token is moved up past what the shim sent, so the client sees progress
//! only ever increase, as the protocol requires. Only `progress` and
//! `total` are rewritten, in place: every other byte (the token above all,
//! which may be an integer no double can hold) reaches the client as the
//! server sent it.

use crate::envelope::Params;
use crate::splice::{self, Edit};

/// A server's progress notification with `progress` (and `total`) moved up
/// by `offset`. A field that is not a number is left as it is.
pub fn shift(line: &[u8], params: &Params<'_>, offset: f64) -> Vec<u8> {
    let edits: Vec<Edit> = [params.progress, params.total]
        .into_iter()
        .flatten()
        .filter_map(|raw| {
            let n: f64 = serde_json::from_str(raw.get()).ok()?;
            Some(Edit { range: splice::range_in(line, raw.get())?, with: number(n + offset).into_bytes() })
        })
        .collect();
    splice::apply_all(line, &edits)
}

/// A number as JSON: integers without a fraction (`3`, not `3.0`).
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        format!("{}", n as i64)
    } else {
        serde_json::Number::from_f64(n).map(|n| n.to_string()).unwrap_or_else(|| "0".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{self, Line};

    fn shifted(line: &str, offset: f64) -> String {
        let Line::One(env) = envelope::parse(line.as_bytes()).unwrap() else { panic!("batch") };
        String::from_utf8(shift(line.as_bytes(), env.params.as_ref().unwrap(), offset)).unwrap()
    }

    #[test]
    fn only_progress_and_total_change() {
        let line = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":18446744073709551617,"progress":2,"total":10.5, "message":"x"}}"#;
        assert_eq!(
            shifted(line, 3.0),
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":18446744073709551617,"progress":5,"total":13.5, "message":"x"}}"#
        );
        let odd =
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":"half"}}"#;
        assert_eq!(shifted(odd, 3.0), odd);
    }
}
