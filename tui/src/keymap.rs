//! Key bindings as data: every key the console understands is one row of
//! [`BINDINGS`], mapping a key in a [`Context`] to an [`Action`]. The help
//! bar, the `?` overlay and `tui/KEYS.md` are all generated from that table
//! (a test checks that KEYS.md is up to date), so what is documented is what
//! the console does.
//!
//! Lookup walks a chain of contexts, most specific first: on a pane it is
//! that pane's context, then [`Context::Global`]; in a popup (detail, help,
//! confirmation, search input) only the popup's own context applies, so a key
//! typed into a popup never reaches the pane behind it. The one exception is
//! the detail of a pending approval, which also accepts the answer keys of
//! the pending list.

use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the user can ask the console to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    NextPane,
    PrevPane,
    GoPending,
    GoLive,
    GoHistory,
    GoHealth,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    ApproveOnce,
    ApproveSessionArgs,
    ApproveSessionTool,
    ApproveAlways,
    Deny,
    DenyAlways,
    Search,
    FilterDecision,
    FilterClass,
    FilterServer,
    FilterTime,
    ClearFilters,
    Reload,
    Confirm,
    Cancel,
    AcceptPolicy,
    SetPin,
    Reveal,
    /// Open the tool findings (changed or suspect tool definitions).
    Findings,
    /// Accept the selected tool's definition as shown (needs the PIN).
    AcceptTool,
    Stop,
    Resume,
    /// Open the rules view.
    Rules,
    /// Delete the selected rule (asks first).
    DeleteRule,
}

impl Action {
    /// True for the keys that answer an approval.
    pub fn is_answer(self) -> bool {
        matches!(
            self,
            Action::ApproveOnce
                | Action::ApproveSessionArgs
                | Action::ApproveSessionTool
                | Action::ApproveAlways
                | Action::Deny
                | Action::DenyAlways
        )
    }
}

/// Where a key is pressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    /// Any pane, when the pane itself has no binding for the key.
    Global,
    Pending,
    Live,
    History,
    Health,
    /// The detail popup of a row or approval.
    Detail,
    /// The `?` overlay.
    Help,
    /// "Are you sure?" before an `always` answer or approving a transfer.
    Confirm,
    /// Typing a history search after `/`.
    Search,
    /// Typing the approval PIN.
    Pin,
    /// The tool findings popup.
    Findings,
    /// The rules view.
    Rules,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Pending => "Pending approvals",
            Context::Live => "Live calls",
            Context::History => "History",
            Context::Health => "Health",
            Context::Detail => "Detail popup",
            Context::Help => "Help popup",
            Context::Confirm => "Confirmation",
            Context::Search => "Search input",
            Context::Pin => "PIN input",
            Context::Findings => "Tool findings",
            Context::Rules => "Rules view",
        }
    }
}

