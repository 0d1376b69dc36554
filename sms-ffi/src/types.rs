//! The facade's own records and enums, with `From` conversions from and to `sms-core`: the core
//! never learns that uniffi exists and stays free to change; these names are the contract.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sms_core::journal::{RecordReport as CoreRecordReport, RecordState};
use sms_core::{DeliveryStatus, Timestamp};

/// The character set a message is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum Encoding {
    /// The GSM 03.38 7-bit alphabet: 160 characters in one segment, 153 per part.
    Gsm7,
    /// UCS-2: 70 UTF-16 units in one segment, 67 per part.
    Ucs2,
}

impl From<sms_core::Encoding> for Encoding {
    fn from(e: sms_core::Encoding) -> Self {
        match e {
            sms_core::Encoding::Gsm7 => Encoding::Gsm7,
            sms_core::Encoding::Ucs2 => Encoding::Ucs2,
        }
    }
}

/// What one text costs, exactly as Twilio counts it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SegmentCount {
    /// GSM-7 or UCS-2.
    pub encoding: Encoding,
    /// Segments, that is message units billed.
    pub segments: u32,
    /// The characters that force UCS-2 (empty for GSM-7 text).
    pub non_gsm: Vec<String>,
    /// The text as sent after Smart Encoding, when it was asked for and changed something.
    pub smart_text: Option<String>,
}

/// Many texts counted at once: one entry per text, in order.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SegmentBatch {
    /// Segments of each text.
    pub segments: Vec<u32>,
    /// Encoding of each text.
    pub encodings: Vec<Encoding>,
    /// The sum of `segments`.
    pub total_segments: u64,
}

/// Client or staff, with the field that says whether the record may be texted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum RecipientKind {
    /// A client: texted when Permitted Marketing Methods holds `Text` (or `Alerts` for alerts).
    Client {
        /// The field as stored (`"Email, Text"`).
        permitted_marketing_methods: String,
    },
    /// A staff member: texted when Permitted SMS Text is Yes.
    Staff {
        /// Permitted SMS Text.
        permitted_sms_text: bool,
    },
}

/// One record the host's filter selected.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Recipient {
    /// The host's id of the record.
    pub record_id: String,
    /// Client or staff.
    pub kind: RecipientKind,
    /// Merge field `{first_name}`.
    pub first_name: String,
    /// Merge field `{last_name}`.
    pub last_name: String,
    /// The mobile number as typed in the record.
    pub mobile: String,
    /// IANA time zone (`America/New_York`), when known.
    #[uniffi(default = None)]
    pub time_zone: Option<String>,
    /// Other merge fields by name (`course_title`...).
    #[uniffi(default)]
    pub fields: HashMap<String, String>,
}

impl From<Recipient> for sms_core::Recipient {
    fn from(r: Recipient) -> Self {
        sms_core::Recipient {
            record_id: sms_core::RecordId::new(r.record_id),
            kind: match r.kind {
                RecipientKind::Client {
                    permitted_marketing_methods,
                } => sms_core::RecipientKind::Client {
                    permitted_marketing_methods: sms_core::PermittedMarketingMethods::new(
                        permitted_marketing_methods,
                    ),
                },
                RecipientKind::Staff { permitted_sms_text } => {
                    sms_core::RecipientKind::Staff { permitted_sms_text }
                }
            },
            first_name: r.first_name,
            last_name: r.last_name,
            mobile: r.mobile,
            time_zone: r.time_zone,
            fields: r.fields.into_iter().collect(),
        }
    }
}

