//! Headers from the server's configuration (`--header "K: V"`), with
//! `${VAR}` expanded from the environment when the bridge starts.
//!
//! The expanded values are secrets (tokens, API keys): they exist only in
//! this process's memory and in the requests. They are never printed,
//! logged, or put on a command line; errors name the header and the
//! variable, never a value. `Debug` shows names only.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("--header {0:?} is not of the form \"Name: value\"")]
    Form(String),
    #[error("--header {0:?}: not a valid HTTP header name")]
    Name(String),
    #[error("header {header}: the environment variable {var} is not set")]
    Unset { header: String, var: String },
    #[error("header {header}: an unfinished ${{…}} in its value")]
    Unfinished { header: String },
    #[error("header {0}: the value holds characters a header cannot carry (line breaks or control characters)")]
    Value(String),
    #[error("header {0} is set by the bridge itself and cannot be configured")]
    Reserved(String),
}

/// Headers the transport owns: a configured value would break the
/// protocol or smuggle a second meaning past the mirrored ones.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// The configured headers, expanded. Values are marked sensitive so that
/// reqwest and http never show them in their own `Debug` output.
#[derive(Clone, Default)]
pub struct ConfigHeaders {
    map: HeaderMap,
}

impl std::fmt::Debug for ConfigHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

impl ConfigHeaders {
    /// Parses each `Name: value` and expands `${VAR}` in the value with
    /// LOOKUP (the process environment in production).
    pub fn parse(specs: &[String], lookup: impl Fn(&str) -> Option<String>) -> Result<ConfigHeaders, HeaderError> {
        let mut map = HeaderMap::new();
        for spec in specs {
            let Some((name, template)) = spec.split_once(':') else {
                return Err(HeaderError::Form(redacted_spec(spec)));
            };
            let name = name.trim();
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderError::Name(name.to_owned()))?;
            let lower = header.as_str();
            if RESERVED.contains(&lower) || lower.starts_with("mcp-param-") {
                return Err(HeaderError::Reserved(name.to_owned()));
            }
            let value = expand(template.trim(), name, &lookup)?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| HeaderError::Value(name.to_owned()))?;
            value.set_sensitive(true);
            map.append(header, value);
        }
        Ok(ConfigHeaders { map })
    }

    pub fn map(&self) -> &HeaderMap {
        &self.map
    }

    /// Whether the configuration sets this header (e.g. `authorization`,
    /// which then takes the place of OAuth).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// A spec shown in an error: the name only, never the value.
fn redacted_spec(spec: &str) -> String {
    let name: String = spec.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    format!("{name}…")
}

/// `${NAME}` replaced by the variable's value (`${env:NAME}`, VS Code's
/// and Cursor's spelling, too; `${NAME:-default}` when it is unset or
/// empty); `$$` is a literal `$`; any other `$` stays as it is.
pub(crate) fn expand(
    template: &str,
    header: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, HeaderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(HeaderError::Unfinished { header: header.to_owned() });
            };
            let inner = &after[..end];
            let (var, default) = match inner.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (inner, None),
            };
            let var = var.strip_prefix("env:").unwrap_or(var);
            let value = match (lookup(var).filter(|v| !(v.is_empty() && default.is_some())), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_owned(),
                (None, None) => return Err(HeaderError::Unset { header: header.to_owned(), var: var.to_owned() }),
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "TOKEN" => Some("s3cret-value".into()),
            "EVIL" => Some("x\r\nX-Injected: 1".into()),
            _ => None,
        }
    }

    fn parse(specs: &[&str]) -> Result<ConfigHeaders, HeaderError> {
        ConfigHeaders::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), env)
    }

    #[test]
    fn variables_are_expanded_and_literal_dollars_kept() {
        let h = parse(&["Authorization: Bearer ${TOKEN}", "X-Price: $5 or $$6"]).unwrap();
        assert_eq!(h.map()["authorization"], "Bearer s3cret-value");
        assert_eq!(h.map()["x-price"], "$5 or $6");
        assert!(h.has("authorization"));
    }

    #[test]
    fn values_never_show_in_debug_or_errors() {
        let h = parse(&["Authorization: Bearer ${TOKEN}"]).unwrap();
        assert!(!format!("{h:?}").contains("s3cret"));
        assert!(!format!("{:?}", h.map()).contains("s3cret"), "marked sensitive");
        let e = parse(&["Authorization Bearer literal-secret"]).unwrap_err();
        assert!(!e.to_string().contains("literal-secret"), "{e}");
        let e = parse(&["X-Key: ${MISSING}"]).unwrap_err();
        assert_eq!(e, HeaderError::Unset { header: "X-Key".into(), var: "MISSING".into() });
    }

    #[test]
    fn vs_code_spelling_and_defaults() {
        let h = parse(&["A: ${env:TOKEN}", "B: ${MISSING:-fallback}", "C: ${TOKEN:-unused}"]).unwrap();
        assert_eq!(h.map()["a"], "s3cret-value");
        assert_eq!(h.map()["b"], "fallback");
        assert_eq!(h.map()["c"], "s3cret-value");
    }

    #[test]
    fn header_injection_through_a_variable_is_refused() {
        assert_eq!(parse(&["X-A: ${EVIL}"]).unwrap_err(), HeaderError::Value("X-A".into()));
    }

    #[test]
    fn transport_headers_cannot_be_configured() {
        for name in ["Mcp-Session-Id", "mcp-method", "Mcp-Param-Region", "Content-Type", "Host"] {
            assert!(matches!(parse(&[&format!("{name}: x")]), Err(HeaderError::Reserved(_))), "{name}");
        }
    }

    #[test]
    fn unfinished_variables_are_errors() {
        assert!(matches!(parse(&["X-A: ${TOKEN"]), Err(HeaderError::Unfinished { .. })));
    }
}
