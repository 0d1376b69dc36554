//! Preview: who will be texted, who is skipped and why, and what it will cost.
//!
//! A preview is a value: it can be shown, stored and executed later.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::consent::{self, BlockReason, Consent, ProgramYears, Purpose};
use crate::optout::{OptOutSnapshot, OptOutStore, StoreError};
use crate::phone::{PhoneNumber, Region};
use crate::quiet::{QuietRule, ZoneCache};
use crate::recipient::{Recipient, RecordId, RecordKind};
use crate::segment::{self, Encoding, SegmentOptions};
use crate::template::{Template, TemplateError};

/// An amount of money, exact: millionths of the currency unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in millionths (`0.0083` USD is 8300).
    pub micros: i64,
    /// ISO 4217 code (`"USD"`).
    pub currency: String,
}

impl Money {
    /// Parses a decimal amount (`"0.0083"`) with up to six decimals.
    ///
    /// ```
    /// use sms_core::Money;
    /// assert_eq!(Money::parse("0.0083", "USD").unwrap().micros, 8300);
    /// assert!(Money::parse("0.00000001", "USD").is_none());
    /// ```
    pub fn parse(amount: &str, currency: &str) -> Option<Money> {
        let amount = amount.trim();
        let (negative, amount) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
        if whole.is_empty() && frac.is_empty()
            || frac.len() > 6
            || !whole
                .bytes()
                .chain(frac.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let frac_micros: i64 = format!("{frac:0<6}").parse().ok()?;
        let micros = whole.checked_mul(1_000_000)?.checked_add(frac_micros)?;
        Some(Money {
            micros: if negative { -micros } else { micros },
            currency: currency.trim().to_ascii_uppercase(),
        })
    }

    /// `count` times this amount (saturating).
    pub fn times(&self, count: u64) -> Money {
        Money {
            micros: self
                .micros
                .saturating_mul(i64::try_from(count).unwrap_or(i64::MAX)),
            currency: self.currency.clone(),
        }
    }
}

impl fmt::Display for Money {
    /// Two decimals at least, more when the amount has them: `12.45 USD`, `0.0083 USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.micros < 0 { "-" } else { "" };
        let abs = self.micros.unsigned_abs();
        let mut frac = format!("{:06}", abs % 1_000_000);
        while frac.len() > 2 && frac.ends_with('0') {
            frac.pop();
        }
        write!(f, "{sign}{}.{frac} {}", abs / 1_000_000, self.currency)
    }
}

/// What a preview needs besides the recipients and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewSettings {
    /// Region for numbers typed without a country code.
    pub region: Region,
    /// Count (and later send) with Twilio Smart Encoding.
    pub smart_encoding: bool,
    /// Price of one segment (message unit).
    pub price_per_segment: Money,
    /// The database's program year and the current one.
    pub program_years: ProgramYears,
    /// Why the text is sent.
    pub purpose: Purpose,
    /// Quiet hours for this send (`None`: ignored, an emergency). With a rule, each eligible
    /// record keeps its own time zone in its item (the organisation's applies otherwise), and a
    /// record whose zone is unknown is blocked ([`BlockReason::UnknownTimeZone`]). Which
    /// records are held is decided when each is about to be sent (see [`crate::quiet`]).
    #[serde(default)]
    pub quiet_hours: Option<QuietRule>,
}

/// What happens to one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PreviewOutcome {
    /// The record will be texted this body.
    Eligible {
        /// The normalised number.
        number: PhoneNumber,
        /// The rendered text.
        body: String,
        /// Its encoding.
        encoding: Encoding,
        /// Its segments (message units).
        segments: u32,
    },
    /// The record will not be texted.
    Blocked {
        /// Why.
        reason: BlockReason,
    },
}

/// One record of the preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewItem {
    /// The host's record id.
    pub record_id: RecordId,
    /// Client or staff.
    pub kind: RecordKind,
    /// First and last name.
    pub name: String,
    /// The mobile number as typed.
    pub mobile: String,
    /// The record's own IANA time zone, checked, when quiet hours apply and it has one; the
    /// campaign's organisation zone applies otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// What happens to it.
    #[serde(flatten)]
    pub outcome: PreviewOutcome,
}

impl PreviewItem {
    /// Segments this record will use (0 when blocked).
    pub fn segments(&self) -> u32 {
        match &self.outcome {
            PreviewOutcome::Eligible { segments, .. } => *segments,
            PreviewOutcome::Blocked { .. } => 0,
        }
    }
}

