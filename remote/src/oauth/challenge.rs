//! `WWW-Authenticate` (RFC 9110 §11.6.1) as MCP servers send it on a 401:
//! `Bearer resource_metadata="…", scope="…", error="…"`.

/// What a `Bearer` challenge tells the client.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// RFC 9728 §5.1: where the protected-resource metadata is.
    pub resource_metadata: Option<String>,
    /// The scopes this request needs.
    pub scope: Option<String>,
    pub error: Option<String>,
}

/// The `Bearer` challenge in a `WWW-Authenticate` value, if there is one.
/// Other schemes (`Basic realm=…`) before or after it are skipped.
pub fn parse(header: &str) -> Option<Challenge> {
    let mut p = Scanner { s: header.as_bytes(), i: 0 };
    let mut current: Option<String> = None;
    let mut found: Option<Challenge> = None;
    loop {
        p.skip(|c| c == b',' || c.is_ascii_whitespace());
        let Some(token) = p.token() else { break };
        p.skip(|c| c == b' ' || c == b'\t');
        if p.peek() == Some(b'=') {
            // An auth-param of the current challenge (or a token68's `=`).
            p.i += 1;
            p.skip(|c| c == b' ' || c == b'\t');
            let value = if p.peek() == Some(b'"') { p.quoted() } else { p.token().unwrap_or_default() };
            if current.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("bearer")) {
                let c = found.get_or_insert_with(Challenge::default);
                let slot = match token.to_ascii_lowercase().as_str() {
                    "resource_metadata" => &mut c.resource_metadata,
                    "scope" => &mut c.scope,
                    "error" => &mut c.error,
                    _ => continue,
                };
                // The first value of a repeated parameter wins.
                slot.get_or_insert(value);
            }
        } else {
            if current.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("bearer")) {
                // A second challenge starts: the Bearer one is complete.
                break;
            }
            if token.eq_ignore_ascii_case("bearer") {
                found.get_or_insert_with(Challenge::default);
            }
            current = Some(token);
        }
    }
    found
}

/// The scope to ask for when a server says `insufficient_scope`: what was
/// granted and what it asks for, in that order, each once; `None` when it
/// asks for nothing new (asking again could only loop).
pub fn step_up_scope(granted: Option<&str>, wanted: &str) -> Option<String> {
    let mut all: Vec<&str> = granted.unwrap_or("").split_ascii_whitespace().collect();
    let before = all.len();
    for s in wanted.split_ascii_whitespace() {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    (all.len() > before).then(|| all.join(" "))
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    /// An RFC 9110 token (token68 characters included).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted-string, with `\` escapes; an unterminated one ends the input.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resource_metadata_and_scope() {
        let c = parse(r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read files:write""#)
            .unwrap();
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert_eq!(c.error, None);
    }

    #[test]
    fn bearer_among_other_schemes_and_unquoted_values() {
        let c = parse(r#"Basic realm="x, y", Bearer error=invalid_token, scope="a", DPoP algs="ES256""#).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.scope.as_deref(), Some("a"));
        assert_eq!(c.resource_metadata, None);
        // The Basic realm's parameters never leak into the Bearer challenge.
        let c = parse(r#"Basic scope="evil", Bearer"#).unwrap();
        assert_eq!(c, Challenge::default());
    }

    #[test]
    fn step_up_asks_for_the_union_and_only_for_something_new() {
        assert_eq!(step_up_scope(Some("read"), "read admin").as_deref(), Some("read admin"));
        assert_eq!(step_up_scope(Some("read write"), "admin  read").as_deref(), Some("read write admin"));
        assert_eq!(step_up_scope(None, "admin").as_deref(), Some("admin"));
        assert_eq!(step_up_scope(Some("read admin"), "admin"), None);
        assert_eq!(step_up_scope(Some("read"), ""), None);
    }

    #[test]
    fn case_escapes_and_absence() {
        let c = parse(r#"bearer Resource_Metadata="https://h/a\"b""#).unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("https://h/a\"b"));
        assert_eq!(parse(r#"Basic realm="r""#), None);
        assert_eq!(parse(""), None);
        // Repeated parameters: the first wins.
        let c = parse(r#"Bearer scope="a", scope="b""#).unwrap();
        assert_eq!(c.scope.as_deref(), Some("a"));
        // Unterminated quotes end the value, no panic.
        assert_eq!(parse(r#"Bearer scope="abc"#).unwrap().scope.as_deref(), Some("abc"));
    }
}