/// A key with its modifiers, as matched against key events. Shift is
/// ignored for characters (the character itself carries it: `S` is shift-s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub const fn plain(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }

    pub const fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Key {
        Key { code: KeyCode::Char(c), ctrl: true }
    }

    /// The key of a terminal event.
    pub fn from_event(ev: &KeyEvent) -> Key {
        let code = match ev.code {
            // Some terminals report shift-tab as Tab + SHIFT.
            KeyCode::Tab if ev.modifiers.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            other => other,
        };
        Key { code, ctrl: ev.modifiers.contains(KeyModifiers::CONTROL) }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Backspace => f.write_str("Backspace"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One row of the keymap.
pub struct Binding {
    pub context: Context,
    pub keys: &'static [Key],
    pub action: Action,
    /// A word or two for the help bar; empty keeps it out of the bar.
    pub hint: &'static str,
    /// A sentence for the help overlay and KEYS.md.
    pub describe: &'static str,
}

const fn b(
    context: Context,
    keys: &'static [Key],
    action: Action,
    hint: &'static str,
    describe: &'static str,
) -> Binding {
    Binding { context, keys, action, hint, describe }
}

use Action as A;
use Context as C;

/// Every binding, in the order the help shows them.
pub const BINDINGS: &[Binding] = &[
    // Answer keys: one key each from the pending list (and its detail).
    b(
        C::Pending,
        &[Key::ch('a')],
        A::ApproveOnce,
        "approve",
        "Approve this call once (a single-use grant for these exact arguments).",
    ),
    b(
        C::Pending,
        &[Key::ch('s')],
        A::ApproveSessionArgs,
        "session",
        "Approve calls with these exact arguments for the rest of the agent's session.",
    ),
    b(
        C::Pending,
        &[Key::ch('S')],
        A::ApproveSessionTool,
        "session tool",
        "Approve any call of this tool for the rest of the agent's session.",
    ),
    b(
        C::Pending,
        &[Key::ch('A')],
        A::ApproveAlways,
        "always",
        "Approve always: pick how far it reaches (narrowest first), read the rule, then confirm.",
    ),
    b(C::Pending, &[Key::ch('d')], A::Deny, "deny", "Deny this call: type why, for the agent (optional), then Enter."),
    b(
        C::Pending,
        &[Key::ch('D')],
        A::DenyAlways,
        "deny always",
        "Deny always: writes a deny rule to the policy (asks to confirm).",
    ),
    // History.
    b(
        C::History,
        &[Key::ch('/')],
        A::Search,
        "search",
        "Search tool, server and arguments (Enter runs it, Esc cancels).",
    ),
    b(C::History, &[Key::ch('v')], A::FilterDecision, "decision", "Cycle the decision filter: any, allow, ask, deny."),
    b(C::History, &[Key::ch('c')], A::FilterClass, "class", "Cycle the class filter: any, READ … TRANSFER_VALUE."),
    b(
        C::History,
        &[Key::ch('e')],
        A::FilterServer,
        "server",
        "Cycle the server filter through the servers seen so far.",
    ),
    b(
        C::History,
        &[Key::ch('t')],
        A::FilterTime,
        "time",
        "Cycle the time filter: all, last hour, last day, last week.",
    ),
    b(C::History, &[Key::ch('x')], A::ClearFilters, "clear", "Clear the search and every filter."),
    b(C::History, &[Key::ch('r')], A::Reload, "reload", "Reload the newest page (after new calls arrived)."),
    b(C::History, &[Key::plain(KeyCode::PageDown), Key::ctrl('d')], A::PageDown, "", "Next (older) page of the log."),
    b(C::History, &[Key::plain(KeyCode::PageUp), Key::ctrl('u')], A::PageUp, "", "Previous (newer) page of the log."),
    b(C::History, &[Key::ch('g'), Key::plain(KeyCode::Home)], A::Top, "", "Back to the newest page."),
    b(C::Health, &[Key::ch('r')], A::Reload, "refresh", "Ask the daemon for its status again."),
    // Everywhere on a pane.
    b(C::Global, &[Key::ch('k'), Key::plain(KeyCode::Up)], A::Up, "", "Move up."),
    b(C::Global, &[Key::ch('j'), Key::plain(KeyCode::Down)], A::Down, "", "Move down."),
    b(C::Global, &[Key::plain(KeyCode::PageUp), Key::ctrl('u')], A::PageUp, "", "Move up ten rows."),
    b(C::Global, &[Key::plain(KeyCode::PageDown), Key::ctrl('d')], A::PageDown, "", "Move down ten rows."),
    b(C::Global, &[Key::ch('g'), Key::plain(KeyCode::Home)], A::Top, "", "Go to the first row."),
    b(C::Global, &[Key::ch('G'), Key::plain(KeyCode::End)], A::Bottom, "", "Go to the last row."),
    b(C::Global, &[Key::plain(KeyCode::Enter)], A::Open, "detail", "Open the detail of the selected row."),
    b(C::Global, &[Key::plain(KeyCode::Tab)], A::NextPane, "pane", "Next pane."),
    b(C::Global, &[Key::plain(KeyCode::BackTab)], A::PrevPane, "", "Previous pane."),
    b(C::Global, &[Key::ch('1')], A::GoPending, "", "Go to the pending approvals."),
    b(C::Global, &[Key::ch('2')], A::GoLive, "", "Go to the live calls."),
    b(C::Global, &[Key::ch('3')], A::GoHistory, "", "Go to the history."),
    b(C::Global, &[Key::ch('4')], A::GoHealth, "", "Go to the health pane."),
    b(
        C::Global,
        &[Key::ch('P')],
        A::AcceptPolicy,
        "",
        "Accept the policy change that waits because it loosens the policy (the Health pane shows it; needs the PIN).",
    ),
    b(
        C::Global,
        &[Key::ch('p')],
        A::SetPin,
        "",
        "Set the approval PIN when none is set (typed twice; changing it needs the old one: `latch pin set`).",
    ),
    b(
        C::Global,
        &[Key::ch('F')],
        A::Findings,
        "",
        "Show the tools whose definition changed since first seen or holds text aimed at the model, with the diff.",
    ),
    b(
        C::Global,
        &[Key::ch('X')],
        A::Stop,
        "",
        "Kill switch: pressed twice, denies every tool call of every agent (and what waits for a person) until resumed.",
    ),
    b(C::Global, &[Key::ch('U')], A::Resume, "", "Resume tool calls after the kill switch (needs the PIN)."),
    b(C::Global, &[Key::ch('?')], A::Help, "help", "Show every key."),
    b(
        C::Global,
        &[Key::ch('q'), Key::ctrl('c')],
        A::Quit,
        "quit",
        "Quit the console (pending approvals stay pending).",
    ),
    // Popups.
    b(C::Detail, &[Key::ch('k'), Key::plain(KeyCode::Up)], A::Up, "", "Scroll up."),
    b(C::Detail, &[Key::ch('j'), Key::plain(KeyCode::Down)], A::Down, "", "Scroll down."),
    b(C::Detail, &[Key::plain(KeyCode::PageUp), Key::ctrl('u')], A::PageUp, "", "Scroll up ten lines."),
    b(C::Detail, &[Key::plain(KeyCode::PageDown), Key::ctrl('d')], A::PageDown, "", "Scroll down ten lines."),
    b(C::Detail, &[Key::ch('g'), Key::plain(KeyCode::Home)], A::Top, "", "Scroll to the top."),
    b(
        C::Detail,
        &[Key::ch('r')],
        A::Reveal,
        "",
        "Pending approval: show the masked values of its arguments on this screen (again: mask them); needs the PIN, never sent anywhere.",
    ),
    b(
        C::Detail,
        &[Key::plain(KeyCode::Esc), Key::ch('q'), Key::plain(KeyCode::Enter)],
        A::Back,
        "close",
        "Close the detail.",
    ),
    b(C::Help, &[Key::plain(KeyCode::Esc), Key::ch('q'), Key::ch('?')], A::Back, "close", "Close the help."),
    b(C::Help, &[Key::ch('k'), Key::plain(KeyCode::Up)], A::Up, "", "Scroll up."),
    b(C::Help, &[Key::ch('j'), Key::plain(KeyCode::Down)], A::Down, "", "Scroll down."),
    b(C::Confirm, &[Key::ch('y'), Key::plain(KeyCode::Enter)], A::Confirm, "confirm", "Confirm the answer."),
    b(C::Confirm, &[Key::ch('k'), Key::plain(KeyCode::Up)], A::Up, "", "Approve always: a narrower scope."),
    b(C::Confirm, &[Key::ch('j'), Key::plain(KeyCode::Down)], A::Down, "", "Approve always: a wider scope."),
    b(
        C::Confirm,
        &[Key::ch('n'), Key::plain(KeyCode::Esc), Key::ch('q')],
        A::Cancel,
        "cancel",
        "Cancel: nothing is sent.",
    ),
    b(C::Search, &[Key::plain(KeyCode::Enter)], A::Confirm, "search", "Run the search."),
    b(C::Search, &[Key::plain(KeyCode::Esc), Key::ctrl('c')], A::Cancel, "cancel", "Cancel the search input."),
    b(
        C::Pin,
        &[Key::plain(KeyCode::Enter)],
        A::Confirm,
        "unlock",
        "Send the PIN: the console is unlocked for this session.",
    ),
    b(C::Pin, &[Key::plain(KeyCode::Esc), Key::ctrl('c')], A::Cancel, "cancel", "Cancel: nothing is sent."),
    b(C::Findings, &[Key::ch('k'), Key::plain(KeyCode::Up)], A::Up, "", "Previous tool."),
    b(C::Findings, &[Key::ch('j'), Key::plain(KeyCode::Down)], A::Down, "", "Next tool."),
    b(C::Findings, &[Key::plain(KeyCode::PageUp), Key::ctrl('u')], A::PageUp, "", "Scroll the diff up."),
    b(C::Findings, &[Key::plain(KeyCode::PageDown), Key::ctrl('d')], A::PageDown, "", "Scroll the diff down."),
    b(
        C::Findings,
        &[Key::ch('a')],
        A::AcceptTool,
        "accept",
        "Accept the selected tool's definition as shown: it becomes the pinned one and its calls are decided by the policy again (needs the PIN).",
    ),
    b(C::Findings, &[Key::ch('r')], A::Reload, "reload", "Ask the daemon for the findings again."),
    b(C::Findings, &[Key::plain(KeyCode::Esc), Key::ch('q')], A::Back, "close", "Close the findings."),
    b(
        C::Global,
        &[Key::ch('R')],
        A::Rules,
        "",
        "The policy's rules: who added each, when, from which approval; delete one (the undo of an always).",
    ),
    b(C::Rules, &[Key::ch('k'), Key::plain(KeyCode::Up)], A::Up, "", "The rule above."),
    b(C::Rules, &[Key::ch('j'), Key::plain(KeyCode::Down)], A::Down, "", "The rule below."),
    b(
        C::Rules,
        &[Key::ch('d')],
        A::DeleteRule,
        "delete",
        "Delete the selected rule from the policy file (asks first).",
    ),
    b(C::Rules, &[Key::ch('r')], A::Reload, "reload", "Read the rules again."),
    b(C::Rules, &[Key::plain(KeyCode::Esc), Key::ch('q'), Key::ch('R')], A::Back, "close", "Close the rules view."),
];

/// The action bound to `key` in the first context of `chain` that binds it.
pub fn lookup(chain: &[Context], key: Key) -> Option<Action> {
    chain.iter().find_map(|ctx| BINDINGS.iter().find(|b| b.context == *ctx && b.keys.contains(&key)).map(|b| b.action))
}

/// `(keys, hint)` pairs for the help bar of a context chain, first
/// context's bindings first.
pub fn hints(chain: &[Context]) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for ctx in chain {
        for b in BINDINGS.iter().filter(|b| b.context == *ctx && !b.hint.is_empty()) {
            if out.iter().any(|(_, h)| *h == b.hint) {
                continue;
            }
            out.push((b.keys[0].to_string(), b.hint));
        }
    }
    out
}

/// The contexts in the order the help shows them.
pub const CONTEXTS: [Context; 12] = [
    Context::Pending,
    Context::History,
    Context::Health,
    Context::Global,
    Context::Detail,
    Context::Confirm,
    Context::Search,
    Context::Pin,
    Context::Help,
    Context::Live,
    Context::Findings,
    Context::Rules,
];

/// Keys of a binding, joined for display.
pub fn keys_label(b: &Binding) -> String {
    b.keys.iter().map(Key::to_string).collect::<Vec<_>>().join(", ")
}

/// The keymap as Markdown: the content of `tui/KEYS.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# latch tui: keys\n\n\
         Generated from `tui/src/keymap.rs` (a test fails when this file is out of date).\n\
         Keys of a pane apply first, then the keys listed under *Everywhere*.\n\
         A popup takes only its own keys.\n",
    );
    for ctx in CONTEXTS {
        let rows: Vec<&Binding> = BINDINGS.iter().filter(|b| b.context == ctx).collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("\n## {}\n\n| Keys | Does |\n|---|---|\n", ctx.title()));
        for b in rows {
            let keys = keys_label(b).replace('|', "\\|");
            out.push_str(&format!("| `{keys}` | {} |\n", b.describe));
        }
    }
    out.push_str(FOCUS_RULE_MD);
    out
}