/// Who carries the texts.
///
/// Printed (Kotlin's `toString`, Swift's `description`, Python's `str`/`repr`) through its
/// Rust `Debug`/`Display`, which show `***` for the auth token: the data classes uniffi
/// generates would otherwise print every field.
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Debug, Display)]
pub enum ProviderConfig {
    /// The deterministic simulator (Twilio's test-credential behaviour): nothing leaves the
    /// machine. Magic numbers: +15005550001 invalid, +15005550009 cannot receive SMS...
    Simulator,
    /// Twilio's Messages API. Give `from_number` or `messaging_service_sid`.
    Twilio {
        /// `AC…`.
        account_sid: String,
        /// The account's auth token (also what webhooks are signed with). Never printed.
        auth_token: String,
        /// The sending number, E.164.
        #[uniffi(default = None)]
        from_number: Option<String>,
        /// A Messaging Service (`MG…`), instead of a number.
        #[uniffi(default = None)]
        messaging_service_sid: Option<String>,
        /// Another API address: a local stand-in (`http://127.0.0.1:PORT`) in tests.
        #[uniffi(default = None)]
        base_url: Option<String>,
    },
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderConfig::Simulator => f.write_str("Simulator"),
            ProviderConfig::Twilio {
                account_sid,
                from_number,
                messaging_service_sid,
                base_url,
                ..
            } => f
                .debug_struct("Twilio")
                .field("account_sid", account_sid)
                .field("auth_token", &"***")
                .field("from_number", from_number)
                .field("messaging_service_sid", messaging_service_sid)
                .field("base_url", base_url)
                .finish(),
        }
    }
}

/// Everything a client needs.
///
/// Printed through its Rust `Debug`/`Display` (`***` for `webhook_auth_token` and the
/// provider's auth token), not field by field, in every language.
#[derive(Clone, PartialEq, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct SmsConfig {
    /// Where opt-outs and campaigns are kept: the SQLite file (created when missing), or a
    /// PostgreSQL database shared by several servers, `postgres://USER@HOST:PORT/DATABASE`
    /// (the password from the URL, `PGPASSWORD` or `~/.pgpass`; never printed). On
    /// PostgreSQL, `send` and `resume` run as fleet workers: any number of servers may resume
    /// one campaign at once, each number texted by one of them, at the rate in total.
    pub database: String,
    /// Who carries the texts.
    pub provider: ProviderConfig,
    /// Region for numbers typed without a country code (ISO 3166).
    #[uniffi(default = "US")]
    pub region: String,
    /// Program year of the database the recipients come from; give it with
    /// `current_program_year` (only the current year may send).
    #[uniffi(default = None)]
    pub program_year: Option<String>,
    /// The current program year.
    #[uniffi(default = None)]
    pub current_program_year: Option<String>,
    /// Price of one segment for the cost estimate, as a decimal (`"0.0083"`; default 0.0083).
    #[uniffi(default = None)]
    pub price_per_segment: Option<String>,
    /// Currency of the price.
    #[uniffi(default = "USD")]
    pub currency: String,
    /// Apply Twilio Smart Encoding (smart quotes and dashes become GSM-7) before counting and
    /// sending.
    #[uniffi(default = false)]
    pub smart_encoding: bool,
    /// Texts per second for sends (a US long code sends 1 per second); `None`: the library's
    /// default; 0: no limit.
    #[uniffi(default = None)]
    pub rate_per_second: Option<f64>,
    /// Provider calls in flight at once (1 to 256).
    #[uniffi(default = 4)]
    pub concurrency: u32,
    /// Send identical texts once per number rather than once per record.
    #[uniffi(default = false)]
    pub once_per_number: bool,
    /// Seconds a provider must stay silent about a send in doubt before it counts as not sent
    /// (at least 10, except with a Twilio stand-in on 127.0.0.1).
    #[uniffi(default = 30)]
    pub reconcile_wait_seconds: u64,
    /// A resume refuses a campaign created longer ago than this (it re-checks STOPs only).
    #[uniffi(default = 24)]
    pub max_campaign_age_hours: u64,
    /// The token webhooks are signed with, when it is not the Twilio auth token above (or the
    /// provider is the simulator). Never printed.
    #[uniffi(default = None)]
    pub webhook_auth_token: Option<String>,
    /// Act on opt-out keywords only; by default (the FCC rule) a short sentence such as
    /// "please stop" is an opt-out too, marked for review.
    #[uniffi(default = false)]
    pub opt_out_keywords_only: bool,
    /// The organisation whose opt-outs, campaigns and replies this client reads and writes in
    /// `database` (1 to 64 letters, digits, `-`, `_` or `.`). One file may hold many; a client
    /// sees only its own organisation's rows. A host `OptOutStore` given to
    /// `SmsClient.with_opt_out_store` must itself keep this organisation's opt-outs only.
    #[uniffi(default = "default")]
    pub organisation: String,
    /// When texts may go, in each recipient's local time (`HH:MM-HH:MM`): a record outside it
    /// when it is about to be sent is held (status `HELD`) until the window opens, and goes
    /// with a `resume` then (or `sms serve`); never dropped.
    #[uniffi(default = "08:00-21:00")]
    pub quiet_hours: String,
    /// The organisation's IANA time zone, for recipients without one.
    #[uniffi(default = "America/New_York")]
    pub org_time_zone: String,
    /// Send at any hour (an emergency): no record is held, time zones are not looked at. A
    /// host keeps a second client with this set for emergencies.
    #[uniffi(default = false)]
    pub ignore_quiet_hours: bool,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            // A PostgreSQL URL without its password.
            .field(
                "database",
                &sms_store::DbTarget::parse(&self.database)
                    .map(|target| target.shown())
                    .unwrap_or_else(|_| "(a database this library refuses)".to_owned()),
            )
            .field("provider", &self.provider)
            .field("region", &self.region)
            .field("program_year", &self.program_year)
            .field("current_program_year", &self.current_program_year)
            .field("price_per_segment", &self.price_per_segment)
            .field("currency", &self.currency)
            .field("smart_encoding", &self.smart_encoding)
            .field("rate_per_second", &self.rate_per_second)
            .field("concurrency", &self.concurrency)
            .field("once_per_number", &self.once_per_number)
            .field("reconcile_wait_seconds", &self.reconcile_wait_seconds)
            .field("max_campaign_age_hours", &self.max_campaign_age_hours)
            .field(
                "webhook_auth_token",
                &self.webhook_auth_token.as_ref().map(|_| "***"),
            )
            .field("opt_out_keywords_only", &self.opt_out_keywords_only)
            .field("organisation", &self.organisation)
            .field("quiet_hours", &self.quiet_hours)
            .field("org_time_zone", &self.org_time_zone)
            .field("ignore_quiet_hours", &self.ignore_quiet_hours)
            .finish()
    }
}

