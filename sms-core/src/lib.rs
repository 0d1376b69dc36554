//! The domain of the SMS library: who may be texted, what it will cost, and the traits the
//! edges implement.
//!
//! `sms-core` does no network or file I/O: it decides, the edges (`sms-twilio`, `sms-sqlite`,
//! the CLI, a host through the bindings) act. Time always comes in as a parameter.
//!
//! ```
//! use sms_core::{segment, SegmentOptions, Encoding};
//!
//! let count = segment::count("Class starts Monday at 9am in Room 4.", SegmentOptions::default());
//! assert_eq!(count.encoding, Encoding::Gsm7);
//! assert_eq!(count.segments, 1);
//! ```

#![warn(missing_docs)]

pub mod alerts;
pub mod consent;
pub mod dispatch;
pub mod journal;
pub mod keywords;
pub mod optout;
pub mod org;
pub mod phone;
pub mod preview;
pub mod provider;
pub mod quiet;
pub mod recipient;
pub mod reply;
pub mod segment;
pub mod template;
pub mod time;

pub use consent::{AlertKind, BlockReason, Consent, ProgramYear, ProgramYears, Purpose};
pub use dispatch::{
    CancellationToken, DispatchError, DispatchOptions, DispatchSummary, DispatchWarning,
    Dispatcher, Progress, ProgressSnapshot,
};
pub use journal::{
    Campaign, CampaignId, CampaignReport, CampaignSettings, InMemoryJournal, Journal, JournalError,
    RateLimit, RecordState,
};
pub use keywords::{Classification, KeywordClass, OptOutPolicy};
pub use optout::{
    ChangeSource, InMemoryOptOutStore, OptOutAction, OptOutChange, OptOutSnapshot, OptOutState,
    OptOutStore, StoreError,
};
pub use org::{Org, OrgError};
pub use phone::{PhoneError, PhoneNumber, Region};
pub use preview::{Money, Preview, PreviewItem, PreviewOutcome, PreviewSettings, PreviewTotals};
pub use provider::{
    Accepted, Balance, DeliveryStatus, History, OutboundSms, Provider, SendError, SentMessage,
    SimulatedProvider,
};
pub use recipient::{PermittedMarketingMethods, Recipient, RecipientKind, RecordId, RecordKind};
pub use reply::StoredReply;
pub use segment::{Encoding, SegmentCount, SegmentOptions, SegmentReport};
pub use template::{Template, TemplateError};
pub use time::Timestamp;

#[cfg(any(test, feature = "mock"))]
pub use provider::MockProvider;