/// The focus rule, documented beside the keys because it is about them.
const FOCUS_RULE_MD: &str = "
## When a new approval arrives

- The selection follows an approval by its id, never by its position: an
  approval arriving or leaving never moves the selection to another one.
- A new approval takes focus (the console switches to the pending pane and
  selects it) only when the console is idle: no popup, search input or
  confirmation open, and no key pressed for one second. Otherwise it waits
  for the next idle moment; the header shows the count meanwhile. If you are
  already looking at another approval in the pending pane, your selection
  stays where it is.
- Right after focus moved by itself, the answer keys are held for half a
  second: a key pressed then only says \"press again\", so a keystroke meant
  for the previous pane never answers an approval you have not seen.
- Answers with `always` scope, and approving a `TRANSFER_VALUE` call, ask for
  a confirmation (`y`/`Enter`); every other answer is one key. Approve
  always (`A`) first offers how far the rule reaches, narrowest first, and
  shows the exact rule it writes (`j`/`k` choose).
- Once an approval PIN is set (`latch pin set`), the first approval (or `P`)
  of a session asks for it; the console then stays unlocked until it
  disconnects. A deny never asks. Until a PIN is set the header says
  approvals are unprotected.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for (i, x) in BINDINGS.iter().enumerate() {
            for y in &BINDINGS[i + 1..] {
                if x.context == y.context {
                    for k in x.keys {
                        assert!(!y.keys.contains(k), "{k} bound twice in {:?}", x.context);
                    }
                }
            }
        }
    }

    #[test]
    fn pane_keys_take_precedence_over_global_keys() {
        let chain = [Context::History, Context::Global];
        assert_eq!(lookup(&chain, Key::plain(KeyCode::PageDown)), Some(Action::PageDown));
        assert_eq!(lookup(&chain, Key::ch('q')), Some(Action::Quit));
        assert_eq!(lookup(&[Context::Confirm], Key::ch('q')), Some(Action::Cancel));
        assert_eq!(lookup(&[Context::Confirm], Key::ch('a')), None);
    }

    #[test]
    fn shift_tab_is_recognised_in_both_encodings() {
        let ev = KeyEvent::new(KeyCode::Tab, KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&ev), Key::plain(KeyCode::BackTab));
        let ev = KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&ev), Key::ch('S'));
    }

    #[test]
    fn keys_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/KEYS.md");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        if on_disk != markdown() {
            if std::env::var_os("LATCH_WRITE_KEYS").is_some() {
                std::fs::write(path, markdown()).unwrap();
            } else {
                panic!("tui/KEYS.md is out of date: rerun with LATCH_WRITE_KEYS=1");
            }
        }
    }
}
