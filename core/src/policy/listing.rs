//! The rules of a policy file as a person manages them: listed with who
//! added each (the comment Latch writes above an "always" rule,
//! [`super::origin`]), and deleted as text, so every other line of the
//! file (comments, blank lines, formatting) stays as it was.

use super::origin::{self, Origin};
use super::{Policy, PolicyError};

/// One `[[rule]]` of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleEntry {
    /// 1-based, in file order: what `latch rules show|delete N` takes.
    pub number: usize,
    /// 1-based line of its `[[rule]]` header.
    pub line: usize,
    /// Its `name`, when it has one.
    pub name: Option<String>,
    pub effect: String,
    /// The matchers in one line.
    pub summary: String,
    pub reason: Option<String>,
    /// Who added it, when, from which approval (rules Latch wrote).
    pub origin: Option<Origin>,
    /// Its lines as written, with the origin comment above it.
    pub text: String,
}

/// 0-based line ranges `[start, end)` of each rule's block: the origin
/// comment above its header (when there is one), the header, its keys,
/// up to the next table header or the comments and blank lines above it.
fn blocks(lines: &[&str], headers: &[usize]) -> Vec<(usize, usize)> {
    let is_table = |l: &str| l.trim_start().starts_with('[');
    headers
        .iter()
        .map(|&h| {
            let h = h - 1;
            let start = if h > 0 && origin::parse(lines[h - 1]).is_some() && lines[h - 1].trim_start().starts_with('#')
            {
                h - 1
            } else {
                h
            };
            let mut end = (h + 1..lines.len()).find(|&i| is_table(lines[i])).unwrap_or(lines.len());
            // Comments and blank lines before the next table belong to it
            // or to the file, not to this rule.
            while end > h + 1 {
                let t = lines[end - 1].trim();
                if t.is_empty() || t.starts_with('#') {
                    end -= 1;
                } else {
                    break;
                }
            }
            (start, end)
        })
        .collect()
}

/// Every rule of `text`, in file order. A file that does not parse is an
/// error: nothing is listed or changed from a file the daemon would refuse.
pub fn list(text: &str) -> Result<Vec<RuleEntry>, PolicyError> {
    let policy = Policy::parse(text)?;
    let lines: Vec<&str> = text.lines().collect();
    let headers: Vec<usize> = policy.rules.iter().map(|r| r.line).collect();
    let spans = blocks(&lines, &headers);
    Ok(policy
        .rules
        .iter()
        .zip(spans)
        .enumerate()
        .map(|(i, (r, (start, end)))| RuleEntry {
            number: i + 1,
            line: r.line,
            name: (!r.id.starts_with("rule #")).then(|| r.id.clone()),
            effect: r.effect.as_str().to_owned(),
            summary: r.summary.clone(),
            reason: r.reason.clone(),
            origin: (start < r.line - 1).then(|| origin::parse(lines[start])).flatten(),
            text: lines[start..end].join("\n"),
        })
        .collect())
}

/// `text` without rule `number` (its block and one blank line after it),
/// or `None` when there is no such rule.
pub fn delete(text: &str, number: usize) -> Result<Option<String>, PolicyError> {
    let policy = Policy::parse(text)?;
    let Some(rule) = number.checked_sub(1).and_then(|i| policy.rules.get(i)) else { return Ok(None) };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let plain: Vec<&str> = lines.iter().map(|l| l.trim_end_matches(['\n', '\r'])).collect();
    let (start, mut end) = blocks(&plain, &[rule.line])[0];
    if end < plain.len() && plain[end].trim().is_empty() {
        end += 1;
    }
    let mut out = String::with_capacity(text.len());
    lines[..start].iter().chain(&lines[end..]).for_each(|l| out.push_str(l));
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my policy\n[defaults]\nexecute = \"ask\"\n\n# no system files\n[[rule]]\nname = \"etc\"\ntool = \"write_file\"\nargs = [\n  { path = \"path\", prefix = \"/etc/\" },\n]\neffect = \"deny\"\n\n# from tui (alice) at 2026-11-24 15:30 UTC, approval a1b2 \"always\"\n[[rule]]\nserver = \"dev\"\ntool = \"run_command\"\nargs = [\n  { path = \"command\", command = [\"npm\", \"run\", \"test\"] },\n]\neffect = \"allow\"\n\n# trailing note\n[telegram]\nenabled = false\n";

    #[test]
    fn rules_are_listed_with_their_origin() {
        let rules = list(FILE).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!((rules[0].number, rules[0].line, rules[0].name.as_deref()), (1, 6, Some("etc")));
        assert_eq!(rules[0].origin, None);
        assert!(rules[0].text.starts_with("[[rule]]\nname = \"etc\""), "{}", rules[0].text);
        assert!(rules[0].text.ends_with("effect = \"deny\""), "{}", rules[0].text);
        let o = rules[1].origin.as_ref().unwrap();
        assert_eq!((o.who.as_str(), o.approval.as_str()), ("alice", "a1b2"));
        assert!(rules[1].text.starts_with("# from tui (alice)"));
        assert!(rules[1].summary.contains("command starts \"npm run test\""), "{}", rules[1].summary);
    }

    #[test]
    fn delete_removes_the_block_and_keeps_every_other_line() {
        let out = delete(FILE, 2).unwrap().unwrap();
        assert_eq!(
            out,
            FILE.replace("# from tui (alice) at 2026-11-24 15:30 UTC, approval a1b2 \"always\"\n[[rule]]\nserver = \"dev\"\ntool = \"run_command\"\nargs = [\n  { path = \"command\", command = [\"npm\", \"run\", \"test\"] },\n]\neffect = \"allow\"\n\n", "")
        );
        let out = delete(FILE, 1).unwrap().unwrap();
        assert!(
            out.contains("# no system files\n# from tui"),
            "the comment of a rule not written by Latch stays:\n{out}"
        );
        assert_eq!(list(&out).unwrap().len(), 1);
        assert_eq!(delete(FILE, 3).unwrap(), None);
        assert_eq!(delete(FILE, 0).unwrap(), None);
        assert!(delete("[[rule]]\n", 1).is_err(), "a broken file is not edited");
    }
}
