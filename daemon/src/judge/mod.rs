//! The model judge: asks a language model whether a rule's plain-English
//! condition holds for one call.
//!
//! The core never asks anything: an evaluation returns
//! [`Question`]s and the decision *ask*. [`settle`] (called by the decision
//! path before it decides) answers them — from the cache or the model —
//! and the decision path evaluates again with the [`Answer`]s. The engine
//! lock is held only to evaluate and to touch the cache, never while
//! waiting for the model.
//!
//! Design choices:
//! - **The call is data, never instructions.** The model gets the server,
//!   tool, class and the *redacted* arguments as one JSON document, which
//!   is itself encoded as one JSON string between `<call>` and `</call>`;
//!   `<` and `>` are escaped inside it (`\u003c`, `\u003e`), so the markers
//!   cannot occur inside the block whatever the arguments say. The system
//!   prompt says that nothing inside the call is to be obeyed.
//! - **Only the answer asked for counts.** The reply is constrained to
//!   `{"holds": bool, "reason": "…"}` with the provider's structured
//!   output (OpenAI-compatible: `response_format` with a strict JSON
//!   schema; Anthropic: a forced tool call whose `input_schema` is that
//!   schema). Anything else — another shape, extra keys, prose, a refusal,
//!   an error status, a timeout, no connection — is no answer
//!   ([`Judgement::Unavailable`]), and the core then makes the rule's
//!   outcome *ask*: never *allow*.
//! - **One time limit per question** (`timeout_ms`, connect to last byte),
//!   questions of one call asked concurrently; bodies over 1 MiB are
//!   refused; redirects are not followed (the key must not travel on).
//! - **A cache** keyed by rule, condition, server, tool and the canonical
//!   hash of the (unredacted) arguments, bounded in size (oldest first
//!   out) and in age (`cache_ttl_seconds`). Only real answers are kept; a
//!   changed `[judge]` section empties it.
//! - The API key is read from the environment variable named by
//!   `api_key_env` at each call, never from the policy file.

mod ask;
mod cache;
mod prompt;
pub(crate) mod settle;

pub use ask::{ask, ask_all};
pub use cache::{Cache, Judge, Key};
pub use prompt::{CallView, SYSTEM_PROMPT, call_block, parse_response, request_body, user_prompt};
