//! Redaction: secrets never reach the audit database, a console, a desktop
//! notification, Telegram or an LLM. The daemon runs [`redact_value`] (or
//! [`redact_in_place`]) on a call's arguments once, before the audit write
//! and before anything is shown or sent, and [`redact_text`] on any other
//! free text it stores or sends (a shim's command line, an error message).
//! The same function feeds every channel, so what the console shows is
//! what the database holds.
//!
//! # What is redacted
//!
//! **By key name** ([`is_secret_key`]): the whole value under a key whose
//! *words* name a secret. Keys are split into words on `_`, `-`, `.`,
//! spaces and camelCase humps (`apiKey`, `X-Api-Key`, `GITHUB_TOKEN`,
//! `AWSSecretAccessKey` all count), compared case-insensitively:
//! - `password`, `passwd`, `pwd`, `passphrase`, `passcode`, `secret(s)`,
//!   `credential(s)`, `creds`, `cookie(s)`, `authorization`, `bearer`,
//!   `dsn`, `otp`/`totp`, `cvv`/`cvc` anywhere; `pass`, `auth`, `oauth`,
//!   `jwt`, `pin` as the last word; one-word compounds ending in
//!   `password`, `secret` or `token` (`PGPASSWORD`, `clientSecret`);
//! - `token`, except pagination and tokenizer tokens (`page_token`,
//!   `NextToken`, `eos_token`);
//! - `key` after a word that makes it a credential (`api`, `access`,
//!   `secret`, `private`, `signing`, `account`, `ssh`, …), never `key`
//!   alone (`key: "Enter"`, an S3 object key), `public_key` or
//!   `primary_key`;
//! - pairs: `auth_header`, `session_id`, `connection_string`,
//!   `card_number`, `pin_code`;
//! - the `value`/`text` beside a `selector`, `element`, `name`, `label`,
//!   `key` or `header` that names a secret: a browser tool typing into
//!   `#password`, a container env entry `{name: "DB_PASSWORD", value: …}`,
//!   `{header: "Authorization", value: …}`.
//!
//! A key whose *last* word says the value is *about* the secret stays
//! readable: `token_count`, `max_tokens`, `password_length`, `secret_name`,
//! `private_key_path`, `auth_type`, `token_url`, `password_changed_at`; so
//! do yes/no keys (`no_password`, `has_token`). `null`, booleans and empty
//! strings under a secret key are kept: they leak nothing and tell a
//! reviewer that no secret was passed. Numbers, arrays and objects under a
//! secret key are masked whole.
//!
//! **By value pattern**, in every string and every object key, wherever
//! the secret sits inside it (a bare value, a shell command line, YAML or
//! JSON text held in a string, a doubly escaped JSON string):
//! - provider keys with a recognisable shape: OpenAI/Anthropic/OpenRouter
//!   `sk-…`, GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, AWS
//!   `AKIA…`/`ASIA…` and the 40-character secret key after it on the same
//!   line, Slack `xox?-`/`xapp-` and webhook URLs, Stripe
//!   `sk_live_`/`rk_live_`/`whsec_`, Google `AIza…`/`GOCSPX-`/`ya29.`,
//!   GitLab `glpat-` and siblings, npm `npm_`, PyPI `pypi-`, Twilio `SK…`
//!   and an auth token after an `AC…` SID, SendGrid `SG.…`, Heroku `HRKU-`
//!   (or a UUID shortly after the word "heroku"), DigitalOcean `dop_v1_`,
//!   Shopify `shpat_`, Hugging Face `hf_`, Telegram bot tokens (also
//!   inside `api.telegram.org/bot…`), Discord bot tokens and webhooks,
//!   Mailgun, Mailchimp, Groq, xAI, Replicate, Perplexity, Linear, Notion,
//!   Vault, Doppler, Postman, Databricks, Grafana, Sentry, Supabase,
//!   Square, Meta, Atlassian, `age` keys. A match must look random (at
//!   least ten distinct characters), so placeholders like `sk-xxxx…` and
//!   zero runs inside base64 data are left alone;
//! - JWTs; PEM private key blocks (RSA, EC, DSA, OPENSSH, PKCS#8,
//!   encrypted, PGP), to the end of the text when the END line is missing;
//!   `Bearer …` (when the token is not an English word) and `Basic …`
//!   (when it decodes to `user:password`); `Cookie:`/`Set-Cookie:` lines;
//! - passwords inside URLs (`postgres://u:p@h/db`, `https://u:p@h`,
//!   `redis://:p@h`, even with a raw `/` or `@` in the password): only the
//!   password goes, scheme, user and host stay;
//! - `key=value`, `key: value`, `"key": "value"`, `--flag value`,
//!   `--flag=value` in free text whose key or flag passes the key-name test
//!   (`password=…`, `FOO_SECRET=…`, `AccountKey=…;` in Azure connection
//!   strings, `?token=…`/`&api_key=…`/`#access_token=…` in URLs, plus
//!   `key`, `sig`, `signature` in URL query strings);
//! - command lines: `curl -u user:pass`, `mysql -pSECRET`, `sshpass -p`,
//!   `redis-cli -a`, `zip -P`, `sqlcmd -P`, `docker|podman|helm|az|oc
//!   login -p`, `smbclient -U u%p`, `openssl … pass:x` and `-k x`,
//!   `ldapsearch -w`, `ssh-keygen -N`, `htpasswd -b`, `echo x | sudo -S`,
//!   `sqlplus u/p@db`; `.netrc` entries (`machine h login u password p`).
//!
//! Only the secret part becomes [`MASK`]: the key, the flag, `Bearer`, the
//! URL's host stay, so a reviewer still sees *what* was sent *where*.
//!
//! # What is kept, and why
//!
//! The classifier, the policy and the person approving a call must read the
//! arguments, so redaction is targeted, not entropy-based:
//! - e-mail addresses (SEND internal vs external depends on recipients),
//!   URLs and hosts without credentials, file paths, numbers, dates;
//! - git SHAs, UUIDs, SHA-256 digests and other hex strings: a bare hex
//!   string is an identifier far more often than a secret, so it is only
//!   redacted with context (a secret key name, an `AKIA…`/`AC…`/"heroku"
//!   neighbour);
//! - long base64 strings (`data:image/png;base64,…`, file contents):
//!   blanking every long base64 run would destroy file writes and images,
//!   while the credentials that matter carry a prefix, a key name, a flag or
//!   a scheme. A base64 secret under a secret key or flag is still masked;
//! - public material: SSH public keys, PEM certificates, Stripe publishable
//!   keys (`pk_live_`);
//! - sentences that merely mention passwords ("reset your password"),
//!   since they have no `key=value` shape, flag or known format.
//!
//! Known trade-offs, all towards masking too much: prose of the form
//! `Password: must be 12 characters` loses the word after the colon, and
//! source code such as `password = getPassword()` loses the expression.
//! Not recognised: secrets with no key, flag, scheme or known prefix (a
//! bare 32-hex token in prose), percent-encoded `token%3D…`, and a
//! prefixed key glued to a preceding word with no separator (`abcghp_…`:
//! prefixes must start at a word boundary, which is what keeps base64 data
//! readable).
//!
//! # Consistency
//!
//! [`has_secret`] is true exactly when [`redact_value`] changes its input,
//! and [`redact_in_place`] gives the same result as [`redact_value`].
//! Redaction is idempotent: a redacted value is left as it is. A mask can
//! bring two tokens together, so a text whose masks touch a token character
//! is redacted again (at most a few passes); windows between paired values
//! (AWS key id and secret, Twilio SID and token) and the words between a
//! command and its flag never cross a `[`, so a mask never brings new text
//! into reach. The corpus test checks all of this on random mixtures of
//! secret and harmless fragments (`LATCH_REDACT_ROUNDS` and
//! `LATCH_REDACT_SEED` run more of them).
//!
//! # Cost and limits
//!
//! Clean text costs one scan by one [`RegexSet`] and no allocation
//! ([`Cow::Borrowed`]); a key costs one short literal scan unless it holds
//! a hint such as `pass`, `key` or `token`. Only text the set flags is
//! scanned again, by the rules that matched; their secret spans are merged
//! and replaced in one pass. `key=value` keys are looked for one after the
//! other, so a key that fails the name test never hides the next one, and
//! the work stays linear. Arrays and objects nested deeper than
//! [`MAX_DEPTH`] are replaced by [`TOO_DEEP`] instead of walked, so no input
//! can exhaust the stack; every regex runs in linear time, and nothing here
//! panics on any input. Release build on the shared 2-core machine: a
//! typical clean 300-byte argument object about 3 µs ([`has_secret`]
//! about 2 µs), a dirty one (`curl -H 'Authorization: Bearer <JWT>'`)
//! about 10-20 µs; 128 KiB of clean prose about 0.7 ms (see the timing
//! tests in `tests/redact_corpus.rs`).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet, RegexSetBuilder};
use serde_json::{Map, Value};

