//! The value patterns: one regex per secret shape, with a check.

use std::sync::{LazyLock, OnceLock};

use regex::{Regex, RegexSet, RegexSetBuilder};

use super::keys::is_secret_key;

/// An extra test on a rule's match before its secret groups are masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// The regex alone decides.
    None,
    /// Group `k` must pass [`is_secret_key`].
    SecretKey,
    /// The match is a key and its separator; the key must pass
    /// [`is_secret_key`], and the secret is the value [`VALUE`] reads after
    /// the match (see `key_value_spans`).
    KeyValue,
    /// The match is a name/value pair up to the value's separator (`"name":
    /// "API_KEY", "value": `, YAML `name: API_KEY` then `value:`); group `k`
    /// (the name) must name a secret, and the secret is the value
    /// [`VALUE`] reads after the match.
    NamedValue,
    /// A private key block matched line by line: its last line counts only
    /// when it ends where a line ends (see `text::whole_lines`), so the
    /// first word of a command after a fake key is never masked with it.
    KeyBlock,
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
        r#"(?:"(?P<s1>(?:[^"\\\r\n]|\\.)*)(?:"|$)|'(?P<s2>[^'\r\n]*)(?:'|$)|\\"(?P<s3>(?:[^"\\\r\n]|\\[^"\r\n])*)(?:\\"|$)|(?P<s4>{BARE}))"#
    )
}

/// The value after a secret key and its separator, read from the separator
/// on: an optional auth scheme (`Bearer`, `token` …, kept), then the value.
pub(super) static VALUE: LazyLock<Regex> = LazyLock::new(|| {
    let scheme = r"(?:(?i:bearer|basic|token|bot|digest|negotiate|sso-key)\s+)?";
    Regex::new(&format!("^{scheme}{}", value_alternatives())).expect("value pattern compiles")
});

/// Word boundary on ASCII only, so the lazy DFA never has to give up on
/// non-ASCII text.
const B: &str = r"(?-u:\b)";

/// Between the lines of a private key block: a line break, real or escaped
/// once or more (a key inside JSON text inside a string), with blanks.
const KEY_SEP: &str = r"[ \t]*(?:\r?\n|(?:\\+r)?\\+n)[ \t]*";

/// One line of a key's body: base64 only. A key block is masked only as far
/// as such lines (and its own header lines) go, so no command with
/// arguments or shell syntax can hide inside a fake key: `rm -rf ~` or
/// `curl … | sh` between BEGIN and END lines ends the block.
const KEY_LINE: &str = r"[A-Za-z0-9+/=]+";

