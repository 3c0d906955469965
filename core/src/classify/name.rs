//! What the words of a tool's name (or of its description's first sentence)
//! say it does.
//!
//! The main verb is the first known verb that is not also a common noun
//! (`get_commit`: `get`; `git_commit`: `commit`, since nothing else is a
//! verb). Verbs joined by `or`/`and` count too (`create_or_update_file`),
//! the most consequential wins. HTTP method words give way to a later verb
//! (`API-post-search` searches). Then the other words may raise the class:
//! a money noun after a creating or sending verb is TRANSFER_VALUE
//! (`create_refund`, but `list_refunds` stays READ); a publishing noun as
//! the object of a creating verb is SUBMIT (`create_pull_request`, not
//! `add_pull_request_review_comment`); a message noun after a creating or
//! posting verb is SEND (`slack_post_message`, not `create_draft`);
//! `apply`/`install` in a deployment context is SUBMIT (`kubectl_apply`);
//! a "send" to a terminal or process is EXECUTE (`send_control_character`).

use super::lexicon::{self as lx, Verb};
use crate::class::Class;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WordVerdict {
    pub class: Class,
    /// The main verb's flags.
    pub flags: u16,
    pub reasons: Vec<String>,
    /// The verb that deletes or overwrites, if any.
    pub destructive: Option<String>,
    /// The class came from a GENERIC verb (run, execute, query) unchanged.
    pub generic: bool,
    /// The main verb, lower-case (`post` for `API-post-page`).
    pub verb: String,
    /// The main verb is a noun-like word found only by falling back
    /// (`process` in `interact_with_process`): the description decides
    /// when it has a verb.
    pub weak: bool,
    /// The verdict came from the tool's name, not its description.
    pub named: bool,
    /// Other words raised the class above the verb's own.
    pub raised: bool,
}

/// What the name and the description's first sentence together say about
/// the tool's domain: these widen what its verbs mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// A database tool (`sql`, `neon`, `postgres` …).
    pub database: bool,
    /// A hosted forge (`github`, `gitlab`, a repository, a pull request).
    pub forge: bool,
    /// A Kubernetes tool, by its name or its server's.
    pub kube: bool,
    /// A hosting platform's tool (`heroku`, `vercel`), by its name, its
    /// server's or its description.
    pub hosting: bool,
    /// Money words in the description (`billing`, `subscription`).
    pub money: bool,
    /// The description's verb creates a comment (`Create a comment or
    /// story on a task`).
    pub comment: bool,
    /// Infrastructure named in the description (`… for a container
    /// registry`).
    pub infra: bool,
}

impl Scope {
    /// `server` is the name the user gave the server (`github`, `k8s`).
    pub fn of<S: AsRef<str>, T: AsRef<str>>(server: &[S], name: &[S], desc: &[T]) -> Scope {
        let n = || name.iter().chain(server).map(AsRef::as_ref);
        let d = || desc.iter().map(AsRef::as_ref);
        // "GitHub" splits into "git", "hub".
        let joined = |a: &str, b: &str| d().zip(d().skip(1)).any(|(x, y)| x == a && y == b);
        let pull_request = || n().zip(n().skip(1)).any(|(x, y)| x == "pull" && y == "request");
        let comment = d().position(|w| lx::stem_verb(w).is_some_and(|v| v.has(lx::CREATES))).is_some_and(|i| {
            d().skip(i + 1).take_while(|w| !lx::is_prep(w) && !lx::is_conj(w)).any(lx::is_comment_noun)
        });
        Scope {
            database: n().chain(d()).any(lx::is_sql_context),
            forge: n().chain(d()).any(lx::is_forge_context)
                || joined("git", "hub")
                || joined("git", "lab")
                || pull_request(),
            kube: n().any(|w| matches!(w, "kubectl" | "kubernetes" | "k8s" | "helm" | "kube")),
            hosting: n().chain(d()).any(lx::is_hosting_context),
            money: d().any(lx::is_money_context),
            comment,
            infra: d().any(|w| matches!(w, "registry" | "cluster" | "droplet" | "production")),
        }
    }
}

