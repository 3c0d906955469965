//! Reading TOML values of a policy file: every problem is collected with
//! its line, column and fix ([`Cx`]), never only the first. The leaf the
//! section parsers share.

use std::ops::Range;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{PolicyError, Problem, ProblemKind, did_you_mean, line_col};
use crate::class::{Class, Decision};
use crate::glob::Glob;

pub(crate) type SValue<'i> = Spanned<DeValue<'i>>;

/// Where problems are collected while a file is read, and its text for
/// their line and column.
pub(crate) struct Cx<'t> {
    pub text: &'t str,
    pub problems: Vec<Problem>,
}

impl<'t> Cx<'t> {
    pub fn new(text: &'t str) -> Self {
        Cx { text, problems: Vec::new() }
    }

    pub fn problem(
        &mut self,
        kind: ProblemKind,
        span: Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(Problem { kind, line, column, message: message.into(), hint: hint.into() });
    }

    pub fn line(&self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }

    pub fn unknown_key(&mut self, key: &Spanned<std::borrow::Cow<'_, str>>, place: &str, known: &[&str]) {
        let k = key.get_ref();
        let hint = match did_you_mean(k, known) {
            Some(s) => format!("did you mean `{s}`? Keys allowed {place}: {}", known.join(", ")),
            None => format!("keys allowed {place}: {}", known.join(", ")),
        };
        self.problem(ProblemKind::UnknownKey, key.span(), format!("unknown key `{k}` {place}"), hint);
    }

    pub fn wrong_type(&mut self, v: &SValue<'_>, key: &str, want: &str, example: &str) {
        self.problem(
            ProblemKind::WrongType,
            v.span(),
            format!("`{key}` must be {want}, found {}", describe(v.get_ref())),
            format!("write it like {example}"),
        );
    }

    pub fn str<'v>(&mut self, v: &'v SValue<'_>, key: &str, example: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(v, key, "a string", example);
                None
            }
        }
    }

    pub fn table<'v, 'i>(&mut self, v: &'v SValue<'i>, key: &str, example: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, key, "a table", example);
                None
            }
        }
    }

    pub fn int(&mut self, v: &SValue<'_>, key: &str, range: (u64, u64), hint: &str) -> Option<u64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        let Some(n) = n else {
            self.wrong_type(v, key, "a whole number", &format!("`{key} = {}`", range.1.min(range.0.max(30))));
            return None;
        };
        match u64::try_from(n) {
            Ok(n) if n >= range.0 && n <= range.1 => Some(n),
            _ => {
                self.problem(
                    ProblemKind::OutOfRange,
                    v.span(),
                    format!("`{key} = {n}` is out of range ({} to {})", range.0, range.1),
                    hint.to_owned(),
                );
                None
            }
        }
    }

    /// A string or a list of strings, each with its span.
    pub fn strs(&mut self, v: &SValue<'_>, key: &str, example: &str) -> Option<Vec<(String, Range<usize>)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for item in a.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        _ => self.wrong_type(item, key, "a string", example),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(v, key, "a string or a list of strings", example);
                None
            }
        }
    }
}

pub(crate) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("the string {:?}", s.as_ref()),
        DeValue::Integer(i) => format!("the number {i}"),
        DeValue::Float(f) => format!("the number {f}"),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::Datetime(_) => "a date".to_owned(),
        DeValue::Array(_) => "a list".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// Keys of a table in the order they appear in the file.
pub(crate) fn entries<'t, 'i>(t: &'t DeTable<'i>) -> Vec<(&'t Spanned<std::borrow::Cow<'i, str>>, &'t SValue<'i>)> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

/// Converts a TOML value to JSON (dates become their text).
pub(crate) fn to_json(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).map(Value::from).unwrap_or(Value::Null),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().map(Value::from).unwrap_or(Value::Null),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|x| to_json(x.get_ref())).collect()),
        DeValue::Table(t) => Value::Object(
            entries(t).into_iter().map(|(k, x)| (k.get_ref().to_string(), to_json(x.get_ref()))).collect(),
        ),
    }
}

