//! Redaction: secrets never reach the audit database, a console, a desktop
//! notification, Telegram or an LLM. The daemon runs [`redact_value`] on a
//! call's arguments once, before any of them sees the call, and
//! [`redact_text`] on any other free text it stores or sends (command lines,
//! error messages).
//!
//! # What is redacted
//!
//! **By key name** ([`is_secret_key`]): the whole value under a key whose
//! *words* name a secret. Keys are split into words on `_`, `-`, `.`, spaces
//! and camelCase humps (`apiKey`, `X-Api-Key`, `GITHUB_TOKEN`,
//! `AWSSecretAccessKey` all count), then:
//! - `password`, `passwd`, `pwd`, `passphrase`, `passcode`, `secret`,
//!   `credential(s)`, `creds`, `cookie(s)`, `authorization`, `bearer`, `dsn`,
//!   `otp`/`totp`, `cvv`/`cvc` anywhere; `pass`, `auth`, `oauth`, `jwt`,
//!   `pin` as the last word; single-word compounds ending in `password`,
//!   `secret` or `token` (`PGPASSWORD`, `clientSecret`, `authtoken`);
//! - `token`, unless it is a pagination or tokenizer token (`page_token`,
//!   `next_token`, `eos_token`);
//! - `key` after a word that makes it a credential (`api`, `access`,
//!   `secret`, `private`, `signing`, `account`, `ssh` …), never `key` alone
//!   (`key: "Enter"`, an S3 object key) nor `public_key`/`primary_key`;
//! - connection strings (`connection_string`, `conn_str`), session ids.
//!
//! A key whose *last* word says the value is about the secret rather than
//! the secret itself stays readable: `token_count`, `password_length`,
//! `secret_name`, `private_key_path`, `auth_type`, `token_url`,
//! `password_changed_at`. So do boolean-ish prefixes (`no_password`,
//! `has_token`). `null`, booleans and empty strings under a secret key are
//! kept: they tell a reviewer that no secret was given, and leak nothing.
//!
//! **By value pattern**, in every string (and every object key), wherever the
//! secret sits inside it — a bare value, a shell command line, a JSON
//! document embedded in a string:
//! - provider keys with a recognisable prefix: OpenAI and Anthropic `sk-…`,
//!   GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, AWS `AKIA…`
//!   (and the 40-character secret key that follows within a line), Slack
//!   `xox?-` tokens and webhook URLs, Stripe `sk_live_`/`rk_live_`/`whsec_`,
//!   Google `AIza…`/`GOCSPX-`/`ya29.`, GitLab `glpat-` and siblings, npm
//!   `npm_`, PyPI `pypi-`, Twilio `SK…` (and an auth token next to an `AC…`
//!   account SID), SendGrid `SG.…`, Heroku `HRKU-` (or a UUID right after
//!   the word "heroku"), DigitalOcean `dop_v1_`, Shopify `shpat_`,
//!   Hugging Face `hf_`, Telegram bot tokens `123456789:AA…`, Discord bot
//!   tokens and webhook URLs, Mailgun `key-…`, Groq, xAI, Replicate,
//!   Perplexity, Linear, Notion, Vault, Doppler, Postman, Databricks,
//!   Grafana, Sentry, Supabase, Square, Atlassian, `age` secret keys;
//! - JWTs, PEM private key blocks (RSA, EC, DSA, OPENSSH, PKCS#8, encrypted,
//!   PGP), `Bearer …` and `Basic …` credentials, `Cookie:` headers;
//! - passwords inside URLs (`postgres://u:p@h/db`, `redis://:p@h`): only
//!   the password goes, scheme, user and host stay;
//! - `key=value` / `key: value` / `"key": "value"` in free text whose key
//!   passes the key-name test above (`password=…`, `FOO_SECRET=…`,
//!   `AccountKey=…;` in Azure connection strings, `?token=…`, `&api_key=…`,
//!   `access_token=` in URL query strings, plus `key`, `sig` and
//!   `signature` in query strings);
//! - command-line secrets: `--password x`, `--api-key=x`, `curl -u
//!   user:pass`, `mysql -pSECRET`, `sshpass -p x`, `redis-cli -a x`,
//!   `zip -P x`, `sqlcmd -P x`, `docker login -p x`, `smbclient -U u%p`,
//!   `openssl … pass:x`, `sqlplus u/p@db`, and `.netrc` lines
//!   (`machine h login u password p`).
//!
//! Only the secret part is replaced by [`MASK`]; the key, the flag, the
//! scheme, `Bearer`, the URL's host stay, so a reviewer still sees *what*
//! was sent where.
//!
//! # What is kept, and why
//!
//! The classifier, the policy and the human reviewer need to read the
//! arguments, so redaction is targeted, not entropy-based:
//! - e-mail addresses (recipients decide SEND internal vs external), URLs
//!   and hosts without credentials, file paths, numbers;
//! - git SHAs, UUIDs, SHA-256 digests and other hex: a bare 32/40/64-hex
//!   string is an identifier far more often than a secret, so it is only
//!   redacted with context (a secret key name, an `AKIA…`/`AC…`/`heroku`
//!   neighbour);
//! - long base64 strings such as `data:image/png;base64,…` images and file
//!   contents: they are kept unless a known format matches inside them at a
//!   word boundary or they sit under a secret key or flag. Blanking every
//!   long base64 run would destroy file writes and images while the
//!   credentials that matter all have a prefix, a key name or a scheme;
//! - ordinary sentences that mention passwords ("reset your password"),
//!   since there is no `key=value` shape, flag or known format in them.
//!
//! # Limits and cost
//!
//! A clean string costs one scan by one [`RegexSet`] and no allocation
//! ([`Cow::Borrowed`]); only a string the set flags is scanned again by the
//! rules that matched. Objects nested deeper than [`MAX_DEPTH`] are replaced
//! by [`TOO_DEEP`] rather than walked, so no input can exhaust the stack.
//! Nothing here panics on any input.

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

