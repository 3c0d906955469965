//! Threats that come from servers (issue 18): a server is an attacker too.
//! Pure parts only, no IO and no clock (times are arguments); the daemon
//! drives them.
//!
//! - [`pin`]: a tool definition's pinned form and what changed in it (rug
//!   pulls, annotation flips towards less caution); [`pins`]: one server's
//!   pins and what a new `tools/list` says against them;
//! - [`describe`]: text in a tool definition that addresses the model
//!   (poisoned descriptions) and names shared with or aimed at another
//!   server's tools (shadowing);
//! - [`result`]: injection markers and live-looking secrets in tool
//!   results, with a single pass for clean results and masking;
//! - [`taint`]: the lethal trifecta per agent session;
//! - [`limits`]: call rate limits; [`budget`]: money budgets, with
//!   [`money`] reading amounts from TRANSFER_VALUE arguments.
//!
//! [`gate`] turns each check's outcome into an effect and a reason.
//!
//! [`text`] and [`hidden`] are the marker engine [`describe`] and
//! [`result`] share.

pub mod budget;
pub mod describe;
pub mod gate;
pub mod hidden;
pub mod limits;
mod live;
pub mod money;
pub mod pin;
pub mod pins;
pub mod result;
pub mod taint;
pub mod text;

use serde::Serialize;

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Text that addresses the model: instructions aimed at other tools,
    /// at hiding things from the user, at reading or sending data.
    Injection,
    /// Characters a person does not see: invisible, bidi controls, Unicode
    /// tag characters, terminal escape sequences.
    HiddenText,
    /// A live-looking secret (a provider key, a private key, a password).
    Secret,
    /// A tool name that another server already uses.
    SameName,
    /// A description that names another server's tool.
    NamesOtherTool,
    /// Too large or too deeply nested to read completely: what was not read
    /// may hold anything.
    Unchecked,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Injection => "injection",
            FindingKind::HiddenText => "hidden_text",
            FindingKind::Secret => "secret",
            FindingKind::SameName => "same_name",
            FindingKind::NamesOtherTool => "names_other_tool",
            FindingKind::Unchecked => "unchecked",
        }
    }
}

/// One finding: what, where in the definition or result, and why, in a
/// sentence a person reads in the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// Where: `description`, `inputSchema.properties.to.description`,
    /// `content[0].text`, `structuredContent.items[2]`.
    pub place: String,
    pub reason: String,
    /// The matched text, cut to [`EXCERPT`] characters, with hidden
    /// characters shown as `<U+200B>` escapes and secrets masked.
    pub excerpt: String,
}

/// Longest excerpt kept in a finding.
pub const EXCERPT: usize = 120;

/// `s` cut to [`EXCERPT`] characters, hidden characters made visible and
/// secrets masked: excerpts are shown and stored.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= EXCERPT {
            out.push('…');
            break;
        }
        push_visible(&mut out, c, true);
    }
    crate::redact::redact_text(&out).into_owned()
}

/// `s` with every hidden character (zero-width, bidirectional controls,
/// tags) and every control character but the tab written as `<U+XXXX>`:
/// text a server chose, safe to show on a terminal or in a message.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_visible(&mut out, c, false);
    }
    out
}

/// Pushes `c`, or its `<U+XXXX>` escape when it would be hidden or control
/// the terminal (a newline passes when `newline`).
fn push_visible(out: &mut String, c: char, newline: bool) {
    if hidden::is_hidden(c) || (c.is_control() && c != '\t' && !(newline && c == '\n')) {
        out.push_str(&format!("<U+{:04X}>", c as u32));
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod visible_tests {
    #[test]
    fn hidden_and_control_characters_are_shown_as_escapes_but_a_tab() {
        // A server's tool name with a right-to-left override, a zero-width
        // space, an escape sequence and a newline: each shown, none acting.
        let name = "read\u{202E}fdp.exe\u{200B}\u{1b}[2J\nx\ty";
        assert_eq!(super::visible(name), "read<U+202E>fdp.exe<U+200B><U+001B>[2J<U+000A>x\ty");
        assert_eq!(super::excerpt("a\nb\u{200B}"), "a\nb<U+200B>", "excerpts keep their lines");
    }
}