impl std::fmt::Display for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::fmt::Display for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One record of a preview.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PreviewItem {
    /// The host's id of the record.
    pub record_id: String,
    /// Texted or not, and why.
    pub outcome: PreviewOutcome,
}

/// What happens to one record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PreviewOutcome {
    /// The record will be texted.
    Eligible {
        /// The number, E.164.
        number: String,
        /// The text, merge fields filled (and Smart Encoding applied when asked).
        body: String,
        /// Its encoding.
        encoding: Encoding,
        /// Its segments.
        segments: u32,
    },
    /// The record will not be texted.
    Blocked {
        /// Stable code: `opted_out`, `client_not_permitted`, `staff_not_permitted`,
        /// `no_mobile`, `invalid_number`, `not_current_program_year`, `missing_merge_field`,
        /// `empty_message`, `too_long`, `unknown_time_zone` (quiet hours apply and the
        /// recipient's zone is not a known IANA name).
        reason_code: String,
        /// The reason as the office reads it.
        reason: String,
    },
}

/// The preview's totals.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PreviewTotals {
    /// Records previewed.
    pub records: u64,
    /// Texts that would be sent.
    pub texts: u64,
    /// Records not texted.
    pub skipped: u64,
    /// Segments billed in all.
    pub message_units: u64,
    /// The estimated cost, as a decimal followed by the currency (`"0.0249 USD"`).
    pub estimated_cost: String,
    /// Skipped records by reason code.
    pub skipped_by_reason: HashMap<String, u64>,
}