/// Judges a tool by its name, else by its description: the verdict and,
/// for a name without any verb, a signal noun's class (`shell`).
pub(crate) fn judge<S: AsRef<str>, T: AsRef<str>>(
    name: &[S],
    desc: &[T],
    scope: Scope,
) -> (Option<WordVerdict>, Option<(Class, String)>) {
    let named = analyse(name, "name", false, scope);
    match named {
        Some(v) if v.weak && !v.raised => match analyse(desc, "description", true, scope) {
            Some(mut d) => {
                d.reasons.insert(0, format!("name word '{}' is rather a noun here", v.verb));
                (Some(d), None)
            }
            None => (Some(v), None),
        },
        Some(v) => (Some(v), None),
        None => match signal(name) {
            Some(s) => (None, Some(s)),
            None => (analyse(desc, "description", true, scope), None),
        },
    }
}

/// Judges a list of lower-case words. `from` names the source in reasons
/// ("name", "description"). `None` when no known verb is found.
pub(crate) fn analyse<S: AsRef<str>>(words: &[S], from: &str, description: bool, scope: Scope) -> Option<WordVerdict> {
    let w: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    let lookup = |s: &str| {
        if description { lx::stem_verb(s) } else { lx::verb(s) }
    };
    let verbs: Vec<Option<Verb>> = w.iter().map(|s| lookup(s)).collect();

    let mut weak = false;
    let mut main = if description {
        verbs.iter().position(Option::is_some)?
    } else {
        match (0..w.len()).find(|&i| verbs[i].is_some() && !lx::noun_like_verb(w[i])) {
            Some(i) => i,
            None => {
                let i = verbs.iter().position(Option::is_some)?;
                weak = i > 0;
                i
            }
        }
    };
    let mut reasons = Vec::new();
    if verbs[main].is_some_and(|v| v.has(lx::HTTP))
        && let Some(j) = (main + 1..w.len()).find(|&j| verbs[j].is_some() && !lx::noun_like_verb(w[j]))
    {
        reasons.push(format!("{from} word '{}' is an HTTP method: '{}' decides", w[main], w[j]));
        main = j;
    }
    let mut mains = vec![main];
    for k in main + 1..w.len() {
        if k >= 2 && lx::is_conj(w[k - 1]) && verbs[k].is_some() && mains.contains(&(k - 2)) {
            mains.push(k);
        }
    }
    let verb = verbs[main]?;
    let mut class = mains.iter().filter_map(|&i| verbs[i]).map(|v| v.class).max().unwrap_or(verb.class);
    if mains.len() == 1 {
        reasons.push(format!("{from} word '{}': {class}", w[main]));
    } else {
        let list: Vec<String> = mains.iter().map(|&i| format!("'{}'", w[i])).collect();
        reasons.push(format!("{from} words {}: {class}", list.join(", ")));
    }

    let last_main = *mains.last().unwrap_or(&main);
    let others: Vec<&str> = (0..w.len()).filter(|i| !mains.contains(i)).map(|i| w[i]).collect();
    let mut object: Vec<&str> = w[last_main + 1..]
        .iter()
        .copied()
        .filter(|s| !lx::is_article(s))
        .take_while(|s| !lx::is_prep(s) && !lx::is_conj(s))
        .collect();
    if object.is_empty() && !description {
        object = w[..main].iter().copied().filter(|s| !lx::is_article(s)).collect();
    }
    let draft = verb.has(lx::DRAFTS) || others.iter().any(|s| lx::is_draft_word(s));
    let find = |pred: fn(&str) -> bool, among: &[&str]| among.iter().find(|s| pred(s)).map(|s| (*s).to_owned());
    let mut generic = verb.has(lx::GENERIC);
    let mut raise = |to: Class, why: String, reasons: &mut Vec<String>, class: &mut Class, replace: bool| {
        if (replace && *class != to) || to > *class {
            *class = to;
            reasons.push(why);
            generic = false;
        }
    };
    let vw = w[main];

    if verb.has(lx::POSTS) {
        if let Some(n) = find(lx::is_message_noun, &others).or_else(|| find(lx::is_channel_noun, &others)) {
            raise(Class::Send, format!("{from}: '{vw}' + '{n}': SEND"), &mut reasons, &mut class, true);
        }
    } else if verb.has(lx::CREATES)
        && !draft
        && let Some(n) = object.last().filter(|n| lx::is_message_noun(n)).map(|n| (*n).to_owned())
    {
        raise(Class::Send, format!("{from}: '{vw}' + '{n}': SEND"), &mut reasons, &mut class, false);
    }
    if class == Class::Send
        && let Some(n) = find(lx::is_terminal_noun, &others)
    {
        raise(Class::Execute, format!("{from}: '{vw}' to a {n} runs it: EXECUTE"), &mut reasons, &mut class, false);
    }
    if vw == "forward" && others.iter().any(|s| *s == "port" || *s == "ports") {
        raise(Class::Write, format!("{from}: port forwarding is not a message: WRITE"), &mut reasons, &mut class, true);
    }
    if vw == "transfer"
        && let Some(n) = find(lx::is_transfer_exception, &others)
    {
        raise(Class::Write, format!("{from}: transfer of a {n}, not money: WRITE"), &mut reasons, &mut class, true);
    }
    if verb.has(lx::VALUE)
        && let Some(n) = find(lx::is_value_noun, &others)
    {
        raise(Class::TransferValue, format!("{from}: '{vw}' + '{n}': TRANSFER_VALUE"), &mut reasons, &mut class, false);
    }
    if class == Class::Submit
        && let Some(n) = find(lx::is_billing_noun, &others)
    {
        raise(
            Class::TransferValue,
            format!("{from}: '{vw}' + '{n}' bills: TRANSFER_VALUE"),
            &mut reasons,
            &mut class,
            false,
        );
    }
    if verb.has(lx::CREATES)
        && !draft
        && let Some(n) = lx::submit_head(&object)
    {
        raise(Class::Submit, format!("{from}: '{vw}' + '{n}': SUBMIT"), &mut reasons, &mut class, false);
    }
    if verb.has(lx::DEPLOYS)
        && let Some(n) = find(lx::is_deploy_context, &w)
    {
        raise(
            Class::Submit,
            format!("{from}: '{vw}' in a '{n}' context deploys: SUBMIT"),
            &mut reasons,
            &mut class,
            false,
        );
    }
    let domain = Domain { from, vw, verb, object: &object, others: &others, all: &w, scope, draft, description };
    if let Some((to, why, replace)) = domain.rule(class) {
        raise(to, why, &mut reasons, &mut class, replace);
    }
    let destructive =
        mains.iter().find(|&&i| verbs[i].is_some_and(|v| v.has(lx::DESTRUCTIVE))).map(|&i| w[i].to_owned());
    Some(WordVerdict {
        class,
        flags: verb.flags,
        reasons,
        destructive,
        generic,
        verb: vw.to_owned(),
        weak,
        named: !description,
        raised: class > verb.class,
    })
}