/// The rules: a regex whose named groups `s`, `s1`‥`s4` (or, lacking them,
/// the whole match) are the secret, plus a check.
fn rules() -> Vec<(String, Check)> {
    let mut r: Vec<(String, Check)> = vec![
        // --- Private keys and signed tokens -----------------------------------
        (
            format!(
                r"-----BEGIN[A-Z0-9 ]{{0,40}}PRIVATE KEY[A-Z ]{{0,10}}-----(?:{KEY_SEP}(?:(?:Proc-Type|DEK-Info|Version|Comment|Hash|Charset):[ \t]*[A-Za-z0-9,.:/ -]{{0,100}}|{KEY_LINE}|-----END[A-Z0-9 ]{{0,40}}PRIVATE KEY[A-Z ]{{0,10}}-----)|[ \t]+[A-Za-z0-9+/=]{{40,}})*"
            ),
            Check::KeyBlock,
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
        // An AWS secret access key within 100 characters after its key id. The
        // gap never crosses a `[`, so a mask (which shortens the text) cannot
        // bring a farther candidate into reach: redaction stays idempotent.
        (
            r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}[^\[]{0,100}?[^A-Za-z0-9/+=\[](?P<s>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)".into(),
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
            format!(r"(?:{B}|bot)(?P<s>[0-9]{{5,12}}:[A-Za-z0-9_-]{{30,50}})(?:[^A-Za-z0-9_-]|$)"),
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
        // Docker Hub personal and organisation access tokens.
        (format!(r"{B}dckr_(?:pat|oat)_[A-Za-z0-9_-]{{20,}}"), Check::Random),
        // Microsoft Entra ID (Azure AD) client secrets: three characters, a
        // digit, `Q~`, then 31-34 more.
        (
            // No boundaries: `~ . -` are not word characters, and a consumed
            // separator would hide a second secret right after the first.
            r"[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}".into(),
            Check::Random,
        ),
        // Google OAuth refresh tokens.
        (format!(r"{B}1//0[A-Za-z0-9_-]{{30,}}"), Check::Random),
        // PuTTY private key files (.ppk), versions 2 and 3, whole.
        (
            format!(
                r"PuTTY-User-Key-File-[0-9]+:[ \t]*[A-Za-z0-9@._-]{{0,60}}(?:{KEY_SEP}(?:[A-Za-z0-9-]{{1,30}}:[ \t]*[A-Za-z0-9 ,.@_+/=-]{{0,100}}|{KEY_LINE}))*"
            ),
            Check::KeyBlock,
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
            r#"(?P<k>(?i:[A-Za-z0-9_.-]*(?:pass|pw|secret|token|key|auth|cookie|cred|sess|dsn|conn|otp|pin|cvv|cvc|bearer|jwt|sig|verifier)[A-Za-z0-9_.-]*))(?:\\?["'])?\s*[:=]\s*"#
                .into(),
            Check::KeyValue,
        ),
        // Name/value pairs held in text: container env lists, CloudFormation
        // parameters, `{"key": …, "value": …}` (JSON, maybe escaped, or YAML).
        (
            r#"(?i)\\?"[a-z_]*(?:name|key)\\?"\s*:\s*\\?"(?P<k>[^"\\\n]{1,100})\\?"\s*,\s*\\?"[a-z_]*value\\?"\s*:\s*"#.into(),
            Check::NamedValue,
        ),
        (
            r#"(?im)(?:^|[\s{,-])(?:name|key)[ \t]*:[ \t]*["']?(?P<k>[A-Za-z0-9_.-]{1,100})["']?[ \t]*(?:(?:\r?\n|(?:\\r)?\\n)\s*-?\s*|,\s*)value[ \t]*:[ \t]*"#.into(),
            Check::NamedValue,
        ),
        // --flag value and -flag value (the `=` form is the rule above).
        (
            r#"(?:^|\s)(?P<k>(?i:--?[A-Za-z0-9_-]*(?:pass|pw|secret|token|key|auth|cookie|cred|sess|otp|sig)[A-Za-z0-9_-]*))\s+(?:"(?P<s1>(?:[^"\\]|\\.)*)"|'(?P<s2>[^']*)'|(?P<s3>[^\s"'-][^\s"';&|]*))"#
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

pub(super) struct Rule {
    pub(super) re: Regex,
    pub(super) check: Check,
    /// Indices of the secret groups (`s`, `s1`‥); empty: the whole match.
    pub(super) secret_groups: Vec<usize>,
    /// Index of the `k` group, for [`Check::SecretKey`].
    pub(super) key_group: Option<usize>,
}

/// The rules: one set that says which may match, and each rule's own
/// regex, compiled the first time the set names it. Clean text (most of
/// it) is read by the set alone, and a process that never meets a secret
/// never holds the rules' compiled forms (about half the redaction's
/// memory, and of its start-up time).
pub(super) struct Rules {
    pub(super) set: RegexSet,
    specs: Vec<(String, Check)>,
    compiled: Vec<OnceLock<Rule>>,
}

impl Rules {
    /// The rule at `i` (an index the set reports), compiled on first use.
    pub(super) fn rule(&self, i: usize) -> &Rule {
        self.compiled[i].get_or_init(|| {
            let (p, check) = &self.specs[i];
            let re =
                regex::RegexBuilder::new(p).size_limit(64 << 20).build().expect("built-in redaction pattern compiles");
            let names: Vec<(usize, &str)> =
                re.capture_names().enumerate().filter_map(|(i, n)| n.map(|n| (i, n))).collect();
            let secret_groups = names.iter().filter(|(_, n)| n.starts_with('s')).map(|&(i, _)| i).collect();
            let key_group = names.iter().find(|(_, n)| *n == "k").map(|&(i, _)| i);
            Rule { re, check: *check, secret_groups, key_group }
        })
    }
}

pub(super) static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let specs = rules();
    let set = RegexSetBuilder::new(specs.iter().map(|(p, _)| p.as_str()))
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
        .expect("built-in redaction patterns compile");
    let compiled = specs.iter().map(|_| OnceLock::new()).collect();
    Rules { set, specs, compiled }
});

pub(super) fn passes(check: Check, key: Option<&str>, secret: &str) -> bool {
    match check {
        Check::None | Check::KeyBlock => true,
        Check::NamedValue => key.is_some_and(|k| {
            let (words, n) = super::keys::key_words(k);
            super::keys::words_name_secret(&words[..n])
        }),
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
        Check::BasicCredentials => super::encoded::decode_base64(secret)
            .is_some_and(|d| d.contains(&b':') && d.iter().all(|&b| b >= 0x20 && b != 0x7f)),
    }
}
