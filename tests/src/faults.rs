//! A provider that fails on cue: slow down, try later, unknown outcomes (sent or not), bad
//! recipients, and "crashes" (a call that never returns, before or after the message was
//! created), with a history that answers `lookup_sent` consistently.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use sms_core::optout::{ChangeSource, OptOutAction, OptOutChange, OptOutStore};
use sms_core::{
    Accepted, Balance, DeliveryStatus, OutboundSms, PhoneNumber, Provider, SendError, SentMessage,
    Timestamp,
};
use tokio::sync::Notify;

/// What one `send` call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Accept the text.
    Accept,
    /// 429, with this `retry_after_ms`.
    SlowDown(u64),
    /// A temporary failure, nothing created.
    TryLater,
    /// Create the message, then answer `Unknown` (a timeout after the request was written).
    UnknownSent,
    /// Answer `Unknown` without creating anything.
    UnknownNotSent,
    /// Refuse the recipient for good.
    BadRecipient,
    /// Panic inside the call, nothing created.
    Panic,
    /// Never answer, nothing created: the process dies before the request left.
    CrashBefore,
    /// Create the message, then never answer: the process dies before reading the answer.
    CrashAfter,
}

/// The provider. Calls consume the script in order; once it is empty every call is accepted.
#[derive(Clone, Default)]
pub struct FaultProvider {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    crashed: Notify,
}

#[derive(Default)]
struct State {
    script: VecDeque<Fault>,
    sent: Vec<SentMessage>,
    calls: u64,
    history_unavailable: bool,
    stop_after: Option<(usize, PhoneNumber, Arc<dyn OptOutStore>)>,
}

impl FaultProvider {
    /// A provider following `script`.
    pub fn new(script: impl IntoIterator<Item = Fault>) -> Self {
        let provider = Self::default();
        provider.lock().script = script.into_iter().collect();
        provider
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends calls to the script.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().script.extend(faults);
    }

    /// Makes `lookup_sent` fail as on a provider without history.
    pub fn without_history(self) -> Self {
        self.lock().history_unavailable = true;
        self
    }

    /// Once `accepted` texts went out, `number` replies STOP: it is recorded in `store` (as the
    /// inbound handler would) before the next call is answered.
    pub fn stop_after(
        self,
        accepted: usize,
        number: PhoneNumber,
        store: Arc<dyn OptOutStore>,
    ) -> Self {
        self.lock().stop_after = Some((accepted, number, store));
        self
    }

    /// Resolves when a call "crashed" (will never answer).
    pub async fn crashed(&self) {
        self.inner.crashed.notified().await;
    }

    /// Every message created, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    /// Messages created per body.
    pub fn per_body(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for m in self.lock().sent.iter() {
            *counts
                .entry(m.body.clone().unwrap_or_default())
                .or_default() += 1;
        }
        counts
    }

    /// `send` calls made.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    fn create(state: &mut State, sms: &OutboundSms) -> Accepted {
        let provider_id = format!("SM{:032x}", state.sent.len() + 1);
        state.sent.push(SentMessage {
            provider_id: provider_id.clone(),
            to: sms.to,
            body: Some(sms.body.clone()),
            status: DeliveryStatus::Queued,
            created_at: Some(Timestamp::now()),
            segments: Some(1),
        });
        Accepted {
            provider_id,
            status: DeliveryStatus::Queued,
            segments: Some(1),
        }
    }
}

#[async_trait]
impl Provider for FaultProvider {
    fn name(&self) -> &str {
        "faults"
    }

    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        let (result, stop) = {
            let mut state = self.lock();
            state.calls += 1;
            let fault = state.script.pop_front().unwrap_or(Fault::Accept);
            let result = match fault {
                Fault::Accept => Ok(Self::create(&mut state, sms)),
                Fault::SlowDown(ms) => Err(SendError::SlowDown {
                    code: Some(20429),
                    message: "Too Many Requests".into(),
                    retry_after_ms: Some(ms),
                }),
                Fault::TryLater => Err(SendError::TryLater {
                    code: Some(503),
                    message: "Service Unavailable".into(),
                }),
                Fault::UnknownSent => {
                    Self::create(&mut state, sms);
                    Err(SendError::Unknown {
                        message: "timed out reading the answer".into(),
                    })
                }
                Fault::UnknownNotSent => Err(SendError::Unknown {
                    message: "connection reset".into(),
                }),
                Fault::BadRecipient => Err(SendError::BadRecipient {
                    code: Some(21211),
                    message: "invalid To".into(),
                }),
                Fault::Panic => {
                    drop(state);
                    panic!("the provider crashed");
                }
                Fault::CrashBefore | Fault::CrashAfter => {
                    if fault == Fault::CrashAfter {
                        Self::create(&mut state, sms);
                    }
                    Err(SendError::Unsupported {
                        message: "crashed".into(),
                    })
                }
            };
            if matches!(fault, Fault::CrashBefore | Fault::CrashAfter) {
                (None, None)
            } else {
                let stop = match &state.stop_after {
                    Some((after, number, store)) if state.sent.len() == *after => {
                        Some((*number, store.clone()))
                    }
                    _ => None,
                };
                if stop.is_some() {
                    state.stop_after = None;
                }
                (Some(result), stop)
            }
        };
        let Some(result) = result else {
            self.inner.crashed.notify_one();
            return std::future::pending().await;
        };
        if let Some((number, store)) = stop {
            store
                .record(OptOutChange {
                    number,
                    action: OptOutAction::Stop,
                    at: Timestamp::now(),
                    source: ChangeSource::Inbound,
                    message_sid: None,
                    body: Some("STOP".into()),
                })
                .await
                .expect("the test store records the STOP");
        }
        result
    }

    async fn balance(&self) -> Result<Option<Balance>, SendError> {
        Ok(None)
    }

    async fn lookup_sent(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<SentMessage>, SendError> {
        let state = self.lock();
        if state.history_unavailable {
            return Err(SendError::Unsupported {
                message: "this provider keeps no history".into(),
            });
        }
        Ok(state
            .sent
            .iter()
            .rev()
            .filter(|m| m.to == to && m.created_at.is_none_or(|at| at >= since))
            .cloned()
            .collect())
    }
}