/// The words of one name or sentence, for the domain rules.
struct Domain<'a> {
    from: &'a str,
    vw: &'a str,
    verb: Verb,
    object: &'a [&'a str],
    others: &'a [&'a str],
    all: &'a [&'a str],
    scope: Scope,
    draft: bool,
    description: bool,
}

impl Domain<'_> {
    /// What the domain lexicons make of the verb and its object: the class,
    /// why, and whether it replaces the class (a read that looks like a
    /// write) rather than only raising it.
    fn rule(&self, class: Class) -> Option<(Class, String, bool)> {
        let (from, vw) = (self.from, self.vw);
        let head = self.object.last().copied();
        let has = |pred: fn(&str) -> bool, among: &[&str]| among.iter().find(|s| pred(s)).map(|s| (*s).to_owned());
        if self.verb.class == Class::Read {
            return None;
        }
        // Reads that look like writes.
        if lx::base_form(vw) == "start"
            && let Some(h) = head.filter(|h| lx::is_search_noun(h))
        {
            return Some((Class::Read, format!("{from}: '{vw}' + '{h}' only reads: READ"), true));
        }
        if lx::base_form(vw) == "generate"
            && let Some(n) = has(lx::is_artefact_noun, self.object)
        {
            return Some((
                Class::Read,
                format!("{from}: '{vw}' + '{n}' returns something, changes nothing: READ"),
                true,
            ));
        }
        // Money.
        if class < Class::TransferValue {
            if !head.is_some_and(lx::is_message_noun)
                && let Some(n) =
                    has(lx::is_billing_object, self.object).or_else(|| has(lx::is_billing_object, self.others))
            {
                return Some((
                    Class::TransferValue,
                    format!("{from}: '{vw}' changes a billing object ('{n}'): TRANSFER_VALUE"),
                    false,
                ));
            }
            if self.scope.money && self.object.iter().any(|s| matches!(*s, "plan" | "plans")) {
                return Some((
                    Class::TransferValue,
                    format!("{from}: '{vw}' changes a billing plan: TRANSFER_VALUE"),
                    false,
                ));
            }
            if lx::is_trading_verb(vw)
                && let Some(n) = has(lx::is_position_noun, self.object)
            {
                return Some((Class::TransferValue, format!("{from}: '{vw}' + '{n}' trades: TRANSFER_VALUE"), false));
            }
            if self.verb.has(lx::CREATES)
                && let Some(n) = lx::paid_resource(self.object, self.scope.database)
            {
                return Some((
                    Class::TransferValue,
                    format!("{from}: '{vw}' + '{n}' is billed: TRANSFER_VALUE"),
                    false,
                ));
            }
        }
        if class > Class::Write {
            return self.rollout(class);
        }
        if self.verb.has(lx::CREATES)
            && matches!(&*lx::base_form(vw), "create" | "start" | "new" | "launch")
            && let Some(n) = has(lx::is_container_noun, self.object)
        {
            return Some((Class::Execute, format!("{from}: '{vw}' a '{n}' runs its code: EXECUTE"), false));
        }
        // Commits and words on a hosted forge.
        if self.scope.forge {
            if self.object.iter().any(|s| matches!(*s, "file" | "files")) {
                return Some((
                    Class::Submit,
                    format!("{from}: '{vw}' a file in a hosted repository commits: SUBMIT"),
                    false,
                ));
            }
            if lx::is_edit_verb(vw)
                && self.others.contains(&"branch")
                && self.others.iter().any(|s| matches!(*s, "pull" | "pr" | "merge"))
            {
                return Some((Class::Submit, format!("{from}: '{vw}' a pull request's branch commits: SUBMIT"), false));
            }
            if self.verb.has(lx::CREATES) && !self.draft && head.is_some_and(|h| matches!(h, "issue" | "issues")) {
                return Some((
                    Class::Send,
                    format!("{from}: an issue on a hosted forge is read by others: SEND"),
                    false,
                ));
            }
        }
        // Words to other people.
        let writes_words = self.verb.has(lx::CREATES) || lx::is_edit_verb(vw);
        if writes_words && !self.draft {
            if let Some(h) = head.filter(|h| lx::is_comment_noun(h)) {
                return Some((Class::Send, format!("{from}: '{vw}' + '{h}': words to other people: SEND"), false));
            }
            if self.verb.has(lx::CREATES) && self.scope.comment && !self.description {
                return Some((Class::Send, format!("{from}: the description's object is a comment: SEND"), false));
            }
        }
        // Systems others depend on.
        let among = if self.description { self.object } else { self.all };
        if let Some(n) = has(lx::is_infra_noun, among)
            .or_else(|| if self.scope.database { has(lx::is_database_infra_noun, among) } else { None })
        {
            return Some((
                Class::Submit,
                format!("{from}: '{vw}' changes shared infrastructure ('{n}'): SUBMIT"),
                false,
            ));
        }
        if self.scope.infra {
            return Some((
                Class::Submit,
                format!("{from}: '{vw}' on infrastructure the description names: SUBMIT"),
                false,
            ));
        }
        if lx::is_operating_verb(&lx::base_form(vw))
            && let Some(n) = has(lx::is_service_noun, among)
        {
            return Some((Class::Submit, format!("{from}: '{vw}' operates a running '{n}': SUBMIT"), false));
        }
        if self.scope.hosting
            && let Some(n) = among.iter().find(|w| matches!(**w, "worker" | "workers"))
        {
            return Some((Class::Submit, format!("{from}: '{vw}' a hosted '{n}' deploys its code: SUBMIT"), false));
        }
        if self.scope.hosting
            && self.verb.has(lx::DESTRUCTIVE)
            && let Some(n) = has(lx::is_service_noun, among)
                .or_else(|| has(|w| matches!(w, "project" | "projects" | "domain" | "domains"), among))
        {
            return Some((
                Class::Submit,
                format!("{from}: '{vw}' a hosted '{n}' takes it down for others: SUBMIT"),
                false,
            ));
        }
        if self.scope.kube && self.verb.has(lx::DESTRUCTIVE) {
            return Some((Class::Submit, format!("{from}: '{vw}' deletes from a cluster: SUBMIT"), false));
        }
        self.rollout(class)
    }

    fn rollout(&self, class: Class) -> Option<(Class, String, bool)> {
        if class >= Class::Submit {
            return None;
        }
        let n = self.others.iter().find(|s| lx::is_rollout_word(s))?;
        Some((Class::Submit, format!("{}: '{}' rolls a shared system: SUBMIT", self.from, n), false))
    }
}

