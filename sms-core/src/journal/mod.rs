//! The send journal: every campaign, its frozen recipient list, and each record's progress
//! from planned to accepted (or why not), written durably around every provider call.
//!
//! A campaign is stored with the preview it was made from (rendered bodies included), so a
//! resume never re-runs the host's filter. Records are addressed by their position (`seq`) in
//! that list, because a host's record ids are not promised to be unique.
//!
//! | implementation | for |
//! |---|---|
//! | [`InMemoryJournal`] | tests and demos: nothing survives the process |
//! | `sms_sqlite::SqliteStore` | the embedded durable default |
//! | `sms_postgres::PgStore` | the shared store: many organisations, several servers |
//!
//! The transition rules live here ([`RecordState::may_become`]) so that every journal refuses
//! the same impossible writes: above all, an accepted record can never be marked `sending`
//! again, which is what makes "never texted twice" hold even against a dispatcher bug.

pub mod fleet;
mod memory;
mod record;
mod report;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::preview::{Money, Preview, PreviewItem, PreviewOutcome};
use crate::quiet::QuietRule;
use crate::time::Timestamp;

pub use fleet::{FleetJournal, Outstanding, WorkerId};
pub use memory::InMemoryJournal;

pub use record::{Delivery, DeliveryUpdate, RecordEntry, RecordState, SendFailure, Transition};
pub use report::{CampaignReport, RecordReport, ReportTotals, load_report};

/// A campaign's id: chosen by the host (`"fall-reminder"`) or generated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CampaignId(String);

impl CampaignId {
    /// A campaign id: letters, digits, `-` and `_`, at most 64 (surrounding white space is
    /// removed). `None` otherwise.
    pub fn new(id: impl AsRef<str>) -> Option<CampaignId> {
        let id = id.as_ref().trim();
        // Ids are typed back into commands (`sms resume ID`) and name lock files: keep them
        // to characters that need no quoting anywhere.
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| CampaignId(id.to_owned()))
    }

    /// An id made from the time, such as `campaign-20261125-201511-042`.
    pub fn generate(now: Timestamp) -> CampaignId {
        let text = now.to_string(); // 2026-11-25T20:15:11Z
        let compact: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
        let (date, time) = compact.split_at(compact.len().min(8));
        CampaignId(format!(
            "campaign-{date}-{time}-{:03}",
            now.unix_ms().rem_euclid(1000)
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How fast texts may go out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "limit", rename_all = "snake_case")]
pub enum RateLimit {
    /// No pacing: as fast as the provider and the journal allow (tests, benchmarks).
    Unlimited,
    /// At most this many messages per second (a US long code sends 1 per second).
    MessagesPerSecond {
        /// Messages per second, greater than zero.
        per_second: f64,
    },
    /// At most this many segments (message units) per second: how some senders are metered.
    SegmentsPerSecond {
        /// Segments per second, greater than zero.
        per_second: f64,
    },
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::MessagesPerSecond { per_second: 1.0 }
    }
}

/// How a campaign is sent. Stored with the campaign so a resume behaves like the first run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSettings {
    /// The pace of sending.
    pub rate: RateLimit,
    /// How many provider calls may be in flight at once (at least 1).
    pub concurrency: u32,
    /// Send identical rendered bodies once per number, and log that send against every record
    /// carrying it. Off by default: the product texts each record.
    pub once_per_number: bool,
    /// Refuse to start when the campaign would use more message units than this.
    pub budget_units: Option<u64>,
    /// The price of one segment, to compare the estimate with the provider's balance.
    pub price_per_segment: Option<Money>,
    /// The provider the campaign was started with (`Provider::name`): a run with another one
    /// is refused, since reconciling through a provider that never sent would call texts
    /// unsent (or invent acceptances).
    #[serde(default)]
    pub provider: Option<String>,
    /// The provider's identity when the campaign was started ([`crate::Provider::identity`]:
    /// for Twilio the account SID, API host and sender, never a secret). A run through a
    /// provider with another identity is refused: its history holds none of this campaign's
    /// messages, so reconciliation would find nothing and send again. Campaigns stored before
    /// this field existed have none, and are checked by `provider` (the name) only.
    #[serde(default)]
    pub provider_identity: Option<String>,
    /// Quiet hours, checked when each record is about to be sent: a record whose local time is
    /// outside them is journaled [`RecordState::Held`] until they open, never sent then.
    /// `None`: ignored (an emergency send, alert batches, which the alert rules time
    /// themselves, and every campaign stored before this field existed).
    /// [`Campaign::from_preview`] sets it from the preview, whose records' zones were checked
    /// under the same rule.
    #[serde(default)]
    pub quiet_hours: Option<QuietRule>,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            rate: RateLimit::default(),
            concurrency: 4,
            once_per_number: false,
            budget_units: None,
            price_per_segment: None,
            provider: None,
            provider_identity: None,
            quiet_hours: None,
        }
    }
}