/// Records quiet hours hold, and when they may go: from `earliest` (the first one's opening)
/// to `latest` (the last one's), each also in the local time of its zone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HeldSummary {
    /// Records held.
    pub records: u64,
    /// The first of them may go then.
    pub earliest: SystemTime,
    /// `earliest` in its recipient's zone (`2026-07-02 08:00 EDT`).
    pub earliest_local: String,
    /// The last of them may go then.
    pub latest: SystemTime,
    /// `latest` in its recipient's zone.
    pub latest_local: String,
}

impl From<sms_core::quiet::HeldSummary> for HeldSummary {
    fn from(h: sms_core::quiet::HeldSummary) -> Self {
        HeldSummary {
            records: h.records,
            earliest: system_time(h.earliest.at),
            earliest_local: h.earliest.local,
            latest: system_time(h.latest.at),
            latest_local: h.latest.local,
        }
    }
}

/// Who would be texted, who not and why, and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Preview {
    /// One per record, in the order given.
    pub items: Vec<PreviewItem>,
    /// The totals.
    pub totals: PreviewTotals,
    /// The texts quiet hours would hold if sent now, and until when (`None`: none would, or
    /// quiet hours are ignored).
    #[uniffi(default = None)]
    pub held: Option<HeldSummary>,
}

impl Preview {
    /// The facade's preview of a core preview, with what quiet hours hold at `now`.
    pub(crate) fn at(p: sms_core::Preview, now: Timestamp) -> Self {
        let held = p
            .quiet_hours
            .as_ref()
            .and_then(|rule| sms_core::quiet::held_at(&p.items, rule, now))
            .map(HeldSummary::from);
        Preview {
            held,
            ..Preview::from(p)
        }
    }
}

impl From<sms_core::Preview> for Preview {
    /// Without `held`: what quiet hours hold depends on when (`SmsClient::preview` fills it).
    fn from(p: sms_core::Preview) -> Self {
        let items = p
            .items
            .into_iter()
            .map(|item| PreviewItem {
                record_id: item.record_id.as_str().to_owned(),
                outcome: match item.outcome {
                    sms_core::PreviewOutcome::Eligible {
                        number,
                        body,
                        encoding,
                        segments,
                    } => PreviewOutcome::Eligible {
                        number: number.e164(),
                        body,
                        encoding: encoding.into(),
                        segments,
                    },
                    sms_core::PreviewOutcome::Blocked { reason } => PreviewOutcome::Blocked {
                        reason_code: reason.code().to_owned(),
                        reason: reason.to_string(),
                    },
                },
            })
            .collect();
        let t = p.totals;
        Preview {
            items,
            totals: PreviewTotals {
                records: t.records,
                texts: t.texts,
                skipped: t.blocked,
                message_units: t.message_units,
                estimated_cost: t.estimated_cost.to_string(),
                skipped_by_reason: t.blocked_by_reason.into_iter().collect(),
            },
            held: None,
        }
    }
}

/// One recipient as `SmsClient::preview_json` reads it (an array, not an object: the
/// Python side writes it with its C JSON encoder).
#[derive(serde::Deserialize)]
pub(crate) struct JsonRecipient(
    String,
    JsonKind,
    String,
    String,
    String,
    Option<String>,
    Option<HashMap<String, String>>,
);

/// A client's Permitted Marketing Methods (a string) or a staff member's Permitted SMS Text
/// (a boolean).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonKind {
    Client(String),
    Staff(bool),
}

