//! `[notify]`: when a pending approval raises a desktop notification.
//!
//! ```toml
//! [notify]
//! desktop = true                      # on/off (default on)
//! classes = ["EXECUTE", "SUBMIT"]     # which classes notify (default: all)
//! quiet_hours = "22:00-07:00"         # local time; no notification then
//! ```
//!
//! Pure data and a pure test: the daemon reads the settings from the policy
//! in force each time an approval arrives (so a reload applies at once) and
//! passes the local time in as minutes since midnight; nothing here reads a
//! clock. A quiet-hours window may cross midnight; its start is inside, its
//! end is not. An empty window (`"09:00-09:00"`) is refused rather than read
//! as "never" or "always": `desktop = false` says "always" plainly.
//!
//! Every class can be asked (a rule can make a READ ask), so the default
//! list is every class.

use toml::Spanned;
use toml::de::DeValue;

use super::error::ProblemKind;
use super::read::{Cx, class_name, entries};
use crate::class::Class;

const NOTIFY_KEYS: &[&str] = &["desktop", "classes", "quiet_hours"];
const QUIET_EXAMPLE: &str = "`quiet_hours = \"22:00-07:00\"` (24-hour local time, start-end)";

/// The `[notify]` section; [`Default`] is what a file without it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// Desktop notifications on (`desktop = true`, the default).
    pub desktop: bool,
    /// Classes whose approvals notify, in [`Class::ALL`] order.
    pub classes: Vec<Class>,
    /// Local time window with no desktop notification.
    pub quiet_hours: Option<QuietHours>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings { desktop: true, classes: Class::ALL.to_vec(), quiet_hours: None }
    }
}

impl NotifySettings {
    /// Whether an approval of class `class` (its name, as pending items
    /// carry it) raises a desktop notification at local time
    /// `minute_of_day` (0 = midnight, 1439 = 23:59). An unknown class name
    /// notifies: a person should hear of an approval rather than miss it.
    pub fn desktop_notifies(&self, class: &str, minute_of_day: u16) -> bool {
        self.desktop_wants(class) && !self.quiet_at(minute_of_day)
    }

    /// Whether an approval of class `class` notifies outside quiet hours.
    pub fn desktop_wants(&self, class: &str) -> bool {
        self.desktop && Class::parse(class).is_none_or(|c| self.classes.contains(&c))
    }

    /// Whether `minute_of_day` falls in the quiet hours.
    pub fn quiet_at(&self, minute_of_day: u16) -> bool {
        self.quiet_hours.is_some_and(|q| q.contains(minute_of_day))
    }
}

/// A daily window `start..end` in minutes since local midnight; it crosses
/// midnight when `end < start`. Never empty (`start != end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: u16,
    pub end: u16,
}

impl QuietHours {
    /// Whether `minute_of_day` is inside the window (start inclusive, end
    /// exclusive).
    pub fn contains(&self, minute_of_day: u16) -> bool {
        let m = minute_of_day % (24 * 60);
        if self.start < self.end { self.start <= m && m < self.end } else { m >= self.start || m < self.end }
    }

    /// Parses `"HH:MM-HH:MM"`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<QuietHours, String> {
        let Some((a, b)) = s.split_once('-') else {
            return Err(format!("{s:?} is not a time range"));
        };
        let start = clock(a.trim())?;
        let end = clock(b.trim())?;
        if start == end {
            return Err(format!("{s:?} starts and ends at the same minute"));
        }
        Ok(QuietHours { start, end })
    }
}

/// `"HH:MM"` (hours 0–23, minutes 0–59; one-digit hours allowed) → minutes.
fn clock(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day like \"07:30\"");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let digits = |x: &str, max_len: usize| !x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(format!("{s:?} is not a time of day: hours go from 00 to 23, minutes from 00 to 59"));
    }
    Ok(h * 60 + m)
}

