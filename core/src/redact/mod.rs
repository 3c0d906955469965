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
//!   `dsn`, `otp`/`totp`, `cvv`/`cvc` anywhere; `pass`, `pw`, `auth`,
//!   `oauth`, `jwt`, `pin` as the last word; one-word compounds ending in
//!   `password`, `secret` or `token` (`PGPASSWORD`, `clientSecret`);
//! - `token`, except pagination and tokenizer tokens (`page_token`,
//!   `NextToken`, `eos_token`);
//! - `key` after a word that makes it a credential (`api`, `access`,
//!   `secret`, `private`, `signing`, `account`, `ssh`, …), never `key`
//!   alone (`key: "Enter"`, an S3 object key), `public_key` or
//!   `primary_key`;
//! - pairs: `auth_header`, `session_id`, `connection_string`,
//!   `card_number`, `pin_code`, `code_verifier` (OAuth PKCE);
//! - the `value`/`text` beside a `selector`, `element`, `name`, `label`,
//!   `key` or `header` that names a secret (matched on the keys' last
//!   words, so `ParameterKey`/`ParameterValue` and `optionName`/
//!   `optionValue` count): a browser tool typing into `#password`, a
//!   container env entry `{name: "DB_PASSWORD", value: …}`, a CloudFormation
//!   parameter, `{header: "Authorization", value: …}`.
//!
//! **By sibling** (`siblings`, `argv`): an array of strings holding a flag
//! is read once more as one command line, so `["--token", X]`,
//! `["sshpass", "-p", X]` and `["curl", "-u", "u:X"]` lose `X` (the whole
//! element: an argv element is one word); a 40-character AWS secret in
//! another value of the same array or object as an `AKIA…` key id is
//! masked.
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
//!   `AKIA…`/`ASIA…` and the 40-character secret key within 100 characters
//!   after it, Slack `xox?-`/`xapp-` and webhook URLs, Stripe
//!   `sk_live_`/`rk_live_`/`whsec_`, Google `AIza…`/`GOCSPX-`/`ya29.`,
//!   GitLab `glpat-` and siblings, npm `npm_`, PyPI `pypi-`, Twilio `SK…`
//!   and an auth token after an `AC…` SID, SendGrid `SG.…`, Heroku `HRKU-`
//!   (or a UUID shortly after the word "heroku"), DigitalOcean `dop_v1_`,
//!   Shopify `shpat_`, Hugging Face `hf_`, Telegram bot tokens (also
//!   inside `api.telegram.org/bot…`), Discord bot tokens and webhooks,
//!   Mailgun, Mailchimp, Groq, xAI, Replicate, Perplexity, Linear, Notion,
//!   Vault, Doppler, Postman, Databricks, Grafana, Sentry, Supabase,
//!   Square, Meta, Atlassian, Docker Hub `dckr_pat_`/`dckr_oat_`, Microsoft
//!   Entra ID client secrets (`…8Q~…`), Google OAuth refresh tokens
//!   (`1//0…`), `age` keys. A match must look random (at
//!   least ten distinct characters), so placeholders like `sk-xxxx…` and
//!   zero runs inside base64 data are left alone;
//! - JWTs; PEM private key blocks (RSA, EC, DSA, OPENSSH, PKCS#8,
//!   encrypted, PGP) and PuTTY `.ppk` files, line by line over base64 lines
//!   and their own header lines only (so no command can hide between fake
//!   key lines), also when the END line is missing;
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
//!   `sqlplus u/p@db`; `.netrc` entries (`machine h login u password p`);
//! - name/value pairs held in text: `{"name": "API_KEY", "value": …}` in
//!   JSON (also escaped inside a string) and `- name: API_KEY` / `value: …`
//!   in YAML.
//!
//! **Under an encoding** (`encoded`): a base64 run (standard or URL-safe)
//! that decodes to text is scanned by the same rules and masked whole when
//! it hides a secret (base64 of a PEM key, of a service-account JSON, of a
//! `.dockerconfigjson`); ASCII `%XX` escapes are decoded and a secret found
//! masks the encoded bytes it came from (`password%3D…`). Two levels at
//! most (a `.dockerconfigjson` holds base64 inside base64).
//!
//! Only the secret part becomes [`MASK`]: the key, the flag, `Bearer`, the
//! URL's host stay, so a reviewer still sees *what* was sent *where*.
//!
//! **Never shell metasyntax** (`shell`): a value read after a key, flag or
//! scheme (and a string under a secret key) is narrowed to its literal
//! parts. Substitutions (`$(…)`, `` `…` ``, `${…}`, `<(…)`) stay visible
//! with what they hold, and an unquoted value ends at `;`, `|`, `&`, `<`,
//! `>`, `(`, `)` or a line break: `PGPASSWORD=$(rm${IFS}-rf${IFS}~)` is
//! shown as it is, and `export DB_PASSWORD="…" && …` keeps what follows.
//! Whole known formats (a PEM block, a provider key) are masked whole.
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
//!   blanking every long base64 run would destroy file writes and images;
//!   a run is masked only when it decodes to text that holds a secret;
//! - public material: SSH public keys, PEM certificates, Stripe publishable
//!   keys (`pk_live_`);
//! - sentences that merely mention passwords ("reset your password"),
//!   since they have no `key=value` shape, flag or known format.
//!
//! Known trade-offs, all towards masking too much: prose of the form
//! `Password: must be 12 characters` loses the word after the colon, and
//! source code such as `password = getPassword()` loses the expression.
//! A real password holding `$(`, `${` or a backtick shows those parts,
//! and an unquoted one holding `;`, `|`, `&`, `<` or `>` shows what follows
//! them: towards showing too much, so that code is never hidden.
//! Not recognised: secrets with no key, flag, scheme or known prefix (a
//! bare 32-hex token in prose), an AWS secret farther than one level from
//! its key id, encodings other than base64 and `%XX` (hex, gzip), and a
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
//! Clean text costs one scan by one [`RegexSet`] plus two one-pass byte
//! scans (base64 runs, `%` escapes) and no allocation ([`Cow::Borrowed`]); a key costs one short literal scan unless it holds
//! a hint such as `pass`, `key` or `token`. Only text the set flags is
//! scanned again, by the rules that matched; their secret spans are merged
//! and replaced in one pass. `key=value` keys are looked for one after the
//! other, so a key that fails the name test never hides the next one, and
//! the work stays linear. Arrays and objects nested deeper than
//! [`MAX_DEPTH`] are replaced by [`TOO_DEEP`] instead of walked, so no input
//! can exhaust the stack; every regex runs in linear time, and nothing here
//! panics on any input. Release build on the shared 2-core machine (best
//! of 15 runs): a typical clean 300-byte argument object about 2.2 µs
//! ([`has_secret`] about 1.6 µs), a dirty one (`curl -H 'Authorization:
//! Bearer <JWT>'`) about 6.4 µs; a 1 MiB argument, cut to 16 KiB by
//! [`bounded`], about 38 µs of prose or 30 µs of base64 data (see the
//! timing tests in `tests/redact_corpus.rs`).