impl From<JsonRecipient> for Recipient {
    fn from(r: JsonRecipient) -> Self {
        let JsonRecipient(record_id, kind, first_name, last_name, mobile, time_zone, fields) = r;
        Recipient {
            record_id,
            kind: match kind {
                JsonKind::Client(permitted_marketing_methods) => RecipientKind::Client {
                    permitted_marketing_methods,
                },
                JsonKind::Staff(permitted_sms_text) => RecipientKind::Staff { permitted_sms_text },
            },
            first_name,
            last_name,
            mobile,
            time_zone,
            fields: fields.unwrap_or_default(),
        }
    }
}

/// One item of `SmsClient::preview_json`'s answer: an array (`[record_id, number, body,
/// ucs2, segments]` or `[record_id, reason_code, reason]`), written straight from the preview,
/// with no intermediate JSON tree.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum JsonItem<'a> {
    Eligible(&'a str, String, &'a str, u8, u32),
    Blocked(&'a str, &'static str, String),
}

#[derive(serde::Serialize)]
struct JsonTotals<'a> {
    records: u64,
    texts: u64,
    skipped: u64,
    message_units: u64,
    estimated_cost: String,
    skipped_by_reason: &'a std::collections::BTreeMap<String, u64>,
}

/// `HeldSummary` in JSON: times in milliseconds since the epoch.
#[derive(serde::Serialize)]
pub(crate) struct JsonHeld {
    records: u64,
    earliest_ms: i64,
    earliest_local: String,
    latest_ms: i64,
    latest_local: String,
}

#[derive(serde::Serialize)]
struct JsonPreview<'a> {
    items: Vec<JsonItem<'a>>,
    totals: JsonTotals<'a>,
    held: Option<JsonHeld>,
}

/// What quiet hours hold of the preview at `now`, in JSON's terms.
pub(crate) fn held_json(p: &sms_core::Preview, now: Timestamp) -> Option<JsonHeld> {
    p.quiet_hours
        .as_ref()
        .and_then(|rule| sms_core::quiet::held_at(&p.items, rule, now))
        .map(|h| JsonHeld {
            records: h.records,
            earliest_ms: h.earliest.at.unix_ms(),
            earliest_local: h.earliest.local,
            latest_ms: h.latest.at.unix_ms(),
            latest_local: h.latest.local,
        })
}

/// The preview as `SmsClient::preview_json` answers it, with what quiet hours hold at `now`.
pub(crate) fn preview_json(p: &sms_core::Preview, now: Timestamp) -> Vec<u8> {
    let held = held_json(p, now);
    let items = p
        .items
        .iter()
        .map(|item| match &item.outcome {
            sms_core::PreviewOutcome::Eligible {
                number,
                body,
                encoding,
                segments,
            } => JsonItem::Eligible(
                item.record_id.as_str(),
                number.e164(),
                body,
                u8::from(*encoding == sms_core::Encoding::Ucs2),
                *segments,
            ),
            sms_core::PreviewOutcome::Blocked { reason } => {
                JsonItem::Blocked(item.record_id.as_str(), reason.code(), reason.to_string())
            }
        })
        .collect();
    let t = &p.totals;
    let answer = JsonPreview {
        items,
        totals: JsonTotals {
            records: t.records,
            texts: t.texts,
            skipped: t.blocked,
            message_units: t.message_units,
            estimated_cost: t.estimated_cost.to_string(),
            skipped_by_reason: &t.blocked_by_reason,
        },
        held,
    };
    serde_json::to_vec(&answer).expect("JSON of strings and numbers")
}

/// A record's status as the office sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RecordStatus {
    /// Accepted by the provider.
    Sent,
    /// The carrier reported delivery.
    Delivered,
    /// The carrier could not deliver it.
    Undelivered,
    /// It could not be sent (see `reason_code`).
    Failed,
    /// Skipped: consent, opt-out, no mobile... (see `reason_code`).
    NotSent,
    /// Not final yet: a resume sends or settles it.
    Pending,
    /// Not sent yet because the recipient's local time was outside quiet hours when it was
    /// about to go: a `resume` after the window opens sends it (`reason` says when); never
    /// dropped.
    Held,
    /// Nobody can tell whether it was sent: a person must check before anything is resent.
    Check,
}