/// Reads `[notify]`; problems go to `cx` with their place. Keys with a
/// problem keep their default.
pub(crate) fn parse(cx: &mut Cx<'_>, v: &Spanned<DeValue<'_>>) -> NotifySettings {
    let mut n = NotifySettings::default();
    let Some(t) = cx.table(v, "notify", "`[notify]` followed by `desktop = true`") else {
        return n;
    };
    for (k, v) in entries(t) {
        match k.get_ref().as_ref() {
            "desktop" => match v.get_ref() {
                DeValue::Boolean(b) => n.desktop = *b,
                _ => cx.wrong_type(v, "desktop", "true or false", "`desktop = false`"),
            },
            "classes" => {
                let example = "`classes = [\"EXECUTE\", \"SUBMIT\"]`";
                let items = match v.get_ref() {
                    DeValue::Array(_) => cx.strs(v, "classes", example),
                    _ => {
                        cx.wrong_type(v, "classes", "a list of classes", example);
                        None
                    }
                };
                if let Some(items) = items {
                    let mut wanted = Vec::new();
                    for (s, span) in items {
                        if let Some(c) = class_name(cx, &s, span, " in [notify] classes") {
                            wanted.push(c);
                        }
                    }
                    n.classes = Class::ALL.into_iter().filter(|c| wanted.contains(c)).collect();
                }
            }
            "quiet_hours" => {
                if let Some(s) = cx.str(v, "quiet_hours", QUIET_EXAMPLE) {
                    match QuietHours::parse(s) {
                        Ok(q) => n.quiet_hours = Some(q),
                        Err(why) => cx.problem(ProblemKind::WrongType, v.span(), why, format!("write it like {QUIET_EXAMPLE}; to turn desktop notifications off altogether write `desktop = false`")),
                    }
                }
            }
            _ => cx.unknown_key(k, "in [notify]", NOTIFY_KEYS),
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, ProblemKind};

    fn notify(text: &str) -> NotifySettings {
        Policy::parse(text).expect("valid policy").notify().clone()
    }

    fn problems(text: &str) -> Vec<(usize, ProblemKind, String)> {
        let err = Policy::parse(text).expect_err("invalid policy");
        err.problems.into_iter().map(|p| (p.line, p.kind, p.message)).collect()
    }

    const fn hm(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    #[test]
    fn no_section_means_desktop_on_for_every_class_at_any_hour() {
        let n = notify("");
        assert_eq!(n, NotifySettings::default());
        assert!(n.desktop);
        assert_eq!(n.classes, Class::ALL.to_vec());
        for class in Class::ALL {
            assert!(n.desktop_notifies(class.as_str(), hm(3, 0)));
        }
    }

    #[test]
    fn a_full_section_is_read() {
        let n =
            notify("[notify]\ndesktop = true\nclasses = [\"submit\", \"EXECUTE\"]\nquiet_hours = \"22:00-07:00\"\n");
        assert!(n.desktop);
        assert_eq!(n.classes, vec![Class::Execute, Class::Submit]);
        assert_eq!(n.quiet_hours, Some(QuietHours { start: hm(22, 0), end: hm(7, 0) }));
        assert!(n.desktop_notifies("EXECUTE", hm(12, 0)));
        assert!(!n.desktop_notifies("SEND", hm(12, 0)), "SEND is not listed");
        assert!(!n.desktop_notifies("EXECUTE", hm(23, 0)), "quiet hours");
    }

    #[test]
    fn desktop_false_silences_every_class() {
        let n = notify("[notify]\ndesktop = false\n");
        assert!(!n.desktop);
        assert!(Class::ALL.iter().all(|c| !n.desktop_notifies(c.as_str(), hm(12, 0))));
    }

    #[test]
    fn an_empty_class_list_notifies_no_known_class() {
        let n = notify("[notify]\nclasses = []\n");
        assert!(n.classes.is_empty());
        assert!(!n.desktop_notifies("EXECUTE", hm(12, 0)));
    }

    #[test]
    fn an_unknown_class_name_from_the_daemon_still_notifies() {
        let n = notify("[notify]\nclasses = [\"EXECUTE\"]\n");
        assert!(n.desktop_notifies("SOMETHING_NEW", hm(12, 0)));
    }

    #[test]
    fn quiet_hours_across_midnight_include_the_start_and_exclude_the_end() {
        let q = QuietHours::parse("22:00-07:00").unwrap();
        assert!(!q.contains(hm(21, 59)));
        assert!(q.contains(hm(22, 0)));
        assert!(q.contains(hm(23, 59)));
        assert!(q.contains(hm(0, 0)));
        assert!(q.contains(hm(6, 59)));
        assert!(!q.contains(hm(7, 0)));
        assert!(!q.contains(hm(12, 0)));
    }

    #[test]
    fn quiet_hours_within_one_day() {
        let q = QuietHours::parse("12:30-13:45").unwrap();
        assert!(!q.contains(hm(12, 29)));
        assert!(q.contains(hm(12, 30)));
        assert!(q.contains(hm(13, 44)));
        assert!(!q.contains(hm(13, 45)));
        assert!(!q.contains(hm(0, 0)));
    }

    #[test]
    fn quiet_hours_accept_one_digit_hours_and_spaces() {
        assert_eq!(QuietHours::parse("9:05 - 17:00"), Ok(QuietHours { start: hm(9, 5), end: hm(17, 0) }));
        assert_eq!(QuietHours::parse("00:00-23:59"), Ok(QuietHours { start: 0, end: hm(23, 59) }));
    }

    #[test]
    fn malformed_quiet_hours_are_refused() {
        for bad in
            ["22:00", "22-07", "24:00-07:00", "22:60-07:00", "22:0-07:00", "7:00-7:00", "ten-eleven", "", "-1:00-02:00"]
        {
            assert!(QuietHours::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_naming_its_line() {
        let p = problems("[notify]\ndesktop = true\nquiet_hour = \"22:00-07:00\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, 3);
        assert_eq!(p[0].1, ProblemKind::UnknownKey);
        assert!(p[0].2.contains("quiet_hour"), "{p:?}");
    }

    #[test]
    fn wrong_values_are_errors_with_their_lines() {
        let text = "internal_domains = []\n[notify]\ndesktop = \"yes\"\nclasses = [\"EXECUTE\", \"EXECUT\"]\nquiet_hours = \"25:00-07:00\"\n";
        let p = problems(text);
        let lines: Vec<usize> = p.iter().map(|x| x.0).collect();
        assert_eq!(lines, vec![3, 4, 5], "{p:?}");
        assert_eq!(p[0].1, ProblemKind::WrongType);
        assert_eq!(p[1].1, ProblemKind::UnknownName);
        assert!(p[1].2.contains("EXECUT"), "{p:?}");
        assert_eq!(p[2].1, ProblemKind::WrongType);
    }

    #[test]
    fn a_class_misspelt_gets_a_suggestion() {
        let err = Policy::parse("[notify]\nclasses = [\"EXECUT\"]\n").unwrap_err();
        assert!(err.problems[0].hint.contains("did you mean \"EXECUTE\""), "{err}");
    }

    #[test]
    fn classes_as_a_single_string_or_notify_as_a_value_are_refused() {
        let p = problems("[notify]\nclasses = \"EXECUTE\"\n");
        assert_eq!((p[0].0, p[0].1), (2, ProblemKind::WrongType));
        let p = problems("notify = true\n");
        assert_eq!((p[0].0, p[0].1), (1, ProblemKind::WrongType));
    }

    #[test]
    fn an_empty_quiet_window_is_refused_with_a_way_out() {
        let err = Policy::parse("[notify]\nquiet_hours = \"08:00-08:00\"\n").unwrap_err();
        assert_eq!(err.problems[0].line, 2);
        assert!(err.problems[0].hint.contains("desktop = false"), "{err}");
    }
}
