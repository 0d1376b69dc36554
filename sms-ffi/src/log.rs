//! The library logs through `tracing`; a host's [`LogWriter`] receives the records on a thread
//! of its own (never a runtime worker, never under a lock), in order.

use std::fmt::Write as _;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

use crate::error::SmsError;
use crate::host::{LogWriter, callback};
use crate::types::{LogLevel, LogRecord};

/// Records waiting for a slow writer, at most; more are dropped (and counted) rather than
/// stalling the sends that log them.
const QUEUE: usize = 10_000;

struct Sink {
    tx: SyncSender<LogRecord>,
    max: Mutex<Option<LogLevel>>,
    writer: Arc<Mutex<Option<Arc<dyn LogWriter>>>>,
    dropped: std::sync::atomic::AtomicU64,
}

static SINK: OnceLock<Result<Sink, String>> = OnceLock::new();

fn sink() -> Result<&'static Sink, SmsError> {
    SINK.get_or_init(|| {
        let (tx, rx) = sync_channel::<LogRecord>(QUEUE);
        let writer: Arc<Mutex<Option<Arc<dyn LogWriter>>>> = Arc::new(Mutex::new(None));
        let for_thread = writer.clone();
        std::thread::Builder::new()
            .name("sms-log".to_owned())
            .spawn(move || {
                for record in rx {
                    // The writer is cloned out of the lock: the host is never called under it.
                    let current = for_thread
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    if let Some(writer) = current {
                        // A writer that raises loses that record only.
                        let _ = callback("log writer", || writer.log(record));
                    }
                }
            })
            .map_err(|e| format!("cannot start the log thread: {e}"))?;
        let subscriber = tracing_subscriber::registry().with(Forward);
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| format!("another tracing subscriber is installed in this process: {e}"))?;
        Ok(Sink {
            tx,
            max: Mutex::new(None),
            writer,
            dropped: std::sync::atomic::AtomicU64::new(0),
        })
    })
    .as_ref()
    .map_err(|e| SmsError::Configuration(e.clone()))
}

/// Sends the library's log records at `max_level` and above to `writer` (replacing any writer
/// set before). Records are delivered on a thread of the library's, in order.
#[uniffi::export]
pub fn set_log_writer(writer: Arc<dyn LogWriter>, max_level: LogLevel) -> Result<(), SmsError> {
    let sink = sink()?;
    *sink.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer);
    *sink.max.lock().unwrap_or_else(PoisonError::into_inner) = Some(max_level);
    Ok(())
}

/// Stops sending log records to the host.
#[uniffi::export]
pub fn clear_log_writer() {
    if let Some(Ok(sink)) = SINK.get() {
        *sink.max.lock().unwrap_or_else(PoisonError::into_inner) = None;
        *sink.writer.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Log records dropped because the host's writer could not keep up.
#[uniffi::export]
pub fn dropped_log_records() -> u64 {
    match SINK.get() {
        Some(Ok(sink)) => sink.dropped.load(std::sync::atomic::Ordering::Relaxed),
        _ => 0,
    }
}

fn level(l: &Level) -> LogLevel {
    match *l {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

struct Forward;

#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(Ok(sink)) = SINK.get() else { return };
        let Some(max) = *sink.max.lock().unwrap_or_else(PoisonError::into_inner) else {
            return;
        };
        let lvl = level(event.metadata().level());
        if lvl > max {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let record = LogRecord {
            level: lvl,
            target: event.metadata().target().to_owned(),
            text: format!("{}{}", text.message, text.fields),
        };
        if let Err(TrySendError::Full(_)) = sink.tx.try_send(record) {
            sink.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