/// One record of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordReport {
    /// The record's position in the campaign (unique even when record ids repeat).
    pub seq: u32,
    /// The host's id of the record.
    pub record_id: String,
    /// The status.
    pub status: RecordStatus,
    /// The provider's id of the text (`SM…`), once sent.
    pub provider_id: Option<String>,
    /// Segments billed for it (0 when not sent).
    pub units: u32,
    /// Why it was not sent or failed: a consent code (`opted_out`...) or the provider's error
    /// class (`bad_recipient`...); `None` when sent or pending.
    pub reason_code: Option<String>,
    /// The same in words.
    pub reason: Option<String>,
}

/// A campaign's totals.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReportTotals {
    /// Records in the campaign.
    pub records: u64,
    /// Records sent (delivered or not).
    pub sent: u64,
    /// Records skipped.
    pub skipped: u64,
    /// Records that failed.
    pub failed: u64,
    /// Segments billed.
    pub units: u64,
    /// Records not final yet.
    pub pending: u64,
    /// Records a person must check.
    pub check: u64,
    /// Records the carrier reported delivered.
    pub delivered: u64,
    /// Records held by quiet hours (not counted in `pending`): a resume after the window
    /// opens sends them.
    #[uniffi(default = 0)]
    pub held: u64,
}

/// What happened to a campaign.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CampaignReport {
    /// The campaign's id.
    pub campaign: String,
    /// Every record, in order.
    pub records: Vec<RecordReport>,
    /// The totals.
    pub totals: ReportTotals,
    /// Every record is final (nothing pending, nothing to check).
    pub complete: bool,
    /// This run stopped early because it was cancelled (resume to finish).
    pub cancelled: bool,
    /// The records held by quiet hours and when they may go (`None`: none held). When every
    /// other record is final, `resume` after `earliest` sends them.
    #[uniffi(default = None)]
    pub held: Option<HeldSummary>,
}

fn record_report(r: CoreRecordReport) -> RecordReport {
    let status = match r.status_label() {
        "Delivered" => RecordStatus::Delivered,
        "Undelivered" => RecordStatus::Undelivered,
        "Failed" => RecordStatus::Failed,
        "Not sent" => RecordStatus::NotSent,
        "Pending" => RecordStatus::Pending,
        "Held" => RecordStatus::Held,
        "Check" => RecordStatus::Check,
        _ => RecordStatus::Sent,
    };
    let (reason_code, reason) = match &r.state {
        RecordState::Blocked { reason } => {
            (Some(reason.code().to_owned()), Some(reason.to_string()))
        }
        RecordState::Failed { failure, .. } => {
            (Some(failure.class.clone()), Some(failure.message.clone()))
        }
        RecordState::Deferred { failure, .. } => (
            Some("deferred".to_owned()),
            Some(format!(
                "deferred, a resume retries it: {}",
                failure.message
            )),
        ),
        RecordState::Unknown { message, .. } => (Some("unknown".to_owned()), Some(message.clone())),
        RecordState::Held {
            until, time_zone, ..
        } => (
            Some("quiet_hours".to_owned()),
            Some(format!(
                "held by quiet hours until {} ({until}); a resume then sends it",
                sms_core::quiet::zone(time_zone)
                    .map(|tz| sms_core::quiet::format_local(*until, &tz, "%Y-%m-%d %H:%M %Z"))
                    .unwrap_or_else(|| time_zone.clone())
            )),
        ),
        _ => (None, None),
    };
    let undelivered_code = match (&r.delivery, status) {
        (Some(d), RecordStatus::Undelivered | RecordStatus::Failed)
            if matches!(
                d.status,
                DeliveryStatus::Undelivered | DeliveryStatus::Failed
            ) =>
        {
            d.error_code.map(|c| c.to_string())
        }
        _ => None,
    };
    let units = match &r.state {
        RecordState::Accepted { segments, .. } => *segments,
        _ => 0,
    };
    RecordReport {
        seq: r.seq,
        record_id: r.record_id.as_str().to_owned(),
        status,
        provider_id: r.state.provider_id().map(str::to_owned),
        units,
        reason_code: reason_code.or(undelivered_code),
        reason,
    }
}

