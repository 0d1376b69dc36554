//! A deterministic provider that behaves like Twilio's test credentials.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Accepted, Balance, DeliveryStatus, OutboundSms, Provider, SendError, SentMessage};
use crate::phone::PhoneNumber;
use crate::segment::{self, SegmentOptions};
use crate::time::Timestamp;

type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// A public, deterministic stand-in for Twilio, for demos, the CLI's default and your own tests.
///
/// Recipients behave like the magic numbers of Twilio's test credentials:
///
/// | `to` | result |
/// |---|---|
/// | `+15005550001` | bad recipient, 21211 (invalid `To` number) |
/// | `+15005550002` | bad recipient, 21612 (cannot route to this number) |
/// | `+15005550003` | bad recipient, 21408 (no permission for the region) |
/// | `+15005550004` | opted out, 21610 (number replied STOP) |
/// | `+15005550009` | bad recipient, 21614 (not a mobile number, cannot receive SMS) |
/// | anything else | accepted, status `queued`, SID `SM` + 32 hex digits |
///
/// Message ids come from a counter, so the same sequence of sends gives the same ids. Every
/// accepted message is remembered for [`Provider::lookup_sent`].
#[derive(Clone)]
pub struct SimulatedProvider {
    state: Arc<Mutex<State>>,
    clock: Clock,
    balance: Option<Balance>,
}

#[derive(Default)]
struct State {
    seed: u64,
    counter: u64,
    sent: Vec<SentMessage>,
}

impl std::fmt::Debug for SimulatedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedProvider")
            .field("sent", &self.lock().sent.len())
            .field("balance", &self.balance)
            .finish()
    }
}

impl Default for SimulatedProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl SimulatedProvider {
    /// A simulator with the system clock and no balance.
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            clock: Arc::new(Timestamp::now),
            balance: None,
        }
    }

    /// Uses `clock` for the time of each message (tests pass a fixed clock).
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Starts message ids from `seed` (`SM` + 16 hex digits of the seed + 16 of a counter), so
    /// simulators in different processes writing to one journal never reuse an id. The
    /// default seed is 0: the same sends give the same ids.
    pub fn with_id_seed(self, seed: u64) -> Self {
        self.lock().seed = seed;
        self
    }

    /// Reports this balance from [`Provider::balance`].
    pub fn with_balance(mut self, amount: impl Into<String>, currency: impl Into<String>) -> Self {
        self.balance = Some(Balance {
            amount: amount.into(),
            currency: currency.into(),
        });
        self
    }

    /// Every message accepted so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn magic_error(to: PhoneNumber) -> Option<SendError> {
        let bad = |code: u32, message: &str| SendError::BadRecipient {
            code: Some(code),
            message: message.to_owned(),
        };
        Some(match to.digits() {
            15005550001 => bad(21211, "The 'To' number is not a valid phone number."),
            15005550002 => bad(
                21612,
                "The 'To' phone number is not currently reachable via SMS.",
            ),
            15005550003 => bad(
                21408,
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
            ),
            15005550004 => SendError::OptedOut {
                code: Some(21610),
                message: "Attempt to send to unsubscribed recipient".to_owned(),
            },
            15005550009 => bad(21614, "'To' number is not a valid mobile number"),
            _ => return None,
        })
    }
}

#[async_trait]
impl Provider for SimulatedProvider {
    fn name(&self) -> &str {
        "simulator"
    }

    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        if let Some(error) = Self::magic_error(sms.to) {
            return Err(error);
        }
        let segments = segment::count(&sms.body, SegmentOptions::default()).segments;
        let created_at = (self.clock)();
        let mut state = self.lock();
        state.counter += 1;
        let provider_id = format!("SM{:016x}{:016x}", state.seed, state.counter);
        state.sent.push(SentMessage {
            provider_id: provider_id.clone(),
            to: sms.to,
            body: Some(sms.body.clone()),
            status: DeliveryStatus::Queued,
            created_at: Some(created_at),
            segments: Some(segments),
        });
        Ok(Accepted {
            provider_id,
            status: DeliveryStatus::Queued,
            segments: Some(segments),
        })
    }

    async fn balance(&self) -> Result<Option<Balance>, SendError> {
        Ok(self.balance.clone())
    }

    async fn lookup_sent(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<SentMessage>, SendError> {
        let state = self.lock();
        Ok(state
            .sent
            .iter()
            .rev()
            .filter(|m| m.to == to && m.created_at.is_none_or(|at| at >= since))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(e164: &str) -> PhoneNumber {
        PhoneNumber::from_e164(e164).expect("test numbers are valid")
    }

    #[tokio::test]
    async fn behaves_like_twilio_magic_numbers_and_is_deterministic() {
        let clock = || Timestamp::from_unix_ms(1_000);
        let a = SimulatedProvider::new().with_clock(clock);
        let b = SimulatedProvider::new().with_clock(clock);
        let ok = OutboundSms::new(number("+15005550006"), "hello");
        let first = a.send(&ok).await.expect("accepted");
        assert_eq!(first, b.send(&ok).await.expect("accepted"));
        assert_eq!(first.segments, Some(1));

        let err = a
            .send(&OutboundSms::new(number("+15005550009"), "x"))
            .await
            .expect_err("cannot receive SMS");
        assert_eq!(err.code(), Some(21614));
        assert!(err.is_bad_recipient() && !err.is_retryable());
        let err = a
            .send(&OutboundSms::new(number("+15005550004"), "x"))
            .await
            .expect_err("opted out");
        assert!(matches!(
            err,
            SendError::OptedOut {
                code: Some(21610),
                ..
            }
        ));

        let sent = a
            .lookup_sent(number("+15005550006"), Timestamp::from_unix_ms(0))
            .await
            .expect("history");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].provider_id, first.provider_id);
    }
}
