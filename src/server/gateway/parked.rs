//! Upstream calls held open for a client of the 2026-07-28 revision.
//!
//! An upstream of the 2025 revisions asks its client things in the middle of a call
//! (`elicitation/create`, `sampling/createMessage`, `roots/list`) and waits for the answer on
//! the same call. A 2026-07-28 client cannot be sent requests: it is answered with an
//! `InputRequiredResult` and retries. So the upstream call runs in a task of its own; when the
//! upstream asks something, the call is parked here under a random id (sealed into the
//! `requestState` by `input`), the client is handed the question, and its retry finds the call
//! again, gives the upstream the answer and waits on, for the result or the next question.
//!
//! A parked call lives in this process: a retry that reaches another replica, or comes after
//! `STATE_TTL_SECS`, finds nothing and is told to call again. The upstream's own request
//! timeout bounds how long it waits on the person either way.

use std::collections::HashMap;
use std::sync::Mutex;

use rmcp::ErrorData;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::input::{InputNeeded, STATE_TTL_SECS};
use crate::server::clock::UnixTime;
use crate::server::secrets::random_token;

/// The key of the upstream's question among the round's input requests.
pub const QUESTION_KEY: &str = "upstream";
/// Parked calls held at once; beyond it the oldest is let go (its upstream call cancelled).
const MAX_PARKED: usize = 1_000;

/// A request an upstream sent about a call, waiting for the client's answer.
pub struct Question {
    method: &'static str,
    params: Value,
    answer: oneshot::Sender<Result<Value, ErrorData>>,
}

/// Where the relay puts an upstream's request about a call whose client answers in rounds.
#[derive(Clone)]
pub struct Asker(mpsc::Sender<Question>);

impl Asker {
    fn channel() -> (Asker, mpsc::Receiver<Question>) {
        let (tx, rx) = mpsc::channel(4);
        (Asker(tx), rx)
    }

    /// Hands `method` to the client in the next round and waits for its answer (a JSON
    /// result of that method).
    pub async fn ask(&self, method: &'static str, params: Value) -> Result<Value, ErrorData> {
        let (answer, answered) = oneshot::channel();
        let gone = || {
            ErrorData::internal_error(
                "the MCP client's call through Gatehouse ended before it answered",
                None,
            )
        };
        self.0
            .send(Question {
                method,
                params,
                answer,
            })
            .await
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// Cancels the upstream call when the last holder of it lets go.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// An upstream call running in its task, and the questions it asks.
pub struct Running<T> {
    task: JoinHandle<T>,
    questions: mpsc::Receiver<Question>,
    _stop: StopOnDrop,
}

/// What the task of a call is given: where its questions go, and its cancellation.
pub struct CallHooks {
    pub asker: Asker,
    pub cancelled: CancellationToken,
}

impl<T: Send + 'static> Running<T> {
    /// Starts `call` in a task of its own, built from the hooks it is given.
    pub fn start<F, Fut>(call: F) -> Self
    where
        F: FnOnce(CallHooks) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (asker, questions) = Asker::channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(call(CallHooks {
            asker,
            cancelled: stop.clone(),
        }));
        Running {
            task,
            questions,
            _stop: StopOnDrop(stop),
        }
    }
}

struct Parked<T> {
    running: Running<T>,
    waiting: oneshot::Sender<Result<Value, ErrorData>>,
    at: UnixTime,
}

/// Where a call stands after waiting on it.
pub enum Waited<T> {
    /// The call ended with this.
    Done(T),
    /// The upstream asked something: hand the client these requests.
    Asked(InputNeeded),
    /// The parked call named in the state is not here.
    Gone,
}

/// The calls waiting on their clients' answers, by id.
pub struct ParkedCalls<T> {
    calls: Mutex<HashMap<String, Parked<T>>>,
}