impl CampaignReport {
    /// The facade's report of a core report.
    pub(crate) fn from_core(r: sms_core::CampaignReport, cancelled: bool) -> Self {
        let complete = r.is_complete();
        let t = &r.totals;
        let totals = ReportTotals {
            records: t.records,
            sent: t.accepted,
            skipped: t.blocked,
            failed: t.failed,
            units: t.units_used,
            pending: t.planned + t.sending + t.deferred,
            check: t.unknown,
            delivered: t.delivered,
            held: t.held,
        };
        CampaignReport {
            campaign: r.campaign_id.as_str().to_owned(),
            records: r.records.into_iter().map(record_report).collect(),
            totals,
            complete,
            cancelled,
            held: r.held.map(HeldSummary::from),
        }
    }
}

/// What a reply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ReplyAction {
    /// STOP and its synonyms (and, by the FCC rule, a short sentence such as "please stop"):
    /// recorded; every record carrying the number is blocked from now on.
    OptOut,
    /// START and its synonyms: recorded; the number may be texted again.
    OptIn,
    /// HELP / INFO.
    Help,
    /// Anything else: nothing recorded.
    Other,
}

impl From<sms_core::KeywordClass> for ReplyAction {
    fn from(c: sms_core::KeywordClass) -> Self {
        match c {
            sms_core::KeywordClass::OptOut => ReplyAction::OptOut,
            sms_core::KeywordClass::OptIn => ReplyAction::OptIn,
            sms_core::KeywordClass::Help => ReplyAction::Help,
            sms_core::KeywordClass::Other => ReplyAction::Other,
        }
    }
}

/// What an inbound reply did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct InboundResult {
    /// What it means.
    pub action: ReplyAction,
    /// Not acted on, but it looks like a request to stop ("stop texting me" under the
    /// keywords-only rule, a long message): a person should review it.
    pub likely_revocation: bool,
    /// Recorded as an opt-out from a sentence, not a keyword: a person should review it.
    pub needs_review: bool,
    /// The opt-out change recorded (already durable), for STOP and START.
    pub change: Option<OptOutChange>,
    /// The TwiML to answer Twilio with (`text/xml`).
    pub reply: String,
}

impl From<sms_twilio::InboundOutcome> for InboundResult {
    fn from(o: sms_twilio::InboundOutcome) -> Self {
        InboundResult {
            reply: o.response_body().to_owned(),
            action: o.classification.class.into(),
            likely_revocation: o.classification.likely_revocation,
            needs_review: o.classification.needs_review,
            change: o.change.map(Into::into),
        }
    }
}

/// STOP or START.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum OptOutAction {
    /// The number opted out.
    Stop,
    /// The number opted back in.
    Start,
}

/// Where an opt-out change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ChangeSource {
    /// A keyword reply.
    Inbound,
    /// A short sentence read as an opt-out (FCC rule): review it.
    NaturalLanguage,
    /// The provider refused a send because the number opted out with it.
    Provider,
    /// A person recorded it.
    Staff,
}

/// One change in a number's opt-out history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OptOutChange {
    /// The number, E.164.
    pub number: String,
    /// STOP or START.
    pub action: OptOutAction,
    /// When it happened.
    pub at: SystemTime,
    /// Where it came from.
    pub source: ChangeSource,
    /// The provider's id of the inbound message, when there is one.
    pub message_sid: Option<String>,
    /// The inbound text, when there is one.
    pub body: Option<String>,
}

