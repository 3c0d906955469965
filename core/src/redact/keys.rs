//! Key names that say the value beside them is a secret.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::mask::maskable;

/// At most this many words of a key are examined (the last ones).
const MAX_KEY_WORDS: usize = 12;

/// Splits `key` into its words (snake, kebab, dotted, camelCase with
/// acronyms: `XMLHttpRequest` → `XML`, `Http`, `Request`), keeping the last
/// [`MAX_KEY_WORDS`]. No allocation.
pub(super) fn key_words(key: &str) -> ([&str; MAX_KEY_WORDS], usize) {
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

pub(super) fn is_any(word: &str, list: &[&str]) -> bool {
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
const STRONG_LAST: &[&str] = &["pass", "pw", "auth", "oauth", "jwt", "pin", "mfa", "2fa", "sig"];

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
    // OAuth PKCE (RFC 7636): the verifier redeems an authorization code.
    (&["code", "pkce"], &["verifier"]),
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
        "(?i)pass|pw|secret|cred|cookie|auth|bearer|dsn|otp|cvv|cvc|key|sess|conn|pin|card|token|jwt|mfa|2fa|sig|verifier",
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
pub(super) fn words_name_secret(w: &[&str]) -> bool {
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

/// Whether the last word of `key` is one of `list` (`ParameterKey`,
/// `OptionValue`, `name`).
fn last_word_is_any(key: &str, list: &[&str]) -> bool {
    let (words, n) = key_words(key);
    n > 0 && is_any(words[n - 1], list)
}

/// True when `map` describes typing into a secret form field or setting a
/// secret by name: a sibling such as `selector: "#password"`, `element:
/// "Password textbox"` (Playwright's `browser_type`, Puppeteer's `fill`),
/// `name: "DB_PASSWORD"` (container env arrays) or `header:
/// "Authorization"`. Then the `value` / `text` beside it is the secret.
pub(super) fn fills_secret_field(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| {
        last_word_is_any(k, FIELD_KEYS)
            && v.as_str().is_some_and(|s| {
                s.len() <= 256 && {
                    let (words, n) = key_words(s);
                    words_name_secret(&words[..n])
                }
            })
    })
}

/// Whether the value `v` under key `k` is replaced as a whole.
pub(super) fn masks_whole(k: &str, v: &Value, fills_secret: bool) -> bool {
    maskable(v) && (is_secret_key(k) || (fills_secret && last_word_is_any(k, FIELD_VALUE_KEYS)))
}