/// The figures staff see before pressing Send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewTotals {
    /// Records the filter selected.
    pub records: u64,
    /// Records that will be texted (one text each).
    pub texts: u64,
    /// Records skipped.
    pub blocked: u64,
    /// Skipped records by reason code (`opted_out`, `no_mobile`...).
    pub blocked_by_reason: BTreeMap<String, u64>,
    /// Distinct numbers among the texts.
    pub distinct_numbers: u64,
    /// Numbers that more than one texted record carries (each record is texted).
    pub shared_numbers: u64,
    /// Texted records whose number another texted record also carries.
    pub records_on_shared_numbers: u64,
    /// Texts in GSM-7.
    pub gsm7_texts: u64,
    /// Texts in UCS-2.
    pub ucs2_texts: u64,
    /// Message units (segments) all the texts use.
    pub message_units: u64,
    /// `message_units` × the price per segment.
    pub estimated_cost: Money,
}

/// A preview: every record's outcome, and the totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// The message as written.
    pub template: String,
    /// One item per record, in the order given.
    pub items: Vec<PreviewItem>,
    /// The totals.
    pub totals: PreviewTotals,
    /// The quiet hours it was made under (`None`: ignored); a campaign made from it is sent
    /// under the same rule ([`crate::Campaign::from_preview`]).
    #[serde(default)]
    pub quiet_hours: Option<QuietRule>,
}

/// Why a preview could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The template names a field no record has.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The opt-out store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Twilio refuses a body longer than this (error 21617), counted in UTF-16 code units.
///
/// Twilio says "1,600 characters" without defining a character, and its 21617 page warns that
/// emoji and other non-GSM characters "count as multiple characters"; the likeliest count is
/// UTF-16 code units (a character outside the Basic Multilingual Plane, such as an emoji, is
/// two). That is also the larger of the plausible counts (scalars, UTF-16 units) for every
/// text, so a text it lets through is within the limit however Twilio counts.
pub const MAX_BODY_CHARACTERS: usize = 1_600;

const BUILT_IN_FIELDS: &[&str] = &["first_name", "last_name", "record_id", "mobile"];

/// Makes a preview. Pure: opt-outs come in as a snapshot.
///
/// A template field that no record has (neither built in nor among any record's `fields`) is
/// [`TemplateError::UnknownField`] (when there is at least one record); a record whose value for a known field is blank is blocked
/// with [`BlockReason::MissingMergeField`].
pub fn preview(
    recipients: impl IntoIterator<Item = Recipient>,
    template: &Template,
    opt_outs: &OptOutSnapshot,
    settings: &PreviewSettings,
) -> Result<Preview, TemplateError> {
    let fields = template.fields();
    let mut field_seen: Vec<bool> = fields.iter().map(|f| BUILT_IN_FIELDS.contains(f)).collect();
    let options = SegmentOptions {
        smart_encoding: settings.smart_encoding,
        force_ucs2: false,
    };
    let recipients = recipients.into_iter();
    let mut items = Vec::with_capacity(recipients.size_hint().0);
    // Numbers are valid E.164 digits, not attacker-chosen hash keys: a fast hash is safe here
    // and a million-record preview spends noticeably less time in it.
    let mut per_number: HashMap<PhoneNumber, u32, rustc_hash::FxBuildHasher> = HashMap::default();
    let mut blocked_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let (mut gsm7_texts, mut ucs2_texts, mut message_units) = (0u64, 0u64, 0u64);
    let mut body = String::new();
    let mut first_fields: Vec<String> = Vec::new();
    let mut zones = ZoneCache::new();

    for recipient in recipients {
        if items.is_empty() {
            first_fields = recipient.fields.keys().cloned().collect();
        }
        for (seen, name) in field_seen.iter_mut().zip(&fields) {
            if !*seen && recipient.fields.contains_key(*name) {
                *seen = true;
            }
        }
        let mut outcome = decide_one(&recipient, template, opt_outs, settings, options, &mut body);
        let time_zone = match (&settings.quiet_hours, &outcome) {
            (Some(rule), PreviewOutcome::Eligible { .. }) => {
                let own = recipient
                    .time_zone
                    .as_deref()
                    .map(str::trim)
                    .filter(|z| !z.is_empty());
                // Only whether the zone is known matters here: which records wait is decided
                // when each is about to be sent.
                match zones.check(rule, own) {
                    Ok(()) => own.map(str::to_owned),
                    Err(unknown) => {
                        outcome = PreviewOutcome::Blocked {
                            reason: BlockReason::UnknownTimeZone {
                                time_zone: unknown.0,
                            },
                        };
                        None
                    }
                }
            }
            _ => None,
        };
        match &outcome {
            PreviewOutcome::Eligible {
                number,
                encoding,
                segments,
                ..
            } => {
                *per_number.entry(*number).or_default() += 1;
                match encoding {
                    Encoding::Gsm7 => gsm7_texts += 1,
                    Encoding::Ucs2 => ucs2_texts += 1,
                }
                message_units += u64::from(*segments);
            }
            PreviewOutcome::Blocked { reason } => {
                *blocked_by_reason
                    .entry(reason.code().to_owned())
                    .or_default() += 1;
            }
        }
        items.push(PreviewItem {
            name: recipient.display_name(),
            kind: recipient.kind.record_kind(),
            record_id: recipient.record_id,
            mobile: recipient.mobile,
            time_zone,
            outcome,
        });
    }

    // With no records there is nothing to judge a field name by, and nobody to text.
    let unknown = fields.iter().zip(&field_seen).find(|(_, seen)| !**seen);
    if let Some((name, _)) = unknown.filter(|_| !items.is_empty()) {
        // Name the fields the records do have, to help fix a typo.
        let mut known: Vec<String> = BUILT_IN_FIELDS.iter().map(|s| (*s).to_owned()).collect();
        known.extend(first_fields);
        known.sort();
        return Err(TemplateError::UnknownField {
            name: (*name).to_owned(),
            known: known.join(", "),
        });
    }

    let texts = gsm7_texts + ucs2_texts;
    let shared: Vec<u32> = per_number.values().copied().filter(|n| *n > 1).collect();
    let totals = PreviewTotals {
        records: items.len() as u64,
        texts,
        blocked: items.len() as u64 - texts,
        blocked_by_reason,
        distinct_numbers: per_number.len() as u64,
        shared_numbers: shared.len() as u64,
        records_on_shared_numbers: shared.iter().map(|n| u64::from(*n)).sum(),
        gsm7_texts,
        ucs2_texts,
        message_units,
        estimated_cost: settings.price_per_segment.times(message_units),
    };
    Ok(Preview {
        template: template.source().to_owned(),
        items,
        totals,
        quiet_hours: settings.quiet_hours.clone(),
    })
}