/// What a redacted secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// What replaces an array or object nested deeper than [`MAX_DEPTH`].
pub const TOO_DEEP: &str = "[REDACTED: nested too deep]";

/// Arrays and objects below this many levels of nesting are not inspected:
/// they are replaced by [`TOO_DEEP`].
pub const MAX_DEPTH: usize = 64;

// ---------------------------------------------------------------------------
// Key names
// ---------------------------------------------------------------------------

/// At most this many words of a key are examined (the last ones).
const MAX_KEY_WORDS: usize = 12;

/// Splits `key` into its words (snake, kebab, dotted, camelCase with
/// acronyms: `XMLHttpRequest` → `XML`, `Http`, `Request`), keeping the last
/// [`MAX_KEY_WORDS`]. No allocation.
fn key_words(key: &str) -> ([&str; MAX_KEY_WORDS], usize) {
    fn push<'a>(words: &mut [&'a str; MAX_KEY_WORDS], n: &mut usize, w: &'a str) {
        if *n == MAX_KEY_WORDS {
            words.rotate_left(1);
            *n -= 1;
        }
        words[*n] = w;
        *n += 1;
    }
    let mut words = [""; MAX_KEY_WORDS];
    let mut n = 0;
    let b = key.as_bytes();
    let mut start: Option<usize> = None;
    for (i, &c) in b.iter().enumerate() {
        let alnum = c.is_ascii_alphanumeric() || c >= 0x80;
        if !alnum {
            if let Some(s) = start.take() {
                push(&mut words, &mut n, &key[s..i]);
            }
            continue;
        }
        match start {
            None => start = Some(i),
            Some(s) if c.is_ascii_uppercase() && i > s => {
                let prev = b[i - 1];
                let next_lower = b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
                // fooBar → foo|Bar ; APIKey → API|Key ; v2Token → v2|Token
                if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                    push(&mut words, &mut n, &key[s..i]);
                    start = Some(i);
                }
            }
            Some(_) => {}
        }
    }
    if let Some(s) = start {
        push(&mut words, &mut n, &key[s..]);
    }
    (words, n)
}

fn is_any(word: &str, list: &[&str]) -> bool {
    list.iter().any(|w| word.eq_ignore_ascii_case(w))
}

