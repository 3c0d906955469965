//! Protected paths written out inside longer text: code given to an
//! interpreter (`python -c "open('/home/u/.config/latch/policy.toml','w')"`),
//! a script's body, a JSON document. Neither a path nor a shell word, so
//! the identity checks do not see them; the literal spellings are looked
//! for instead: the path, and under the home folder `~/…`, `$HOME/…`,
//! `${HOME}/…` and the home-relative tail (two parts at least).

use super::set::{Kind, Protected};

/// One pass over each string: all spellings in one literal alternation.
#[derive(Clone, Debug, Default)]
pub(super) struct Mentions {
    /// (spelling, the protected path, its kind), longest first.
    needles: Vec<(String, String, Kind)>,
    finder: Option<regex::Regex>,
}

impl PartialEq for Mentions {
    fn eq(&self, other: &Self) -> bool {
        self.needles == other.needles
    }
}

impl Mentions {
    pub fn new(p: &Protected) -> Mentions {
        let mut needles: Vec<(String, String, Kind)> = Vec::new();
        let home = p.home.as_deref().map(|h| h.trim_end_matches('/')).filter(|h| !h.is_empty());
        let all = p.paths.iter().map(|s| (s, Kind::Latch)).chain(p.configs.iter().map(|s| (s, Kind::Config)));
        for (path, kind) in all {
            let path = path.trim_end_matches('/');
            if path.is_empty() {
                continue;
            }
            let mut add = |n: String| {
                if !needles.iter().any(|(x, _, _)| *x == n) {
                    needles.push((n, path.to_owned(), kind));
                }
            };
            add(path.to_owned());
            if let Some(h) = home
                && let Some(rel) = path.strip_prefix(h).and_then(|r| r.strip_prefix('/'))
                && !rel.is_empty()
            {
                add(format!("~/{rel}"));
                add(format!("$HOME/{rel}"));
                add(format!("${{HOME}}/{rel}"));
                if rel.contains('/') {
                    add(rel.to_owned());
                }
            }
        }
        needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let finder = (!needles.is_empty()).then(|| {
            let alt: Vec<String> = needles.iter().map(|(n, _, _)| regex::escape(n)).collect();
            regex::Regex::new(&alt.join("|")).expect("escaped literals always compile")
        });
        Mentions { needles, finder }
    }

    /// The protected path `s` spells out, with its kind; client configs
    /// only when `configs` (a shell tool that writes).
    pub fn find(&self, s: &str, configs: bool) -> Option<(&str, Kind)> {
        let re = self.finder.as_ref()?;
        if !re.is_match(s) {
            return None;
        }
        self.needles
            .iter()
            .filter(|(_, _, k)| configs || *k != Kind::Config)
            .find(|(n, _, _)| mentions(s, n))
            .map(|(_, p, k)| (p.as_str(), *k))
    }
}

fn continues_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// `needle` occurs in `s` as a whole path: not glued to a longer name on
/// either side (`policy.toml.bak` counts, `…/latchy` does not).
fn mentions(s: &str, needle: &str) -> bool {
    let b = s.as_bytes();
    let absolute = needle.starts_with(['/', '~', '$']);
    let mut from = 0;
    while let Some(i) = s[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = start == 0 || {
            let p = b[start - 1];
            !(continues_name(p) || p == b'.' || (absolute && p == b'/'))
        };
        let after_ok = end == b.len() || !continues_name(b[end]);
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
        while !s.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}