/// Makes a preview against the current state of an opt-out store.
pub async fn preview_with_store(
    recipients: impl IntoIterator<Item = Recipient>,
    template: &Template,
    store: &dyn OptOutStore,
    settings: &PreviewSettings,
) -> Result<Preview, PreviewError> {
    let snapshot = store.snapshot().await?;
    Ok(preview(recipients, template, &snapshot, settings)?)
}

fn decide_one(
    recipient: &Recipient,
    template: &Template,
    opt_outs: &OptOutSnapshot,
    settings: &PreviewSettings,
    options: SegmentOptions,
    body: &mut String,
) -> PreviewOutcome {
    let mobile = PhoneNumber::parse(&recipient.mobile, settings.region);
    let opt_out = match &mobile {
        Ok(number) => opt_outs.state(*number),
        Err(_) => Default::default(),
    };
    let number = match consent::decide(
        recipient,
        &mobile,
        opt_out,
        &settings.program_years,
        settings.purpose,
    ) {
        Consent::Eligible { number } => number,
        Consent::Blocked { reason } => return PreviewOutcome::Blocked { reason },
    };
    if let Err(error) = template.render_into(|name| recipient.field(name), body) {
        let field = match error {
            TemplateError::MissingValue { name } => name,
            other => other.to_string(),
        };
        return PreviewOutcome::Blocked {
            reason: BlockReason::MissingMergeField { field },
        };
    }
    if body.trim().is_empty() {
        return PreviewOutcome::Blocked {
            reason: BlockReason::EmptyMessage,
        };
    }
    // Smart encoding is applied here, so the text stored and sent is the text counted, whatever
    // the provider does (the simulator has no smart encoding; Twilio's is off unless asked).
    if options.smart_encoding
        && let std::borrow::Cow::Owned(encoded) = segment::smart_encode(body)
    {
        *body = encoded;
    }
    // UTF-16 code units, not scalars: see MAX_BODY_CHARACTERS.
    let characters = body.encode_utf16().count();
    if characters > MAX_BODY_CHARACTERS {
        return PreviewOutcome::Blocked {
            reason: BlockReason::TooLong {
                characters: characters as u64,
                limit: MAX_BODY_CHARACTERS as u64,
            },
        };
    }
    let count = segment::count(
        body,
        SegmentOptions {
            smart_encoding: false,
            ..options
        },
    );
    PreviewOutcome::Eligible {
        number,
        body: body.clone(),
        encoding: count.encoding,
        segments: count.segments,
    }
}