fn ends_with_ci(word: &str, suffix: &str) -> bool {
    word.len() >= suffix.len()
        && word.is_char_boundary(word.len() - suffix.len())
        && word[word.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// Words that name a secret wherever they appear in a key.
const STRONG: &[&str] = &[
    "password",
    "passwd",
    "passwords",
    "pwd",
    "passphrase",
    "passcode",
    "secret",
    "secrets",
    "credential",
    "credentials",
    "creds",
    "cookie",
    "cookies",
    "authorization",
    "bearer",
    "dsn",
    "otp",
    "totp",
    "hotp",
    "cvv",
    "cvv2",
    "cvc",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "signingkey",
    "masterkey",
    "encryptionkey",
    "accountkey",
    "sharedkey",
    "subscriptionkey",
    "sshkey",
    "authkey",
    "appkey",
    "clientkey",
    "sessionkey",
    "storagekey",
    "hmackey",
    "sessionid",
    "sessid",
    "connstr",
    "connectionstring",
    "storepass",
    "keypass",
    "storepassword",
    "keypassword",
    "pincode",
    "cardnumber",
];

/// Words that name a secret when they end the key (`db_pass`, `basic_auth`).
const STRONG_LAST: &[&str] = &["pass", "auth", "oauth", "jwt", "pin", "mfa", "2fa", "sig"];

/// Words before `key` that make it a credential.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "secret",
    "private",
    "signing",
    "sign",
    "encryption",
    "encrypt",
    "decryption",
    "master",
    "client",
    "account",
    "auth",
    "ssh",
    "gpg",
    "pgp",
    "deploy",
    "service",
    "app",
    "application",
    "session",
    "storage",
    "shared",
    "subscription",
    "webhook",
    "consumer",
    "hmac",
    "root",
    "admin",
    "license",
    "security",
    "crypto",
    "aes",
    "jwt",
    "cipher",
    "sas",
    "tls",
    "ssl",
    "dev",
    "developer",
    "user",
    "write",
    "read",
];

/// Words before `token` that make it harmless: pagination cursors and
/// tokenizer symbols.
const TOKEN_HARMLESS_QUALIFIERS: &[&str] = &[
    "page",
    "next",
    "prev",
    "previous",
    "continuation",
    "pagination",
    "cursor",
    "sync",
    "resume",
    "eos",
    "bos",
    "pad",
    "unk",
    "stop",
    "special",
    "cls",
    "sep",
    "mask",
    "start",
    "end",
    "max",
    "min",
];

/// Word pairs that name a secret (`auth_header`, `session_id`,
/// `connection_string`, `card_number`, `pin_code`).
const PAIRS: &[(&[&str], &[&str])] = &[
    (&["auth", "session", "sess"], &["header", "string", "data", "info", "value", "code", "id", "cookie"]),
    (&["connection", "conn"], &["string", "str", "url", "uri"]),
    (&["card"], &["number", "num", "pan"]),
    (&["pin", "mfa"], &["code", "number"]),
];

/// A last word that says the value describes the secret rather than being it.
const SAFE_LAST: &[&str] = &[
    "count",
    "counts",
    "length",
    "len",
    "size",
    "limit",
    "limits",
    "max",
    "min",
    "type",
    "types",
    "kind",
    "format",
    "hint",
    "policy",
    "url",
    "uri",
    "endpoint",
    "path",
    "paths",
    "file",
    "filename",
    "files",
    "dir",
    "directory",
    "name",
    "names",
    "label",
    "description",
    "desc",
    "field",
    "prompt",
    "required",
    "enabled",
    "disabled",
    "expiry",
    "expires",
    "expiration",
    "ttl",
    "age",
    "lifetime",
    "stdin",
    "env",
    "var",
    "location",
    "mode",
    "style",
    "strength",
    "version",
    "provider",
    "method",
    "methods",
    "scheme",
    "algorithm",
    "alg",
    "usage",
    "used",
    "remaining",
    "budget",
    "rule",
    "rules",
    "regex",
    "pattern",
    "schema",
    "placeholder",
    "at",
    "ref",
    "reference",
    "manager",
    "store",
    "vault",
    "flow",
    "status",
    "state",
    "error",
    "errors",
    "level",
    "id",
];

/// A first word that makes the key a yes/no question (`no_password`).
const SAFE_FIRST: &[&str] = &[
    "no", "is", "has", "use", "show", "require", "requires", "allow", "enable", "disable", "skip", "with", "without",
    "num", "n",
];

/// Every secret key holds one of these: a cheap first test so that most keys
/// (`path`, `command`, `author`) cost one short scan.
static KEY_HINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        "(?i)pass|pwd|secret|cred|cookie|auth|bearer|dsn|otp|cvv|cvc|key|sess|conn|pin|card|token|jwt|mfa|2fa|sig",
    )
    .expect("key hint pattern compiles")
});

/// True when the value under `key` is a secret. Matched on the key's words,
/// case-insensitively; see the module docs for the rules.
pub fn is_secret_key(key: &str) -> bool {
    if !KEY_HINT.is_match(key) {
        return false;
    }
    let (words, n) = key_words(key);
    let w = &words[..n];
    let Some(&last) = w.last() else {
        return false;
    };
    if n > 1 {
        // `secret_id` (Vault AppRole) and `session_id` are secrets even
        // though most `…_id` keys are not.
        let id_secret = last.eq_ignore_ascii_case("id") && is_any(w[n - 2], &["secret", "session", "sess"]);
        if (is_any(last, SAFE_LAST) && !id_secret) || is_any(w[0], SAFE_FIRST) {
            return false;
        }
    }
    words_name_secret(w)
}

/// The word rules of [`is_secret_key`], without its exclusions.
fn words_name_secret(w: &[&str]) -> bool {
    let n = w.len();
    for (i, &word) in w.iter().enumerate() {
        let prev = if i > 0 { Some(w[i - 1]) } else { None };
        let next = w.get(i + 1).copied();
        let is_last = i + 1 == n;
        if is_any(word, STRONG) || (is_last && is_any(word, STRONG_LAST)) {
            return true;
        }
        if ["password", "passwd", "secret", "token"].iter().any(|s| ends_with_ci(word, s))
            && word.len() > 6
            && !word.eq_ignore_ascii_case("tokens")
        {
            // A compound such as PGPASSWORD, clientSecret, authtoken.
            return true;
        }
        let token = word.eq_ignore_ascii_case("token") && !prev.is_some_and(|p| is_any(p, TOKEN_HARMLESS_QUALIFIERS));
        let key = word.eq_ignore_ascii_case("key") && prev.is_some_and(|p| is_any(p, KEY_QUALIFIERS));
        if token || key {
            return true;
        }
        if let Some(next) = next
            && PAIRS.iter().any(|(first, second)| is_any(word, first) && is_any(next, second))
        {
            return true;
        }
    }
    false
}

/// Keys that describe which form field a browser or UI tool acts on.
const FIELD_KEYS: &[&str] = &[
    "selector",
    "element",
    "field",
    "label",
    "name",
    "locator",
    "target",
    "placeholder",
    "id",
    "key",
    "header",
    "param",
    "parameter",
    "variable",
    "var",
];

/// Keys that carry what such a tool types or fills in.
const FIELD_VALUE_KEYS: &[&str] = &["value", "text", "input", "keys", "data", "string"];

/// True when `map` describes typing into a secret form field or setting a
/// secret by name: a sibling such as `selector: "#password"`, `element:
/// "Password textbox"` (Playwright's `browser_type`, Puppeteer's `fill`),
/// `name: "DB_PASSWORD"` (container env arrays) or `header:
/// "Authorization"`. Then the `value` / `text` beside it is the secret.
fn fills_secret_field(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| {
        is_any(k, FIELD_KEYS)
            && v.as_str().is_some_and(|s| {
                s.len() <= 256 && {
                    let (words, n) = key_words(s);
                    words_name_secret(&words[..n])
                }
            })
    })
}

/// Whether the value `v` under key `k` is replaced as a whole.
fn masks_whole(k: &str, v: &Value, fills_secret: bool) -> bool {
    maskable(v) && (is_secret_key(k) || (fills_secret && is_any(k, FIELD_VALUE_KEYS)))
}

// ---------------------------------------------------------------------------
// Value patterns
// ---------------------------------------------------------------------------

/// An extra test on a rule's match before its secret groups are masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// The regex alone decides.
    None,
    /// Group `k` must pass [`is_secret_key`].
    SecretKey,
    /// The match is a key and its separator; the key must pass
    /// [`is_secret_key`], and the secret is the value [`VALUE`] reads after
    /// the match (see `key_value_spans`).
    KeyValue,
    /// Group `s` must look like a token, not an English word.
    TokenLike,
    /// The secret must look random: at least [`MIN_DISTINCT`] distinct
    /// characters. A run such as `EAAAAAAA…` inside base64 data, or a
    /// placeholder such as `sk-xxxxxxxx…`, is not a key.
    Random,
    /// Group `s` must decode as base64 to `user:password`.
    BasicCredentials,
    /// Group `s` must not be a port followed by a path (`8080/…`).
    NotPortAndPath,
}