/// A class for a name without any verb, from signal nouns (`shell`).
pub(crate) fn signal<S: AsRef<str>>(words: &[S]) -> Option<(Class, String)> {
    words
        .iter()
        .find(|w| lx::exec_signal(w.as_ref()))
        .map(|w| (Class::Execute, format!("name word '{}': EXECUTE", w.as_ref())))
}

/// Lower-case words of a description's first sentence (at most 40).
pub(crate) fn description_words(desc: &str) -> Vec<String> {
    let mut end = desc.len().min(400);
    while !desc.is_char_boundary(end) {
        end -= 1;
    }
    let head = &desc[..end];
    let sentence = head.split(['\n', '!', '?']).find(|s| !s.trim().is_empty()).unwrap_or("");
    // A period followed by a space ends the sentence ("e.g." rarely matters).
    let sentence = sentence.split(". ").next().unwrap_or(sentence);
    super::words::word_slices(sentence).take(40).map(str::to_ascii_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(name: &str) -> Option<Class> {
        analyse(&super::super::words(name), "name", false, Scope::default()).map(|v| v.class)
    }

    #[test]
    fn main_verb_rules() {
        assert_eq!(class_of("get_commit"), Some(Class::Read));
        assert_eq!(class_of("git_commit"), Some(Class::Write));
        assert_eq!(class_of("email_search"), Some(Class::Read));
        assert_eq!(class_of("create_or_update_file"), Some(Class::Write));
        assert_eq!(class_of("get_or_create_label"), Some(Class::Write));
        assert_eq!(class_of("API-post-search"), Some(Class::Read));
        assert_eq!(class_of("API-post-database-query"), Some(Class::Read));
        assert_eq!(class_of("API-post-page"), Some(Class::Write));
        assert_eq!(class_of("zzz_qqq"), None);
    }

    #[test]
    fn nouns_raise_the_class() {
        assert_eq!(class_of("create_payment_intent"), Some(Class::TransferValue));
        assert_eq!(class_of("create_refund"), Some(Class::TransferValue));
        assert_eq!(class_of("list_payment_intents"), Some(Class::Read));
        assert_eq!(class_of("cancel_payment_intent"), Some(Class::Write));
        assert_eq!(class_of("finalize_invoice"), Some(Class::TransferValue));
        assert_eq!(class_of("create_invoice"), Some(Class::TransferValue));
        assert_eq!(class_of("create_pull_request"), Some(Class::Submit));
        assert_eq!(class_of("create_merge_request"), Some(Class::Submit));
        assert_eq!(class_of("add_pull_request_review_comment_to_pending_review"), Some(Class::Write));
        assert_eq!(class_of("create_pending_pull_request_review"), Some(Class::Write));
        assert_eq!(class_of("slack_post_message"), Some(Class::Send));
        assert_eq!(class_of("create_draft"), Some(Class::Write));
        assert_eq!(class_of("send_control_character"), Some(Class::Execute));
        assert_eq!(class_of("port_forward"), Some(Class::Write));
        assert_eq!(class_of("transfer_issue"), Some(Class::Write));
        assert_eq!(class_of("kubectl_apply"), Some(Class::Submit));
        assert_eq!(class_of("apply_patch"), Some(Class::Write));
        assert_eq!(class_of("git_checkout"), Some(Class::Write));
        assert_eq!(class_of("create_checkout_session"), Some(Class::TransferValue));
    }

    #[test]
    fn destructive_verbs() {
        let v = analyse(&super::super::words("delete_file"), "name", false, Scope::default()).unwrap();
        assert_eq!(v.destructive.as_deref(), Some("delete"));
        let v = analyse(&super::super::words("create_file"), "name", false, Scope::default()).unwrap();
        assert_eq!(v.destructive, None);
    }

    #[test]
    fn description_first_sentence() {
        let w = description_words("Lists Git branches. Deletes nothing.");
        assert_eq!(analyse(&w, "description", true, Scope::default()).map(|v| v.class), Some(Class::Read));
        let w = description_words("A detailed tool for thoughts.");
        assert_eq!(analyse(&w, "description", true, Scope::default()), None);
    }
}
