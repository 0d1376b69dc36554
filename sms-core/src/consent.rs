//! Consent: whether a record may be texted, decided by the library, never by the caller.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::optout::OptOutState;
use crate::phone::{PhoneError, PhoneNumber};
use crate::recipient::{Recipient, RecipientKind};
use crate::time::Timestamp;

/// A program year, the unit the host keeps one database for (`"2026-2027"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProgramYear(String);

impl ProgramYear {
    /// A program year by its name; surrounding white space is ignored. `None` when blank.
    pub fn new(name: impl AsRef<str>) -> Option<ProgramYear> {
        let name = name.as_ref().trim();
        (!name.is_empty()).then(|| ProgramYear(name.to_owned()))
    }

    /// A year for when the host names none (every record is of the current one).
    pub(crate) fn unnamed() -> ProgramYear {
        ProgramYear("current".to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProgramYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The program year of the database the records come from, and the current one. Only the
/// current program year may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramYears {
    /// The program year of the database the host is working in.
    pub database: ProgramYear,
    /// The current program year.
    pub current: ProgramYear,
}

impl ProgramYears {
    /// Working in the current program year.
    pub fn current(year: ProgramYear) -> Self {
        Self {
            database: year.clone(),
            current: year,
        }
    }

    /// Whether the database is the current program year.
    pub fn is_current(&self) -> bool {
        self.database == self.current
    }
}

/// A kind of MyAccount Alert a client signs up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// First day of a course.
    CourseStart,
    /// An evaluation is due.
    EvaluationDue,
    /// An upcoming offering of interest.
    UpcomingOffering,
    /// A class was cancelled (weather, illness, other).
    ClassCancelled,
    /// A waitlisted slot opened.
    WaitlistSlotOpen,
    /// Date, time or location changed.
    ScheduleChanged,
}

/// Why a text is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "purpose", content = "alert", rename_all = "snake_case")]
pub enum Purpose {
    /// Staff wrote it in Tools > Marketing > SMS Text.
    Manual,
    /// An automatic MyAccount Alert (rules for per-kind sign-up arrive with Alerts).
    Alert(AlertKind),
}

/// Why a record will not be texted. Each reads well in a preview.
///
/// In JSON: `{"code": "opted_out", ...details}`, the code being [`BlockReason::code`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum BlockReason {
    /// The database is not the current program year: nobody in it may be texted.
    #[error("program year {database} is not the current program year ({current})")]
    NotCurrentProgramYear {
        /// The program year of the database.
        database: ProgramYear,
        /// The current program year.
        current: ProgramYear,
    },
    /// The record has no mobile number.
    #[error("no mobile number")]
    NoMobile,
    /// The mobile number cannot be texted.
    #[error("{problem}")]
    InvalidNumber {
        /// What is wrong with it.
        problem: PhoneError,
    },
    /// A client whose Permitted Marketing Methods hold neither Text nor Alerts.
    #[error("client has neither Text nor Alerts in Permitted Marketing Methods")]
    ClientNotPermitted,
    /// A staff member whose Permitted SMS Text is not Yes.
    #[error("staff member's Permitted SMS Text is not Yes")]
    StaffNotPermitted,
    /// The number replied STOP (and not START since).
    #[error("number {number} opted out (STOP) on {since}")]
    OptedOut {
        /// The number that opted out.
        number: PhoneNumber,
        /// When.
        since: Timestamp,
    },
    /// The message uses a merge field this record has no value for.
    #[error("merge field {{{field}}} is empty for this record")]
    MissingMergeField {
        /// The field's name.
        field: String,
    },
    /// The rendered message is empty.
    #[error("the message is empty")]
    EmptyMessage,
    /// The rendered message is longer than the provider accepts (Twilio: 1,600 characters).
    #[error("the message has {characters} characters; the limit is {limit}")]
    TooLong {
        /// Characters in the rendered message.
        characters: u64,
        /// The provider's limit.
        limit: u64,
    },
    /// Quiet hours apply, and the record's time zone is not one the library knows: its local
    /// time cannot be told, so it is not texted rather than texted in another zone's hours
    /// (which could be the middle of its night).
    #[error(
        "unknown time zone {time_zone:?}: the local time, and so quiet hours, cannot be told \
         (fix the record's time zone)"
    )]
    UnknownTimeZone {
        /// The zone as the record gives it.
        time_zone: String,
    },
}

impl BlockReason {
    /// A short stable code for grouping (`opted_out`, `no_mobile`...), as in JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            BlockReason::NotCurrentProgramYear { .. } => "not_current_program_year",
            BlockReason::NoMobile => "no_mobile",
            BlockReason::InvalidNumber { .. } => "invalid_number",
            BlockReason::ClientNotPermitted => "client_not_permitted",
            BlockReason::StaffNotPermitted => "staff_not_permitted",
            BlockReason::OptedOut { .. } => "opted_out",
            BlockReason::MissingMergeField { .. } => "missing_merge_field",
            BlockReason::EmptyMessage => "empty_message",
            BlockReason::TooLong { .. } => "too_long",
            BlockReason::UnknownTimeZone { .. } => "unknown_time_zone",
        }
    }
}

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "consent", rename_all = "snake_case")]
pub enum Consent {
    /// The record may be texted at this number.
    Eligible {
        /// The normalised number.
        number: PhoneNumber,
    },
    /// The record may not be texted.
    Blocked {
        /// Why.
        reason: BlockReason,
    },
}

impl Consent {
    /// Whether the record may be texted.
    pub fn is_eligible(&self) -> bool {
        matches!(self, Consent::Eligible { .. })
    }
}

/// Decides whether `recipient` may be texted.
///
/// `mobile` is the record's number as parsed by the caller (so a preview parses each number
/// once); `opt_out` is the current opt-out state of that number. The first reason found, in the
/// order program year, missing or invalid number, permission, opt-out, is reported.
/// Purpose `Alert(_)` follows the same rules as `Manual` until per-kind sign-up lands.
pub fn decide(
    recipient: &Recipient,
    mobile: &Result<PhoneNumber, PhoneError>,
    opt_out: OptOutState,
    years: &ProgramYears,
    _purpose: Purpose,
) -> Consent {
    let blocked = |reason| Consent::Blocked { reason };
    if !years.is_current() {
        return blocked(BlockReason::NotCurrentProgramYear {
            database: years.database.clone(),
            current: years.current.clone(),
        });
    }
    let number = match mobile {
        Ok(number) => *number,
        Err(PhoneError::Blank) => return blocked(BlockReason::NoMobile),
        Err(problem) => {
            return blocked(BlockReason::InvalidNumber {
                problem: problem.clone(),
            });
        }
    };
    match &recipient.kind {
        RecipientKind::Client {
            permitted_marketing_methods: methods,
        } => {
            if !(methods.allows_text() || methods.allows_alerts()) {
                return blocked(BlockReason::ClientNotPermitted);
            }
        }
        RecipientKind::Staff { permitted_sms_text } => {
            if !permitted_sms_text {
                return blocked(BlockReason::StaffNotPermitted);
            }
        }
    }
    if let OptOutState::OptedOut { since } = opt_out {
        return blocked(BlockReason::OptedOut { number, since });
    }
    Consent::Eligible { number }
}