impl<T> Default for ParkedCalls<T> {
    fn default() -> Self {
        ParkedCalls {
            calls: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Send + 'static> ParkedCalls<T> {
    /// Waits for `running` to end or to ask something; a question parks it.
    pub async fn wait(&self, mut running: Running<T>, now: UnixTime) -> Waited<T> {
        let question = tokio::select! {
            ended = &mut running.task => return match ended {
                Ok(value) => Waited::Done(value),
                // The task panicked or was aborted: nothing to hand back but that.
                Err(_) => Waited::Gone,
            },
            Some(question) = running.questions.recv() => question,
        };
        let id = random_token();
        let needed = InputNeeded::new()
            .ask(QUESTION_KEY, question.method, question.params)
            .with_state(json!({ "parked": id }));
        let mut calls = self.calls.lock().expect("parked calls lock");
        calls.retain(|_, p| p.at + STATE_TTL_SECS > now && !p.waiting.is_closed());
        if calls.len() >= MAX_PARKED
            && let Some(oldest) = calls
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone())
        {
            calls.remove(&oldest);
        }
        calls.insert(
            id,
            Parked {
                running,
                waiting: question.answer,
                at: now,
            },
        );
        Waited::Asked(needed)
    }

    /// Gives the call parked under `state` the client's `answer` and waits on it again.
    pub async fn resume(&self, state: &Value, answer: Option<Value>, now: UnixTime) -> Waited<T> {
        let parked = state["parked"]
            .as_str()
            .and_then(|id| self.calls.lock().expect("parked calls lock").remove(id));
        let Some(parked) = parked else {
            return Waited::Gone;
        };
        let answer = answer.ok_or_else(|| {
            ErrorData::invalid_params(
                format!("the MCP client sent no answer under inputResponses.{QUESTION_KEY}"),
                None,
            )
        });
        // The upstream may have given up meanwhile (its own timeout): then the call's
        // result says so.
        let _ = parked.waiting.send(answer);
        self.wait(parked.running, now).await
    }
}

/// Whether a round's `state` names a parked call (a later round of an upstream call).
pub fn names_parked_call(state: Option<&Value>) -> bool {
    state.is_some_and(|s| s.get("parked").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks_twice() -> Running<String> {
        Running::start(|hooks| async move {
            let a = hooks.asker.ask("roots/list", json!({})).await;
            let b = hooks
                .asker
                .ask("elicitation/create", json!({"message": "colour?"}))
                .await;
            format!("{:?} {:?}", a.ok(), b.ok())
        })
    }

    fn state_of(needed: &InputNeeded) -> Value {
        needed.state().cloned().expect("a parked call has state")
    }

    #[tokio::test]
    async fn a_call_asks_in_rounds_and_ends_with_its_answers() {
        let parked = ParkedCalls::default();
        let Waited::Asked(first) = parked.wait(asks_twice(), 100).await else {
            panic!("the call asks first");
        };
        let Waited::Asked(second) = parked
            .resume(&state_of(&first), Some(json!({"roots": []})), 101)
            .await
        else {
            panic!("then asks again");
        };
        assert_ne!(state_of(&first), state_of(&second));
        // The first state was used up.
        assert!(matches!(
            parked.resume(&state_of(&first), Some(json!({})), 102).await,
            Waited::Gone
        ));
        let Waited::Done(out) = parked
            .resume(&state_of(&second), Some(json!({"action": "decline"})), 102)
            .await
        else {
            panic!("then ends");
        };
        assert_eq!(
            out,
            r#"Some(Object {"roots": Array []}) Some(Object {"action": String("decline")})"#
        );
    }

    #[tokio::test]
    async fn an_expired_or_unknown_call_is_gone_and_its_upstream_call_is_cancelled() {
        let parked = ParkedCalls::default();
        let stopped = CancellationToken::new();
        let seen = stopped.clone();
        let running = Running::start(move |hooks| async move {
            let _ = hooks.asker.ask("roots/list", json!({})).await;
            hooks.cancelled.cancelled().await;
            seen.cancel();
            String::new()
        });
        let Waited::Asked(first) = parked.wait(running, 100).await else {
            panic!("asks");
        };
        // Another call parked after the first's time is up sweeps it away.
        let Waited::Asked(_) = parked.wait(asks_twice(), 100 + STATE_TTL_SECS).await else {
            panic!("asks");
        };
        assert!(matches!(
            parked.resume(&state_of(&first), Some(json!({})), 100).await,
            Waited::Gone
        ));
        tokio::time::timeout(std::time::Duration::from_secs(5), stopped.cancelled())
            .await
            .expect("the swept call's upstream call was cancelled");
        assert!(matches!(
            parked.resume(&json!({"parked": "nope"}), None, 100).await,
            Waited::Gone
        ));
    }
}