/// A number's opt-out state and its history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OptOutStatus {
    /// The number, E.164.
    pub number: String,
    /// Whether it is opted out now.
    pub opted_out: bool,
    /// Since when, when opted out.
    pub since: Option<SystemTime>,
    /// Every change, in the order received.
    pub history: Vec<OptOutChange>,
}

pub(crate) fn system_time(t: Timestamp) -> SystemTime {
    let ms = t.unix_ms();
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Timestamp::from_unix_ms(ms)
}

impl From<sms_core::OptOutChange> for OptOutChange {
    fn from(c: sms_core::OptOutChange) -> Self {
        OptOutChange {
            number: c.number.e164(),
            action: match c.action {
                sms_core::OptOutAction::Stop => OptOutAction::Stop,
                sms_core::OptOutAction::Start => OptOutAction::Start,
            },
            at: system_time(c.at),
            source: match c.source {
                sms_core::ChangeSource::Inbound => ChangeSource::Inbound,
                sms_core::ChangeSource::NaturalLanguage => ChangeSource::NaturalLanguage,
                sms_core::ChangeSource::Provider => ChangeSource::Provider,
                sms_core::ChangeSource::Staff => ChangeSource::Staff,
            },
            message_sid: c.message_sid,
            body: c.body,
        }
    }
}

impl OptOutChange {
    /// The core's change; `None` when the number is not an E.164 number (a host store
    /// returned something it was never given).
    pub(crate) fn to_core(&self) -> Option<sms_core::OptOutChange> {
        let number = sms_core::PhoneNumber::from_e164(&self.number)
            .or_else(|_| sms_core::PhoneNumber::from_e164_shape(&self.number))
            .ok()?;
        Some(sms_core::OptOutChange {
            number,
            action: match self.action {
                OptOutAction::Stop => sms_core::OptOutAction::Stop,
                OptOutAction::Start => sms_core::OptOutAction::Start,
            },
            at: timestamp(self.at),
            source: match self.source {
                ChangeSource::Inbound => sms_core::ChangeSource::Inbound,
                ChangeSource::NaturalLanguage => sms_core::ChangeSource::NaturalLanguage,
                ChangeSource::Provider => sms_core::ChangeSource::Provider,
                ChangeSource::Staff => sms_core::ChangeSource::Staff,
            },
            message_sid: self.message_sid.clone(),
            body: self.body.clone(),
        })
    }
}

/// How far a send has got.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SendProgress {
    /// The campaign.
    pub campaign: String,
    /// Records in the campaign.
    pub total: u64,
    /// Sent so far.
    pub sent: u64,
    /// Failed so far.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
    /// In doubt (a person must check).
    pub unknown: u64,
    /// Held by quiet hours (a resume after the window opens sends them).
    #[uniffi(default = 0)]
    pub held: u64,
    /// Still to send.
    pub remaining: u64,
    /// Texts per second lately.
    pub rate_per_second: f64,
    /// Seconds left at that rate, when known.
    pub eta_seconds: Option<u64>,
}

impl From<sms_core::ProgressSnapshot> for SendProgress {
    fn from(s: sms_core::ProgressSnapshot) -> Self {
        SendProgress {
            campaign: s.campaign_id.as_str().to_owned(),
            total: s.total,
            sent: s.sent,
            failed: s.failed,
            skipped: s.blocked,
            unknown: s.unknown,
            held: s.held,
            remaining: s.remaining,
            rate_per_second: s.rate_per_second,
            eta_seconds: s.eta_seconds,
        }
    }
}

/// The level of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something staff should know.
    Warn,
    /// A campaign started or ended, a STOP was recorded.
    Info,
    /// Each provider call.
    Debug,
    /// Everything.
    Trace,
}

/// One log record of the library (never a secret: tokens are never logged).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// The level.
    pub level: LogLevel,
    /// The module that logged it (`sms_core::dispatch`).
    pub target: String,
    /// The text, with its fields (`campaign=c1 records=3`).
    pub text: String,
}