/// See [`Check::Random`].
const MIN_DISTINCT: usize = 10;

/// Characters allowed in a bare `key=value` value.
const BARE: &str = r#"[^\s"'&;\\|`]+"#;

/// `"…"`, `'…'`, `\"…\"` (a JSON string inside a JSON string) or a bare
/// value, with the secret in one of the groups `s1`‥`s4`.
fn value_alternatives() -> String {
    format!(
        r#"(?:"(?P<s1>(?:[^"\\\r\n]|\\.)*)(?:"|$)|'(?P<s2>[^'\r\n]*)(?:'|$)|\\"(?P<s3>(?:[^"\\]|\\[^"])*)(?:\\"|$)|(?P<s4>{BARE}))"#
    )
}

/// The value after a secret key and its separator, read from the separator
/// on: an optional auth scheme (`Bearer`, `token` …, kept), then the value.
static VALUE: LazyLock<Regex> = LazyLock::new(|| {
    let scheme = r"(?:(?i:bearer|basic|token|bot|digest|negotiate|sso-key)\s+)?";
    Regex::new(&format!("^{scheme}{}", value_alternatives())).expect("value pattern compiles")
});

/// Word boundary on ASCII only, so the lazy DFA never has to give up on
/// non-ASCII text.
const B: &str = r"(?-u:\b)";