/// A campaign: a preview frozen for sending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// Its id.
    pub id: CampaignId,
    /// A name staff recognise.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The message as written.
    pub template: String,
    /// How it is sent.
    pub settings: CampaignSettings,
    /// Every record of the preview, in order; a record's `seq` is its index here.
    pub items: Vec<PreviewItem>,
}

impl Campaign {
    /// Freezes `preview` as a campaign. Its quiet hours are the preview's (whatever `settings`
    /// says): the records' time zones were checked under that rule.
    pub fn from_preview(
        id: CampaignId,
        name: impl Into<String>,
        preview: Preview,
        mut settings: CampaignSettings,
        created_at: Timestamp,
    ) -> Campaign {
        settings.quiet_hours = preview.quiet_hours;
        Campaign {
            id,
            name: name.into(),
            created_at,
            template: preview.template,
            settings,
            items: preview.items,
        }
    }

    /// The state a record starts in: planned when eligible, blocked (with the preview's reason)
    /// otherwise.
    pub fn initial_state(item: &PreviewItem) -> RecordState {
        match &item.outcome {
            PreviewOutcome::Eligible { .. } => RecordState::Planned,
            PreviewOutcome::Blocked { reason } => RecordState::Blocked {
                reason: reason.clone(),
            },
        }
    }
}

/// A short listing of a stored campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// Its id.
    pub id: CampaignId,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// How many records it holds.
    pub records: u64,
}

/// Failure of a journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The journal could not be read or written (disk, lock, corruption). Nothing of the failed
    /// call was recorded.
    #[error("journal unavailable: {0}")]
    Unavailable(String),
    /// A campaign with this id exists already.
    #[error("campaign {0} exists already")]
    CampaignExists(CampaignId),
    /// No campaign has this id.
    #[error("no campaign {0}")]
    UnknownCampaign(CampaignId),
    /// The campaign has no record at this position.
    #[error("campaign {campaign} has no record #{seq}")]
    UnknownRecord {
        /// The campaign.
        campaign: CampaignId,
        /// The position asked for.
        seq: u32,
    },
    /// Another run is sending this campaign (in this process or another); wait for it to end.
    #[error("campaign {0} is being sent by another run")]
    CampaignBusy(CampaignId),
    /// The write would break a rule (such as sending an accepted record again); nothing of the
    /// call was recorded.
    #[error("record #{seq} of campaign {campaign} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The campaign.
        campaign: CampaignId,
        /// The record.
        seq: u32,
        /// Its state code now.
        from: String,
        /// The state code asked for.
        to: String,
    },
    /// A fleet worker no longer holds the lease on a record's number (it expired, and another
    /// worker may have taken it): the worker must not send; nothing of the call was recorded.
    #[error("worker {worker} no longer holds the lease on record #{seq} of campaign {campaign}")]
    LeaseLost {
        /// The campaign.
        campaign: CampaignId,
        /// The worker.
        worker: String,
        /// The record.
        seq: u32,
    },
}

/// Checks one transition against [`RecordState::may_become`]: the rule every journal applies.
pub fn check_transition(
    campaign: &CampaignId,
    seq: u32,
    from: &RecordState,
    to: &RecordState,
) -> Result<(), JournalError> {
    if from.may_become(to) {
        Ok(())
    } else {
        Err(JournalError::InvalidTransition {
            campaign: campaign.clone(),
            seq,
            from: from.code().to_owned(),
            to: to.code().to_owned(),
        })
    }
}

