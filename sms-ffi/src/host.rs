//! The interfaces a host implements (foreign traits), the adapters that let the core use them,
//! and the rule for calling them: never while a lock is held, never on a runtime worker, and a
//! call back into the client from inside one is refused rather than deadlocking.

use std::cell::Cell;
use std::sync::Arc;

use sms_core::{OptOutSnapshot, OptOutState, PhoneNumber, StoreError};

use crate::error::{HostError, SmsError};
use crate::types::{LogRecord, OptOutChange, SendProgress};

/// Receives progress while `send` and `resume` run. Called on the thread that called `send`,
/// between texts, never while the library holds a lock.
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// The counts changed (a few times a second at most, and at the end).
    fn on_progress(&self, progress: SendProgress) -> Result<(), HostError>;
    /// Something staff should know; the run goes on.
    fn on_warning(&self, warning: String) -> Result<(), HostError>;
}

/// Opt-outs kept in the host's own database. The host stores and returns changes; the library
/// decides what they mean (a START lifts a STOP only if it arrived later and is not dated
/// earlier), so every host gets the same rule.
///
/// Called on a thread of the library's blocking pool, never a runtime worker, and never while
/// a lock is held. A failure stops what needed it: nothing is sent to a number whose state
/// could not be read.
#[uniffi::export(with_foreign)]
pub trait OptOutStore: Send + Sync {
    /// Stores one change durably, after every change stored before it.
    fn record(&self, change: OptOutChange) -> Result<(), HostError>;
    /// Every change of `number` (E.164), in the order they were stored.
    fn history(&self, number: String) -> Result<Vec<OptOutChange>, HostError>;
    /// Every change of every number, in the order they were stored.
    fn all_changes(&self) -> Result<Vec<OptOutChange>, HostError>;
}

/// Receives the library's log records. Called on a thread of its own, in order; never with a
/// secret in the text.
#[uniffi::export(with_foreign)]
pub trait LogWriter: Send + Sync {
    /// One record.
    fn log(&self, record: LogRecord) -> Result<(), HostError>;
}

thread_local! {
    /// Set while this thread is inside a client call or a host callback.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread busy for the guard's life; refuses when it already is (a host callback
/// calling the client again).
pub(crate) struct Busy {
    was: bool,
}

impl Busy {
    /// Enters a client call.
    pub(crate) fn enter_call() -> Result<Busy, SmsError> {
        if BUSY.with(Cell::get) {
            return Err(SmsError::Reentrant(
                "the SMS client was called from inside one of its own callbacks (progress \
                 listener, opt-out store or log writer); call it after the callback returns"
                    .to_owned(),
            ));
        }
        BUSY.with(|b| b.set(true));
        Ok(Busy { was: false })
    }

    /// Enters a host callback: calls to the client from inside it are refused.
    pub(crate) fn enter_callback() -> Busy {
        let was = BUSY.with(|b| b.replace(true));
        Busy { was }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let was = self.was;
        BUSY.with(|b| b.set(was));
    }
}

/// Runs a host callback with the thread marked busy, turning an exception into an error.
pub(crate) fn callback<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, HostError>,
) -> Result<T, SmsError> {
    let _busy = Busy::enter_callback();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(HostError::Failed { reason })) => Err(SmsError::HostCallbackFailed(format!(
            "the host's {what} raised: {reason}"
        ))),
        Err(_) => Err(SmsError::HostCallbackFailed(format!(
            "the host's {what} failed (a panic while calling it)"
        ))),
    }
}

/// The core's opt-out store over a host's [`OptOutStore`]: each call runs on the blocking
/// pool, so a slow host database never stalls the runtime's workers.
pub(crate) struct HostOptOuts {
    pub(crate) host: Arc<dyn OptOutStore>,
}

impl HostOptOuts {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn OptOutStore) -> Result<T, SmsError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || f(&*host))
            .await
            .map_err(|e| StoreError::Unavailable(format!("host opt-out store: {e}")))?
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

fn core_changes(changes: Vec<OptOutChange>) -> Result<Vec<sms_core::OptOutChange>, SmsError> {
    changes
        .iter()
        .map(|c| {
            c.to_core().ok_or_else(|| {
                SmsError::HostCallbackFailed(format!(
                    "the host's opt-out store returned {:?}, which is not an E.164 number",
                    c.number
                ))
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl sms_core::OptOutStore for HostOptOuts {
    async fn record(&self, change: sms_core::OptOutChange) -> Result<(), StoreError> {
        let change = OptOutChange::from(change);
        self.blocking(move |host| callback("opt-out store", || host.record(change)))
            .await
    }

    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError> {
        let history = self.history(number).await?;
        Ok(OptOutState::from_history(&history))
    }

    async fn history(
        &self,
        number: PhoneNumber,
    ) -> Result<Vec<sms_core::OptOutChange>, StoreError> {
        let e164 = number.e164();
        let changes = self
            .blocking(move |host| core_changes(callback("opt-out store", || host.history(e164))?))
            .await?;
        // A host store that answers with other numbers' rows must not decide this number.
        Ok(changes.into_iter().filter(|c| c.number == number).collect())
    }

    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        let changes = self
            .blocking(|host| core_changes(callback("opt-out store", || host.all_changes())?))
            .await?;
        let mut by_number: std::collections::HashMap<PhoneNumber, Vec<sms_core::OptOutChange>> =
            std::collections::HashMap::new();
        for change in changes {
            by_number.entry(change.number).or_default().push(change);
        }
        Ok(OptOutSnapshot::new(by_number.into_iter().filter_map(
            |(number, history)| match OptOutState::from_history(&history) {
                OptOutState::OptedOut { since } => Some((number, since)),
                OptOutState::OptedIn => None,
            },
        )))
    }
}

/// Progress from the dispatcher, passed to the thread that called `send` through a channel:
/// the dispatcher never waits for the host.
pub(crate) enum Event {
    Progress(SendProgress),
    Warning(String),
}

pub(crate) struct ChannelProgress {
    pub(crate) tx: std::sync::mpsc::Sender<Event>,
}

impl sms_core::Progress for ChannelProgress {
    fn on_progress(&self, snapshot: sms_core::ProgressSnapshot) {
        let _ = self.tx.send(Event::Progress(snapshot.into()));
    }

    fn on_warning(&self, warning: sms_core::DispatchWarning) {
        let _ = self.tx.send(Event::Warning(warning.to_string()));
    }
}
