//! Settling a call's questions before the decision path decides.

use std::sync::Arc;
use std::time::Instant;

use latch_core::Call;
use latch_core::policy::{Answer, Judgement, Question};
use serde_json::Value;

use super::ask::ask_concurrently;
use super::cache::Key;
use super::prompt::CallView;
use crate::shared::Shared;

/// How many times a call is evaluated again with new answers (a policy
/// reloaded meanwhile can raise new questions); what is still open after
/// that is decided *ask* by the core.
const MAX_ROUNDS: usize = 3;

/// The answers a call needs before it can be decided: evaluates (under the
/// engine lock, briefly), takes what the cache knows, asks the model for
/// the rest (lock released), stores the answers, and repeats until no
/// question is open. Returns at once, with nothing, when no rule of the
/// policy has a condition.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle(
    shared: &Shared,
    conn: u64,
    server: &str,
    tool: &str,
    args: &Arc<Value>,
    redacted: &Value,
    args_hash: &str,
    large: bool,
) -> Vec<Answer> {
    let mut answers: Vec<Answer> = Vec::new();
    let call = Call { server, tool, args };
    for _ in 0..MAX_ROUNDS {
        // The same facts as the decision path, so that the questions asked
        // are the ones that decision can need. A large call is evaluated
        // on the blocking pool, against a copy of the policy.
        let verdict = if large {
            let (policy, def, facts) = {
                let eng = shared.engine();
                if !eng.policy.has_conditions() {
                    return answers;
                }
                (eng.policy.clone(), eng.tool_def(conn, tool).cloned(), eng.facts(conn, server, tool))
            };
            let (a, s, t, known) = (args.clone(), server.to_owned(), tool.to_owned(), answers.clone());
            let work = tokio::task::spawn_blocking(move || {
                let env = policy.default_path_env().clone();
                let place = latch_core::policy::Place::new(&env, None);
                let call = Call { server: &s, tool: &t, args: &a };
                latch_core::decide_with(&policy, &call, def.as_ref(), &known, place, facts)
            });
            // Without an evaluation the questions stay open: the core asks.
            let Ok(verdict) = work.await else { return answers };
            verdict
        } else {
            let eng = shared.engine();
            if !eng.policy.has_conditions() {
                return answers;
            }
            let env = eng.policy.default_path_env().clone();
            let place = latch_core::policy::Place::new(&env, None);
            let facts = eng.facts(conn, server, tool);
            let def = eng.tool_def(conn, tool);
            latch_core::decide_with(&eng.policy, &call, def, &answers, place, facts)
        };
        if verdict.evaluation.questions.is_empty() {
            return answers;
        }
        let (http, conf, open, class) = {
            let mut eng = shared.engine();
            let Some(conf) = eng.policy.judge().cloned() else { return answers };
            let http = match eng.judge.prepare(&conf) {
                Ok(h) => h,
                Err(why) => {
                    let qs = &verdict.evaluation.questions;
                    answers.extend(qs.iter().map(|q| Answer::to(q, Judgement::Unavailable { why: why.clone() })));
                    continue;
                }
            };
            let now = Instant::now();
            let mut open = Vec::new();
            for q in verdict.evaluation.questions {
                match eng.judge.cache.get(&key(&q, server, tool, args_hash), now) {
                    Some((true, reason)) => answers.push(Answer::to(&q, Judgement::Holds { reason })),
                    Some((false, reason)) => answers.push(Answer::to(&q, Judgement::DoesNotHold { reason })),
                    None => open.push(q),
                }
            }
            if open.is_empty() {
                continue;
            }
            (http, conf, open, verdict.classification.class)
        };
        let view = CallView { server, tool, class, args: redacted };
        let got = ask_concurrently(&http, &conf, &open, &view).await;
        {
            let mut eng = shared.engine();
            // Only for the judge these answers came from.
            if eng.judge.conf.as_ref() == Some(&conf) {
                let now = Instant::now();
                for (q, a) in open.iter().zip(&got) {
                    let (holds, reason) = match &a.judgement {
                        Judgement::Holds { reason } => (true, reason),
                        Judgement::DoesNotHold { reason } => (false, reason),
                        Judgement::Unavailable { .. } => continue,
                    };
                    eng.judge.cache.insert(key(q, server, tool, args_hash), holds, reason.clone(), now);
                }
            }
        }
        answers.extend(got);
    }
    answers
}

fn key(q: &Question, server: &str, tool: &str, args_hash: &str) -> Key {
    Key {
        rule: q.rule.clone(),
        condition: q.condition.clone(),
        server: server.to_owned(),
        tool: tool.to_owned(),
        args_hash: args_hash.to_owned(),
    }
}