/// True when the value under `key` is a secret. Matched on the key's words,
/// case-insensitively; see the module docs for the rules.
pub fn is_secret_key(key: &str) -> bool {
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
    /// Group `s` must look like a token, not an English word.
    TokenLike,
    /// The secret must look random: at least [`MIN_DISTINCT`] distinct
    /// characters. A run such as `EAAAAAAA…` inside base64 data, or a
    /// placeholder such as `sk-xxxxxxxx…`, is not a key.
    Random,
    /// Group `s` must decode as base64 to `user:password`.
    BasicCredentials,
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

/// Word boundary on ASCII only, so the lazy DFA never has to give up on
/// non-ASCII text.
const B: &str = r"(?-u:\b)";

/// The rules: a regex whose named groups `s`, `s1`‥`s4` (or, lacking them,
/// the whole match) are the secret, plus a check.
fn rules() -> Vec<(String, Check)> {
    let v = value_alternatives();
    let scheme = r"(?:(?i:bearer|basic|token|bot|digest|negotiate|sso-key)\s+)?";
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
        // An AWS secret access key on the same line after its key id.
        (
            r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}[^\n]{0,100}?[^A-Za-z0-9/+=\n](?P<s>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)".into(),
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
            r"AC[0-9a-f]{32}[^\n]{0,100}?[^0-9a-fA-F\n](?P<s>[0-9a-f]{32})(?:[^0-9a-fA-F]|$)".into(),
            Check::Random,
        ),
        (format!(r"{B}SG\.[A-Za-z0-9_-]{{16,}}\.[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (format!(r"{B}HRKU-[A-Za-z0-9_-]{{20,}}"), Check::Random),
        (
            r"(?i)heroku[^\n]{0,60}?(?-u:\b)(?P<s>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})".into(),
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
        // Query-string keys that are secrets only in a URL.
        (
            r#"[?&](?i:key|sig|signature|x-amz-signature|x-goog-signature)=(?P<s>[^&#\s"'\\]+)"#
                .into(),
            Check::None,
        ),
        // --- key=value, key: value, "key": "value" ------------------------------
        (
            format!(
                r#"(?P<k>(?i:[A-Za-z0-9_.-]*(?:pass|pwd|secret|token|key|auth|cookie|cred|sess|dsn|conn|otp|pin|cvv|cvc|bearer|jwt|sig)[A-Za-z0-9_.-]*))(?:\\?["'])?\s*[:=]\s*{scheme}{v}"#
            ),
            Check::SecretKey,
        ),
        // --flag value and -flag value (the `=` form is the rule above).
        (
            r#"(?:^|\s)(?P<k>(?i:--?[A-Za-z0-9_-]*(?:pass|pwd|secret|token|key|auth|cookie|cred|otp|sig)[A-Za-z0-9_-]*))\s+(?:"(?P<s1>(?:[^"\\]|\\.)*)"|'(?P<s2>[^']*)'|(?P<s3>[^\s"'-][^\s"';&|]*))"#
                .into(),
            Check::SecretKey,
        ),
        // --- Command lines -------------------------------------------------------
        (
            format!(
                r#"{B}(?:mysql[a-z]*|mariadb[a-z-]*)(?:\s+[^\s;|&]+)*?\s+-p(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:sshpass|mongo|mongosh|(?:docker|podman|nerdctl|buildah|skopeo|oras|helm(?:\s+registry)?|az|oc|cf)\s+login)(?:\s+[^\s;|&]+)*?\s+(?:-p|--password)(?:\s+|=)?(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"-][^\s'"]*))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:redis-cli|keydb-cli)(?:\s+[^\s;|&]+)*?\s+(?:-a|--pass)\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:zip|unzip|7z|7za|rar|unrar|sqlcmd|bcp)(?:\s+[^\s;|&]+)*?\s+-[pP](?:\s+)?(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"-][^\s'"]*))"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:curl|wget|http|xh)(?:\s+[^\s;|&]+)*?\s+(?:-u|--user|-U|--proxy-user)(?:\s+|=)?['"]?[^\s:'"]*:(?P<s>[^\s'"]+)"#
            ),
            Check::None,
        ),
        (
            format!(
                r#"{B}(?:smbclient|rpcclient|smbmap)(?:\s+[^\s;|&]+)*?\s+(?:-U|--user)(?:\s+|=)?['"]?[^\s%'"]*%(?P<s>[^\s'"]+)"#
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
                r#"{B}(?:openssl(?:\s+[^\s;|&]+)*?\s+-k|ldap[a-z]*(?:\s+[^\s;|&]+)*?\s+-w|ssh-keygen(?:\s+[^\s;|&]+)*?\s+-[NP])\s+(?:'(?P<s1>[^']*)'|"(?P<s2>[^"]*)"|(?P<s3>[^\s'"]+))"#
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
        Check::SecretKey => key.is_some_and(|k| is_secret_key(k.trim_start_matches('-'))),
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
        Check::BasicCredentials => {
            decode_base64(secret).is_some_and(|d| d.contains(&b':') && d.iter().all(|&b| b >= 0x20 && b != 0x7f))
        }
    }
}

/// Byte ranges of `text` that are secrets, sorted and merged.
fn secret_spans(text: &str) -> Vec<(usize, usize)> {
    let rules = &*RULES;
    let mut spans = Vec::new();
    for i in rules.set.matches(text).iter() {
        let rule = &rules.rules[i];
        for caps in rule.re.captures_iter(text) {
            let key = rule.key_group.and_then(|g| caps.get(g)).map(|m| m.as_str());
            let secret = if rule.secret_groups.is_empty() {
                caps.get(0)
            } else {
                rule.secret_groups.iter().find_map(|&g| caps.get(g))
            };
            let Some(secret) = secret else { continue };
            if secret.is_empty() || secret.as_str() == MASK {
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
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        out.push_str(&text[at..s]);
        out.push_str(MASK);
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
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
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let v = if is_secret_key(k) && maskable(v) {
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
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) && maskable(v) {
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
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (is_secret_key(k) && maskable(v)) || text_has_secret(k) || has_secret_at(v, depth + 1)),
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