mod argv;
mod bounded;
mod encoded;
mod keys;
mod mask;
mod rules;
mod shell;
mod siblings;
mod text;
mod whole;

use serde_json::{Map, Value};

pub use bounded::{MAX_SHOWN_STRING, bounded};
pub use keys::is_secret_key;
pub use mask::{MASK, MAX_DEPTH, TOO_DEEP};
pub use text::{redact_text, text_has_secret};

use keys::fills_secret_field;
use std::borrow::Cow;
use whole::whole_mask;

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
        Value::Array(items) => {
            let context = siblings::array_context(items);
            let by_context = |i: usize| context.as_ref().and_then(|c| c[i].clone());
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| by_context(i).unwrap_or_else(|| redact_at(v, depth + 1)))
                    .collect(),
            )
        }
        Value::Object(map) => {
            let fills_secret = fills_secret_field(map);
            let aws = siblings::aws_pair(map.values());
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let shown = redact_text(k);
                let v = match key_mask(k, &shown, v, fills_secret)
                    .or_else(|| aws.then(|| siblings::aws_mask(v)).flatten())
                {
                    Some(masked) => masked,
                    None => redact_at(v, depth + 1),
                };
                out.insert(shown.into_owned(), v);
            }
            Value::Object(out)
        }
        _ => value.clone(),
    }
}

/// The whole-value mask for the value under key `k`, whose redacted text
/// is `shown`: decided on both, so that redacting the result again masks
/// nothing more (a key holding `Bearer eyJ…` is written `Bearer
/// [REDACTED]`, which names a secret).
fn key_mask(k: &str, shown: &str, v: &Value, fills_secret: bool) -> Option<Value> {
    whole_mask(k, v, fills_secret).or_else(|| if shown != k { whole_mask(shown, v, fills_secret) } else { None })
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
            let mut context = siblings::array_context(items);
            let mut changed = false;
            for (i, v) in items.iter_mut().enumerate() {
                match context.as_mut().and_then(|c| c[i].take()) {
                    Some(masked) => {
                        changed |= *v != masked;
                        *v = masked;
                    }
                    None => changed |= redact_in_place_at(v, depth + 1),
                }
            }
            changed
        }
        Value::Object(map) => {
            // Decided on the keys as they came: a secret key stays one
            // after its own text is redacted.
            let fills_secret = fills_secret_field(map);
            let aws = siblings::aws_pair(map.values());
            let child = |k: &str, shown: &str, v: &mut Value| match key_mask(k, shown, v, fills_secret)
                .or_else(|| aws.then(|| siblings::aws_mask(v)).flatten())
            {
                Some(masked) => {
                    *v = masked;
                    true
                }
                None => redact_in_place_at(v, depth + 1),
            };
            let mut changed = false;
            if map.keys().any(|k| text_has_secret(k)) {
                for (k, mut v) in std::mem::take(map) {
                    let shown = redact_text(&k).into_owned();
                    child(&k, &shown, &mut v);
                    map.insert(shown, v);
                }
                changed = true;
            } else {
                for (k, v) in map.iter_mut() {
                    changed |= child(k, k, v);
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
        Value::Array(items) => {
            siblings::array_context(items)
                .is_some_and(|c| c.iter().zip(items).any(|(m, v)| m.as_ref().is_some_and(|m| m != v)))
                || items.iter().any(|v| has_secret_at(v, depth + 1))
        }
        Value::Object(map) => {
            let fills_secret = fills_secret_field(map);
            let aws = siblings::aws_pair(map.values());
            map.iter().any(|(k, v)| {
                whole_mask(k, v, fills_secret).is_some()
                    || (aws && siblings::aws_mask(v).is_some())
                    || text_has_secret(k)
                    || has_secret_at(v, depth + 1)
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