/// Where campaigns and their per-record progress are kept.
///
/// Implementations must make [`Journal::apply`] durable before it returns (the dispatcher
/// calls the provider only after the `sending` write returned) and atomic: either every
/// transition of the call is recorded or none is. They must refuse a transition that
/// [`RecordState::may_become`] forbids, with [`JournalError::InvalidTransition`].
#[async_trait]
pub trait Journal: Send + Sync {
    /// Stores a new campaign, its records in their initial states ([`Campaign::initial_state`]).
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), JournalError>;

    /// The campaign with this id.
    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError>;

    /// Every stored campaign, oldest first.
    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, JournalError>;

    /// Every record of the campaign, by `seq`.
    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError>;

    /// Applies `transitions` atomically and durably.
    async fn apply(&self, id: CampaignId, transitions: Vec<Transition>)
    -> Result<(), JournalError>;

    /// Records a delivery status against every record carrying its provider id. Returns whether
    /// any record carries it (a callback for a message this journal never sent returns false).
    async fn record_delivery(&self, update: DeliveryUpdate) -> Result<bool, JournalError>;

    /// Which of `provider_ids` a record of any campaign is already logged against: such a
    /// message is no evidence that another attempt went out (reconciliation).
    async fn logged_provider_ids(
        &self,
        provider_ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, JournalError>;

    /// Claims the campaign for one run, so two runs (two processes, or a `resume` typed while
    /// a `send` is still going) never send the same campaign at once. Fails with
    /// [`JournalError::CampaignBusy`] while another claim is held. The claim must end when the
    /// returned value is dropped and when the process dies (a crash must not block a resume).
    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError>;

    /// This journal's fleet operations, when several workers may send one campaign at once
    /// ([`crate::dispatch::Dispatcher::run_fleet`]); `None` (the default) when one run at a time
    /// is all it allows.
    fn fleet(&self) -> Option<&dyn FleetJournal> {
        None
    }
}

/// Proof that one run alone sends a campaign; dropping it lets another run start.
pub struct RunClaim {
    _guard: Box<dyn std::any::Any + Send + Sync>,
}

impl RunClaim {
    /// A claim held as long as `guard` lives (a file lock, a set entry removed on drop).
    pub fn new(guard: impl std::any::Any + Send + Sync) -> RunClaim {
        RunClaim {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for RunClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunClaim")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::DeliveryStatus;

    fn accepted() -> RecordState {
        RecordState::Accepted {
            provider_id: "SM1".into(),
            segments: 1,
            at: Timestamp::from_unix_ms(5),
        }
    }

    #[test]
    fn an_accepted_record_can_never_be_sent_again() {
        let sending = RecordState::Sending {
            attempt: 1,
            at: Timestamp::from_unix_ms(1),
        };
        assert!(RecordState::Planned.may_become(&sending));
        assert!(sending.may_become(&accepted()));
        assert!(!accepted().may_become(&sending));
        assert!(!accepted().may_become(&RecordState::Planned));
        let retry = RecordState::Sending {
            attempt: 2,
            at: Timestamp::from_unix_ms(2),
        };
        assert!(!sending.may_become(&retry), "a retry goes through deferred");
        assert!(
            accepted().may_become(&accepted()),
            "a replayed write is harmless"
        );
    }

    #[test]
    fn generated_ids_are_readable() {
        let id = CampaignId::generate(Timestamp::parse("2026-11-25T20:15:11.042Z").expect("ok"));
        assert_eq!(id.as_str(), "campaign-20261125-201511-042");
        assert_eq!(CampaignId::new("  "), None);
    }

    #[test]
    fn a_late_progress_status_does_not_hide_delivery() {
        let delivered = Delivery {
            status: DeliveryStatus::Delivered,
            error_code: None,
            at: Timestamp::from_unix_ms(1),
        };
        assert!(!Delivery::should_replace(
            Some(&delivered),
            &DeliveryStatus::Sent
        ));
        assert!(Delivery::should_replace(None, &DeliveryStatus::Sent));
    }
}