/// Parses TOML syntax; syntax errors are returned as problems.
pub(crate) fn parse_toml(text: &str) -> Result<Spanned<DeTable<'_>>, PolicyError> {
    let (doc, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Ok(doc);
    }
    let mut cx = Cx::new(text);
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_owned();
        cx.problem(
            ProblemKind::Syntax,
            span,
            format!("not valid TOML: {msg}"),
            "check quotes, brackets and `=` on this line (strings need \"double quotes\")",
        );
    }
    Err(PolicyError { problems: cx.problems })
}

/// An effect: `"allow"`, `"ask"` or `"deny"`.
pub(crate) fn effect(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str) -> Option<Decision> {
    let s = cx.str(v, key, &format!("`{key} = \"ask\"`"))?;
    match s.to_ascii_lowercase().as_str() {
        "allow" => Some(Decision::Allow),
        "ask" => Some(Decision::Ask),
        "deny" => Some(Decision::Deny),
        _ => {
            let hint = match did_you_mean(s, &["allow", "ask", "deny"]) {
                Some(m) => {
                    format!("did you mean \"{m}\"? The effects are \"allow\", \"ask\" and \"deny\"")
                }
                None => "the effects are \"allow\", \"ask\" and \"deny\"".to_owned(),
            };
            cx.problem(ProblemKind::UnknownName, v.span(), format!("unknown effect {s:?} for `{key}`"), hint);
            None
        }
    }
}

/// A class by name; an unknown one is a problem at `span` whose message
/// ends with `place` (e.g. " in [notify] classes").
pub(crate) fn class_name(cx: &mut Cx<'_>, s: &str, span: Range<usize>, place: &str) -> Option<Class> {
    if let Some(c) = Class::parse(s) {
        return Some(c);
    }
    let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    let hint = match did_you_mean(s, &names) {
        Some(m) => format!("did you mean \"{m}\"? The classes are {}", names.join(", ")),
        None => format!("the classes are {}", names.join(", ")),
    };
    cx.problem(ProblemKind::UnknownName, span, format!("unknown class {s:?}{place}"), hint);
    None
}

pub(crate) fn glob_problem(cx: &mut Cx<'_>, span: Range<usize>, pattern: &str, e: &crate::glob::GlobError) {
    cx.problem(
        ProblemKind::BadGlob,
        span,
        format!("glob {pattern:?} does not compile: {e}"),
        "globs know `*`, `?` and `[a-z]`; put `\\` before a character you mean literally",
    );
}

/// One glob or a list of them; an empty list is noted in `never`.
pub(crate) fn globs(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str, never: &mut Vec<String>) -> Vec<Glob> {
    let example = format!("`{key} = \"name\"` or `{key} = [\"a_*\", \"b\"]`");
    let Some(items) = cx.strs(v, key, &example) else {
        return Vec::new();
    };
    if items.is_empty() && matches!(v.get_ref(), DeValue::Array(_)) {
        never.push(format!("`{key} = []` lists nothing"));
    }
    let mut out = Vec::new();
    for (s, span) in items {
        match Glob::new(&s) {
            Ok(g) => out.push(g),
            Err(e) => glob_problem(cx, span, &s, &e),
        }
    }
    out
}

pub(crate) fn domains(cx: &mut Cx<'_>, v: &SValue<'_>, key: &str) -> Vec<String> {
    let example = format!("`{key} = [\"example.com\", \"corp.example.net\"]`");
    let Some(items) = (match v.get_ref() {
        DeValue::Array(_) => cx.strs(v, key, &example),
        _ => {
            cx.wrong_type(v, key, "a list of domains", &example);
            None
        }
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (d, span) in items {
        let lower = d.trim().to_ascii_lowercase();
        let ok = !lower.is_empty()
            && !lower.starts_with('.')
            && !lower.ends_with('.')
            && !lower.contains("..")
            && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ok {
            out.push(lower);
        } else {
            let hint = if let Some(rest) = lower.strip_prefix("*.") {
                format!("a domain already covers its subdomains: write {rest:?}")
            } else if lower.contains("://") || lower.contains('/') || lower.contains('@') {
                "write only the host name, like \"example.com\" (no scheme, path or user)".to_owned()
            } else {
                "a domain is letters, digits, `-` and dots, like \"example.com\"".to_owned()
            };
            cx.problem(ProblemKind::BadDomain, span, format!("{d:?} is not a domain name"), hint);
        }
    }
    out
}