/// The rules: a regex whose named groups `s`, `s1`‥`s4` (or, lacking them,
/// the whole match) are the secret, plus a check.
fn rules() -> Vec<(String, Check)> {
    let mut r: Vec<(String, Check)> = vec![
        // --- Private keys and signed tokens -----------------------------------
        (
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----(?:[\s\S]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----|[\s\S]*)".into(),
            Check::None,
        ),
        (r"AGE-SECRET-KEY-1[0-9A-Z]{58}".into(), Check::Random),
        (
            format!(r"{B}eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]*"),
            Check::Random,
        ),
        // --- Provider keys with a prefix -------------------------------------
        // OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic (sk-ant-), OpenRouter.
        (format!(r"{B}sk-[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (format!(r"{B}gh[pousr]_[A-Za-z0-9]{{30,}}"), Check::Random),
        (format!(r"{B}github_pat_[A-Za-z0-9_]{{30,}}"), Check::Random),
        (format!(r"{B}(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{{16}}{B}"), Check::Random),
        // An AWS secret access key on the same line after its key id. The
        // gap never crosses a `[`, so a mask (which shortens the text) cannot
        // bring a farther candidate into reach: redaction stays idempotent.
        (
            r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}[^\n\[]{0,100}?[^A-Za-z0-9/+=\n\[](?P<s>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)".into(),
            Check::Random,
        ),
        (format!(r"{B}xox[abposre]-[A-Za-z0-9-]{{10,}}"), Check::Random),
        (format!(r"{B}xapp-[0-9]-[A-Za-z0-9-]{{10,}}"), Check::Random),
        (
            r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/-]{20,})".into(),
            Check::Random,
        ),
        (format!(r"{B}(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{{16,}}"), Check::Random),
        (format!(r"{B}whsec_[A-Za-z0-9+/=]{{20,}}"), Check::Random),
        (format!(r"{B}AIza[0-9A-Za-z_-]{{35}}"), Check::Random),
        (format!(r"{B}GOCSPX-[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (format!(r"{B}ya29\.[0-9A-Za-z_-]{{20,}}"), Check::Random),
        (
            format!(r"{B}gl(?:pat|dt|rt|ptt|cbt|soat|ffct|imt|oas|wt|agent)-[A-Za-z0-9_-]{{20,}}"),
            Check::Random,
        ),
        (format!(r"{B}GR1348941[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (format!(r"{B}npm_[A-Za-z0-9]{{36}}"), Check::Random),
        (format!(r"{B}pypi-[A-Za-z0-9_-]{{50,}}"), Check::Random),
        (format!(r"{B}SK[0-9a-fA-F]{{32}}{B}"), Check::Random),
        // A Twilio auth token on the same line after its account SID.
        (
            r"AC[0-9a-f]{32}[^\n\[]{0,100}?[^0-9a-fA-F\n\[](?P<s>[0-9a-f]{32})(?:[^0-9a-fA-F]|$)".into(),
            Check::Random,
        ),
        (format!(r"{B}SG\.[A-Za-z0-9_-]{{16,}}\.[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (format!(r"{B}HRKU-[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (
            r"(?i)heroku[^\n\[]{0,60}?(?-u:\b)(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})".into(),
            Check::Random,
        ),
        (format!(r"{B}do[opr]_v1_[a-f0-9]{{64}}"), Check::Random),
        (format!(r"{B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{{32}}"), Check::Random),
        (format!(r"{B}hf_[A-Za-z0-9]{{30,}}"), Check::Random),
        // Telegram bot token, also inside api.telegram.org/bot<TOKEN>/…
        (
            format!(r"(?:{B}|bot)(?P<s>[0-9]{{8,10}}:[A-Za-z0-9_-]{{35}})(?:[^A-Za-z0-9_-]|$)"),
            Check::Random,
        ),
        (
            format!(r"{B}[MNO][A-Za-z0-9_-]{{23,25}}\.[A-Za-z0-9_-]{{6}}\.[A-Za-z0-9_-]{{27,38}}"),
            Check::Random,
        ),
        (
            r"discord(?:app)?\.com/api/webhooks/[0-9]{5,30}/(?P<s>[A-Za-z0-9_-]{30,})".into(),
            Check::Random,
        ),
        (format!(r"{B}key-[0-9a-f]{{32}}{B}"), Check::Random),
        (format!(r"{B}[0-9a-f]{{32}}-[0-9a-f]{{8}}-[0-9a-f]{{8}}{B}"), Check::Random),
        (format!(r"{B}[0-9a-f]{{32}}-us[0-9]{{1,2}}{B}"), Check::Random),
        (format!(r"{B}gsk_[A-Za-z0-9]{{40,}}"), Check::Random),
        (format!(r"{B}xai-[A-Za-z0-9]{{40,}}"), Check::Random),
        (format!(r"{B}r8_[A-Za-z0-9]{{30,}}"), Check::Random),
        (format!(r"{B}pplx-[A-Za-z0-9]{{40,}}"), Check::Random),
        (format!(r"{B}lin_(?:api|oauth)_[A-Za-z0-9]{{32,}}"), Check::Random),
        (format!(r"{B}(?:secret_[A-Za-z0-9]{{43}}|ntn_[A-Za-z0-9]{{40,}}){B}"), Check::Random),
        (format!(r"{B}hv[sbr]\.[A-Za-z0-9_-]{{24,}}"), Check::Random),
        (format!(r"{B}dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{{30,}}"), Check::Random),
        (format!(r"{B}PMAK-[a-f0-9]{{24}}-[a-f0-9]{{34}}"), Check::Random),
        (format!(r"{B}dapi[a-f0-9]{{32}}"), Check::Random),
        (format!(r"{B}glsa_[A-Za-z0-9]{{32}}_[a-f0-9]{{8}}"), Check::Random),
        (format!(r"{B}glc_[A-Za-z0-9+/]{{32,}}={{0,2}}"), Check::Random),
        (format!(r"{B}sntry[su]_[A-Za-z0-9+/=_-]{{40,}}"), Check::Random),
        (format!(r"{B}sbp_[a-f0-9]{{40}}"), Check::Random),
        (format!(r"{B}sq0(?:atp|csp|idp)-[A-Za-z0-9_-]{{22,}}"), Check::Random),
        (format!(r"{B}EAA[A-Za-z0-9]{{60,}}"), Check::Random),
        (format!(r"{B}ATATT[A-Za-z0-9_=-]{{50,}}"), Check::Random),
        (
            format!(r"{B}access_token\$production\$[a-z0-9]{{16}}\$[a-f0-9]{{32}}"),
            Check::Random,
        ),
        // --- Schemes and headers ---------------------------------------------
        (
            format!(r"(?i){B}bearer\s+(?P<s>[A-Za-z0-9._~+/=-]{{8,}})"),
            Check::TokenLike,
        ),
        (
            format!(r"(?i){B}basic\s+(?P<s>[A-Za-z0-9+/]{{4,}}={{0,2}})"),
            Check::BasicCredentials,
        ),
        (
            format!(r#"(?i){B}(?:set-)?cookie\s*:\s*(?P<s>[^\r\n"'\\]+)"#),
            Check::None,
        ),
        // --- URLs --------------------------------------------------------------
        // scheme://user:password@host and scheme://:password@host
        (
            format!(r#"(?i){B}[a-z][a-z0-9+.-]{{0,30}}://[^\s:/@?#"'\\]*:(?P<s>[^\s/?#"'\\]+)@"#),
            Check::None,
        ),
        // … and a password holding a raw `/` (invalid, yet written), unless
        // it is a port and a path: `http://localhost:5173/@vite/client`.
        (
            format!(
                r#"(?i){B}[a-z][a-z0-9+.-]{{0,30}}://[^\s:/@?#"'\\]*:(?P<s>[^\s@?#"'\\]*/[^\s@?#"'\\]*)@[A-Za-z0-9]"#
            ),
            Check::NotPortAndPath,
        ),
        // Query-string keys that are secrets only in a URL.
        (
            r#"[?&](?i:key|sig|signature|x-amz-signature|x-goog-signature)=(?P<s>[^&#\s"'\\]+)"#
                .into(),
            Check::None,
        ),
        // --- key=value, key: value, "key": "value" ------------------------------
        // Only the key and separator here; the value is read by
        // [`VALUE`] from the separator on, so that a key failing the test
        // never hides the next key inside its would-be value.
        (
            r#"(?P<k>(?i:[A-Za-z0-9_.-]*(?:pass|pwd|secret|token|key|auth|cookie|cred|sess|dsn|conn|otp|pin|cvv|cvc|bearer|jwt|sig)[A-Za-z0-9_.-]*))(?:\\?["'])?\s*[:=]\s*"#
                .into(),
            Check::KeyValue,
        ),
        // --flag value and -flag value (the `=` form is the rule above).
        (
            r#"(?:^|\s)(?P<k>(?i:--?[A-Za-z0-9_-]*(?:pass|pwd|secret|token|key|auth|cookie|cred|otp|sig)[A-Za-z0-9_-]*))\s+(?:"(?P<s1>(?:[^"\\]|\\.)*)"|'(?P<s2>[^']*)'|(?P<s3>[^\s"'-][^\s"';&|]*))"#
                .into(),
            Check::SecretKey,
        ),
        // --- Command lines -------------------------------------------------------
        // The words between a command and its flag never hold `;|&` (another
        // command) nor `[` (a mask: text redacted once is not re-read).
        (
            format!(
                r#"{B}(?:mysql[a-z]*|mariadb[a-z-]*)(?:\s+[^\s;|&\[]+)*?\s+-p(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:sshpass|mongo|mongosh|(?:docker|podman|nerdctl|buildah|skopeo|oras|helm(?:\s+registry)?|az|oc|cf)\s+login)(?:\s+[^\s;|&\[]+)*?\s+(?:-p|--password)(?:\s+|=)?(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"-][^\s'"]*))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:redis-cli|keydb-cli)(?:\s+[^\s;|&\[]+)*?\s+(?:-a|--pass)\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:zip|unzip|7z|7za|rar|unrar|sqlcmd|bcp)(?:\s+[^\s;|&\[]+)*?\s+-[pP](?:\s+)?(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"-][^\s'"]*))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:curl|wget|http|xh)(?:\s+[^\s;|&\[]+)*?\s+(?:-u|--user|-U|--proxy-user)(?:\s+|=)?['"]?[^\s:'"]*:(?P<s>[^\s'"]+)"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:smbclient|rpcclient|smbmap)(?:\s+[^\s;|&\[]+)*?\s+(?:-U|--user)(?:\s+|=)?['"]?[^\s%'"]*%(?P<s>[^\s'"]+)"#
            ),
            Check::None,
        ),
        (
            format!(r#"{B}pass:(?P<s>[^\s'"]+)"#),
            Check::None,
        ),
        // openssl -k, ldapsearch -w, ssh-keygen -N/-P
        (
            format!(
                r#"{B}(?:openssl(?:\s+[^\s;|&\[]+)*?\s+-k|ldap[a-z]*(?:\s+[^\s;|&\[]+)*?\s+-w|ssh-keygen(?:\s+[^\s;|&\[]+)*?\s+-[NP])\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        // htpasswd -b FILE USER PASSWORD, htpasswd -nb USER PASSWORD
        (
            format!(
                r#"{B}htpasswd(?:\s+-[A-Za-mo-z]+)*\s+-[A-Za-mo-z]*b[A-Za-mo-z]*(?:\s+-[A-Za-mo-z]+)*\s+[^\s-]\S*\s+\S+\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}htpasswd(?:\s+-[A-Za-z]+)*\s+-(?:[A-Za-z]*n[A-Za-z]*b|[A-Za-z]*b[A-Za-z]*n)[A-Za-z]*(?:\s+-[A-Za-z]+)*\s+[^\s-]\S*\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        // echo PASSWORD | sudo -S …
        (
            format!(
                r#"{B}(?:echo|printf)\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"|;&]+))\s*\|\s*sudo(?:\s+-[A-Za-z]+)*?\s+-[A-Za-z]*S"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"(?i){B}(?:sqlplus|rman|expdp|impdp|sqlldr|exp|imp)(?:\s+-\S+)*\s+['"]?[A-Za-z0-9_$#]+/(?P<s>[^\s@'"]+)@"#
            ),
            Check::None,
        ),
        // .netrc: `machine h login u password p`, possibly over several lines.
        (
            r"(?i)(?-u:\b)(?:machine|login|account)\s+\S+(?:\s+(?:login|account)\s+\S+)*\s+password\s+(?P<s>\S+)".into(),
            Check::None,
        ),
        (r"(?im)^[ \t]*password[ \t]+(?P<s>\S+)[ \t]*\r?$".into(), Check::None),
    ];
    r.shrink_to_fit();
    r
}

struct Rule {
    re: Regex,
    check: Check,
    /// Indices of the secret groups (`s`, `s1`‥); empty: the whole match.
    secret_groups: Vec<usize>,
    /// Index of the `k` group, for [`Check::SecretKey`].
    key_group: Option<usize>,
}

struct Rules {
    set: RegexSet,
    rules: Vec<Rule>,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let specs = rules();
    let set = RegexSetBuilder::new(specs.iter().map(|(p, _)| p.as_str()))
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .expect("built-in redaction patterns compile");
    let rules = specs
        .iter()
        .map(|(p, check)| {
            let re =
                regex::RegexBuilder::new(p).size_limit(64 << 20).build().expect("built-in redaction pattern compiles");
            let names: Vec<(usize, &str)> =
                re.capture_names().enumerate().filter_map(|(i, n)| n.map(|n| (i, n))).collect();
            let secret_groups = names.iter().filter(|(_, n)| n.starts_with('s')).map(|&(i, _)| i).collect();
            let key_group = names.iter().find(|(_, n)| *n == "k").map(|&(i, _)| i);
            Rule { re, check: *check, secret_groups, key_group }
        })
        .collect();
    Rules { set, rules }
});

/// Minimal standard base64 decoding (padding optional); `None` if invalid.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn passes(check: Check, key: Option<&str>, secret: &str) -> bool {
    match check {
        Check::None => true,
        Check::SecretKey | Check::KeyValue => key.is_some_and(|k| is_secret_key(k.trim_start_matches('-'))),
        Check::TokenLike => {
            // "Bearer authentication" is prose; "Bearer eyJ…", "Bearer
            // abc123…" are not.
            secret.len() >= 8
                && (secret.bytes().any(|b| b.is_ascii_digit() || b"._~+/=-".contains(&b))
                    || secret.bytes().skip(1).any(|b| b.is_ascii_uppercase())
                    || secret.len() >= 24)
        }
        Check::Random => {
            let mut seen = [false; 256];
            let mut distinct = 0;
            for b in secret.bytes() {
                if !seen[usize::from(b)] {
                    seen[usize::from(b)] = true;
                    distinct += 1;
                }
            }
            distinct >= MIN_DISTINCT
        }
        Check::NotPortAndPath => {
            let digits = secret.bytes().take_while(u8::is_ascii_digit).count();
            !(1..=5).contains(&digits) || secret.as_bytes().get(digits) != Some(&b'/')
        }
        Check::BasicCredentials => {
            decode_base64(secret).is_some_and(|d| d.contains(&b':') && d.iter().all(|&b| b >= 0x20 && b != 0x7f))
        }
    }
}

/// Spans of the values under secret keys in free text. Each key is looked
/// for after the previous key's separator, or after its value when it was a
/// secret, so the work stays linear.
fn key_value_spans(rule: &Rule, text: &str, spans: &mut Vec<(usize, usize)>) {
    let mut pos = 0;
    while pos < text.len() {
        // `find_at` needs only the DFA; the key is the match without its
        // separator: `KEY` + optional `\"` or `'` + `:`/`=` with spaces.
        let Some(m) = rule.re.find_at(text, pos) else { break };
        // The separator is never empty, so this always moves forward.
        pos = m.end();
        let key = m.as_str().trim_end();
        let key = key.strip_suffix([':', '=']).unwrap_or(key).trim_end();
        let key = key.strip_suffix(['"', '\'']).unwrap_or(key);
        let key = key.strip_suffix('\\').unwrap_or(key);
        if !is_secret_key(key.trim_start_matches('-')) {
            continue;
        }
        let Some(value) = VALUE.captures(&text[m.end()..]) else { continue };
        let Some(secret) = value.iter().skip(1).flatten().last() else { continue };
        if !secret.is_empty() && !secret.as_str().contains(MASK) {
            spans.push((m.end() + secret.start(), m.end() + secret.end()));
        }
        pos = pos.max(m.end() + value.get(0).map_or(0, |v| v.end()));
    }
}

/// Byte ranges of `text` that are secrets, sorted and merged.
fn secret_spans(text: &str) -> Vec<(usize, usize)> {
    let rules = &*RULES;
    let mut spans = Vec::new();
    for i in rules.set.matches(text).iter() {
        let rule = &rules.rules[i];
        if rule.check == Check::KeyValue {
            key_value_spans(rule, text, &mut spans);
            continue;
        }
        for caps in rule.re.captures_iter(text) {
            let key = rule.key_group.and_then(|g| caps.get(g)).map(|m| m.as_str());
            let secret = if rule.secret_groups.is_empty() {
                caps.get(0)
            } else {
                rule.secret_groups.iter().find_map(|&g| caps.get(g))
            };
            let Some(secret) = secret else { continue };
            // A value holding a mask was redacted already: what surrounds the
            // mask was judged harmless when it was made. (Masking can join
            // lines or words, which must not make a rule match anew.)
            if secret.is_empty() || secret.as_str().contains(MASK) {
                continue;
            }
            if passes(rule.check, key, secret.as_str()) {
                spans.push((secret.start(), secret.end()));
            }
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Redacts secrets inside free text: returns the text itself, borrowed, when
/// there is nothing to redact.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    if !RULES.set.is_match(text) {
        return Cow::Borrowed(text);
    }
    let spans = secret_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    // A mask can expose what its neighbour hid: in `…AGE-SECRET-KEY-1…HRKU-…`
    // the second key only starts at a word boundary once the first is
    // masked. That needs a token character right beside a span; then redact
    // the result again, until nothing changes, at most MAX_PASSES times.
    let mut again = glued_to_a_token(text, &spans);
    let mut out = apply_spans(text, &spans);
    for _ in 0..MAX_PASSES {
        if !again || !RULES.set.is_match(&out) {
            break;
        }
        let spans = secret_spans(&out);
        if spans.is_empty() {
            break;
        }
        again = glued_to_a_token(&out, &spans);
        out = apply_spans(&out, &spans);
    }
    Cow::Owned(out)
}

/// Extra redaction passes over a text that had secrets; see [`redact_text`].
const MAX_PASSES: usize = 4;

/// Whether a span touches a character that can belong to a token (a word
/// character, or `/ + - .` found in base64 and token alphabets): only then
/// can masking it let another rule match.
fn glued_to_a_token(text: &str, spans: &[(usize, usize)]) -> bool {
    let b = text.as_bytes();
    let token = |c: u8| c.is_ascii_alphanumeric() || b"_/+-.".contains(&c);
    spans.iter().any(|&(s, e)| (s > 0 && token(b[s - 1])) || b.get(e).is_some_and(|&c| token(c)))
}

/// `text` with each span replaced by [`MASK`].
fn apply_spans(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in spans {
        out.push_str(&text[at..s]);
        out.push_str(MASK);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// True when [`redact_text`] would change `text`.
pub fn text_has_secret(text: &str) -> bool {
    RULES.set.is_match(text) && !secret_spans(text).is_empty()
}

/// Whether a value under a secret key is masked: `null`, booleans and empty
/// strings carry no secret and stay.
fn maskable(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) => false,
        Value::String(s) => !s.is_empty() && s != MASK,
        _ => true,
    }
}

/// A copy of `value` with every secret replaced by [`MASK`] (object keys
/// included) and anything nested deeper than [`MAX_DEPTH`] replaced by
/// [`TOO_DEEP`].
pub fn redact_value(value: &Value) -> Value {
    redact_at(value, 0)
}

fn redact_at(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) => match redact_text(s) {
            Cow::Borrowed(_) => value.clone(),
            Cow::Owned(o) => Value::String(o),
        },
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Value::String(TOO_DEEP.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_at(v, depth + 1)).collect()),
        Value::Object(map) => {
            let fills_secret = fills_secret_field(map);
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let v = if masks_whole(k, v, fills_secret) {
                    Value::String(MASK.to_owned())
                } else {
                    redact_at(v, depth + 1)
                };
                out.insert(redact_text(k).into_owned(), v);
            }
            Value::Object(out)
        }
        _ => value.clone(),
    }
}

/// Redacts `value` where it lies; returns whether anything changed. Same
/// result as [`redact_value`], without copying the clean parts.
pub fn redact_in_place(value: &mut Value) -> bool {
    redact_in_place_at(value, 0)
}

fn redact_in_place_at(value: &mut Value, depth: usize) -> bool {
    match value {
        Value::String(s) => match redact_text(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(o) => {
                *s = o;
                true
            }
        },
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
            *value = Value::String(TOO_DEEP.to_owned());
            true
        }
        Value::Array(items) => {
            let mut changed = false;
            for v in items {
                changed |= redact_in_place_at(v, depth + 1);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| text_has_secret(k)) {
                let old = std::mem::take(map);
                for (k, v) in old {
                    map.insert(redact_text(&k).into_owned(), v);
                }
                changed = true;
            }
            let fills_secret = fills_secret_field(map);
            for (k, v) in map.iter_mut() {
                if masks_whole(k, v, fills_secret) {
                    *v = Value::String(MASK.to_owned());
                    changed = true;
                } else {
                    changed |= redact_in_place_at(v, depth + 1);
                }
            }
            changed
        }
        _ => false,
    }
}

/// True when [`redact_value`] would change something (a subtree too deep to
/// inspect counts: it cannot be shown as it is).
pub fn has_secret(value: &Value) -> bool {
    has_secret_at(value, 0)
}

fn has_secret_at(value: &Value, depth: usize) -> bool {
    match value {
        Value::String(s) => text_has_secret(s),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => true,
        Value::Array(items) => items.iter().any(|v| has_secret_at(v, depth + 1)),
        Value::Object(map) => {
            let fills_secret = fills_secret_field(map);
            map.iter()
                .any(|(k, v)| masks_whole(k, v, fills_secret) || text_has_secret(k) || has_secret_at(v, depth + 1))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_patterns() {
        let v = json!({
            "password": "hunter2",
            "author": "ada",
            "path": "/tmp/x",
            "command": "curl -H 'Authorization: Bearer abcdefghijklmnop' https://u:pw@h.example/x",
            "nested": [{"api_key": "k"}, "sk-abcdefghijklmnopqrstuv"],
        });
        let r = redact_value(&v);
        let s = r.to_string();
        assert!(!s.contains("hunter2") && !s.contains("abcdefghijklmnop") && !s.contains(":pw@"), "{s}");
        assert!(!s.contains("sk-abc"), "{s}");
        assert_eq!(r["author"], "ada");
        assert_eq!(r["path"], "/tmp/x");
        assert_eq!(r["nested"][0]["api_key"], MASK);
    }

    #[test]
    fn key_words_split_snake_camel_kebab_and_acronyms() {
        let w = |k: &str| {
            let (a, n) = key_words(k);
            a[..n].iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>()
        };
        assert_eq!(w("apiKey"), ["api", "key"]);
        assert_eq!(w("X-Api-Key"), ["x", "api", "key"]);
        assert_eq!(w("GITHUB_TOKEN"), ["github", "token"]);
        assert_eq!(w("AWSSecretAccessKey"), ["aws", "secret", "access", "key"]);
        assert_eq!(w("spring.datasource.password"), ["spring", "datasource", "password"]);
        assert_eq!(w("--client-secret"), ["client", "secret"]);
        assert_eq!(w(""), Vec::<String>::new());
    }

    #[test]
    fn secret_key_names() {
        for k in [
            "password",
            "Password",
            "apiKey",
            "X-Api-Key",
            "GITHUB_TOKEN",
            "api_key",
            "apikey",
            "Authorization",
            "Proxy-Authorization",
            "cookie",
            "Set-Cookie",
            "private_key",
            "privateKey",
            "client_secret",
            "clientSecret",
            "AWS_SECRET_ACCESS_KEY",
            "PGPASSWORD",
            "MYSQL_PWD",
            "db_pass",
            "basic_auth",
            "access_token",
            "refreshToken",
            "session_id",
            "connection_string",
            "ConnectionString",
            "dsn",
            "secret_id",
            "x-auth-token",
            "passphrase",
            "otp",
            "pin",
            "card_number",
            "AccountKey",
            "SharedAccessKey",
        ] {
            assert!(is_secret_key(k), "{k} should be a secret key");
        }
    }

    #[test]
    fn harmless_key_names() {
        for k in [
            "author",
            "filename",
            "path",
            "max_tokens",
            "token_count",
            "keyboard",
            "monkey",
            "description",
            "key",
            "public_key",
            "primary_key",
            "secret_name",
            "token_type",
            "auth_type",
            "password_reset_url",
            "private_key_path",
            "pageToken",
            "next_token",
            "eos_token",
            "tokenizer",
            "input_tokens",
            "bypass",
            "compass",
            "passage",
            "session",
            "has_password",
            "no_password",
            "password_length",
            "keys",
            "author_email",
            "hotkey",
            "client_id",
            "",
        ] {
            assert!(!is_secret_key(k), "{k} should be harmless");
        }
    }

    #[test]
    fn only_the_secret_part_is_masked() {
        assert_eq!(
            redact_text("postgres://app:s3cr3t@db.internal:5432/main"),
            format!("postgres://app:{MASK}@db.internal:5432/main")
        );
        assert_eq!(
            redact_text("curl -H 'Authorization: Bearer abc123def456'"),
            format!("curl -H 'Authorization: Bearer {MASK}'")
        );
        assert_eq!(redact_text("FOO_SECRET=xyz ./run"), format!("FOO_SECRET={MASK} ./run"));
        assert_eq!(
            redact_text(r#"{"password": "a\"b", "user": "ada"}"#),
            format!(r#"{{"password": "{MASK}", "user": "ada"}}"#)
        );
    }

    #[test]
    fn typing_into_a_password_field_masks_the_typed_text() {
        for v in [
            json!({"element": "Password textbox", "ref": "e12", "text": "Hunter2!"}),
            json!({"selector": "#password", "value": "Hunter2!"}),
            json!({"selector": "input[name=api_key]", "value": "Hunter2!"}),
        ] {
            let r = redact_value(&v);
            assert!(!r.to_string().contains("Hunter2"), "{r}");
            assert!(has_secret(&v));
        }
        let env = json!({"env": [{"name": "DB_PASSWORD", "value": "Hunter2!"},
                                 {"name": "LOG_LEVEL", "value": "debug"}]});
        let r = redact_value(&env);
        assert_eq!(r["env"][0]["value"], MASK);
        assert_eq!(r["env"][1]["value"], "debug");
        let header = json!({"header": "Authorization", "value": "Hunter2!"});
        assert_eq!(redact_value(&header)["value"], MASK);
        let user = json!({"selector": "#username", "value": "ada"});
        assert_eq!(redact_value(&user), user);
        assert!(!has_secret(&user));
    }

    #[test]
    fn secrets_glued_together_are_all_masked() {
        let age = "AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE";
        let heroku = "HRKU-AAp3NcsHo5DaQuWyue6Wsi1Mi1OvNhEIU15HXp9fEDv71GzY_aX4VPjdTuav";
        let text = format!("ssl=true{age}{heroku}");
        let once = redact_text(&text);
        assert!(!once.contains("HRKU") && !once.contains("AGE-SECRET"), "{once}");
        assert_eq!(redact_text(&once), once);
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(redact_text("git log --oneline -n 5"), Cow::Borrowed(_)));
        assert!(matches!(redact_text("max_tokens=100"), Cow::Borrowed(_)));
    }

    #[test]
    fn prose_about_bearer_and_basic_is_kept() {
        for t in ["Use bearer authentication here", "basic information", "Basic usage"] {
            assert!(matches!(redact_text(t), Cow::Borrowed(_)), "{t}");
        }
        assert!(text_has_secret("Authorization: Basic dXNlcjpwYXNzd29yZA=="));
    }

    #[test]
    fn in_place_matches_copy() {
        let v = json!({"a": {"token": "t0k3n", "ghp_0123456789abcdefghijABCDEFGHIJ0123": 1},
                       "b": ["postgres://u:p@h/db", 3]});
        let mut w = v.clone();
        assert!(redact_in_place(&mut w));
        assert_eq!(w, redact_value(&v));
        assert!(has_secret(&v));
        assert!(!has_secret(&w));
    }
}

/// Longest string kept whole in what is stored or shown; longer strings are
/// cut (see [`bounded`]).
pub const MAX_SHOWN_STRING: usize = 16 * 1024;

/// How far back from the cut [`bounded`] looks for the end of a token.
const TOKEN_TAIL: usize = 128;

/// `value` with every string longer than [`MAX_SHOWN_STRING`] cut and
/// marked, so redaction, storage and display cost the same for a 1 GiB
/// argument as for a 16 KiB one. The cut falls at a token boundary (white
/// space or punctuation) within the last [`TOKEN_TAIL`] bytes, or drops
/// those bytes: a secret that straddled the cut never survives as a
/// fragment too short for the patterns to recognise. Borrowed when nothing
/// is long.
pub fn bounded(value: &Value) -> Cow<'_, Value> {
    if !has_long_string(value, 0) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(cut(value, 0))
}

fn has_long_string(value: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::String(s) => s.len() > MAX_SHOWN_STRING,
        Value::Array(items) => items.iter().any(|v| has_long_string(v, depth + 1)),
        Value::Object(map) => map.values().any(|v| has_long_string(v, depth + 1)),
        _ => false,
    }
}

fn cut(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) if s.len() > MAX_SHOWN_STRING => Value::String(cut_string(s)),
        Value::Array(items) if depth <= MAX_DEPTH => Value::Array(items.iter().map(|v| cut(v, depth + 1)).collect()),
        Value::Object(map) if depth <= MAX_DEPTH => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), cut(v, depth + 1))).collect())
        }
        _ => value.clone(),
    }
}

fn cut_string(s: &str) -> String {
    let mut end = MAX_SHOWN_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let floor = end.saturating_sub(TOKEN_TAIL);
    let boundary = s.as_bytes()[floor..end]
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || b"\"',;:()[]{}<>|&=".contains(b))
        .map(|i| floor + i + 1);
    let mut keep = boundary.unwrap_or(floor);
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}…[{} more bytes not shown]", &s[..keep], s.len() - keep)
}

#[cfg(test)]
mod bounded_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_values_are_borrowed() {
        let v = json!({"a": "x".repeat(100)});
        assert!(matches!(bounded(&v), Cow::Borrowed(_)));
    }

    #[test]
    fn long_strings_are_cut_at_a_token_boundary_and_marked() {
        let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
        let text = format!("{} {secret} tail", "a ".repeat((MAX_SHOWN_STRING - 20) / 2));
        let v = json!({"cmd": text});
        let b = bounded(&v);
        let s = b["cmd"].as_str().unwrap();
        assert!(s.len() < MAX_SHOWN_STRING + 64);
        assert!(s.contains("more bytes not shown"));
        // No fragment of the straddling secret is kept.
        assert!(!s.contains("sk-"), "{}", &s[s.len() - 100..]);
    }

    #[test]
    fn a_long_token_loses_its_tail_rather_than_leak_a_fragment() {
        let v = json!("k".repeat(MAX_SHOWN_STRING * 2));
        let b = bounded(&v);
        let s = b.as_str().unwrap();
        assert!(s.starts_with(&"k".repeat(MAX_SHOWN_STRING - TOKEN_TAIL)));
        assert!(!s.starts_with(&"k".repeat(MAX_SHOWN_STRING - TOKEN_TAIL + 1)));
    }
}
