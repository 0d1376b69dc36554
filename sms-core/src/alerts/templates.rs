//! Alert wordings: one template per kind, with merge fields, defaults that fit one GSM-7
//! segment for typical values, and a lint naming what would make a text UCS-2 or longer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::consent::AlertKind;
use crate::segment::{self, Encoding, SegmentOptions};
use crate::template::{Template, TemplateError};

/// The merge fields an event provides (besides the record's own: `first_name`, `last_name`,
/// `record_id`, `mobile` and the roster's extra columns, which win when they share a name).
///
/// `course_title` falls back to the section id when the roster has no such column; dates and
/// times are written in the alert's time zone.
pub fn event_fields() -> &'static [&'static str] {
    &[
        "org_name",
        "course_title",
        "section",
        "start_date",
        "start_time",
        "location",
        "old",
        "new",
        "hold_until",
        "reason",
    ]
}

/// The record fields every roster has.
const RECORD_FIELDS: [&str; 4] = ["first_name", "last_name", "record_id", "mobile"];

/// Typical values of every field, the ones the lint measures with.
pub fn typical_values() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("org_name", "Riverside Community Ed"),
        ("course_title", "Intro to Watercolor"),
        ("section", "ART-101-01"),
        ("start_date", "Mon Mar 9"),
        ("start_time", "6:30 PM"),
        ("location", "Room 204, Main Campus"),
        ("old", "Mon Mar 9 6:30 PM, Room 12"),
        ("new", "Tue Mar 10 6:30 PM, Room 204"),
        ("hold_until", "Mar 9 5:00 PM"),
        ("reason", "instructor illness"),
        ("first_name", "Alexandra"),
        ("last_name", "Montgomery"),
        ("record_id", "C100042"),
        ("mobile", "(212) 555-0123"),
    ])
}

/// The embedded wording of `kind`. Each fits one GSM-7 segment with [`typical_values`]
/// (tested).
pub fn default_template(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::CourseStart => {
            "{org_name}: {course_title} starts tomorrow, {start_date} at {start_time}. Reply STOP to opt out."
        }
        AlertKind::EvaluationDue => {
            "{org_name}: the evaluation for {course_title} is open. Please tell us how it went. Reply STOP to opt out."
        }
        AlertKind::UpcomingOffering => {
            "{org_name}: {course_title} is open for registration. Reply STOP to opt out."
        }
        AlertKind::ClassCancelled => {
            "{org_name}: {course_title} on {start_date} at {start_time} is cancelled. Reply STOP to opt out."
        }
        AlertKind::WaitlistSlotOpen => {
            "{org_name}: a seat opened in {course_title}, held for you until {hold_until}. Reply STOP to opt out."
        }
        AlertKind::ScheduleChanged => {
            "{org_name}: {course_title} changed from {old} to {new}. Reply STOP to opt out."
        }
    }
}

/// What is wrong with a template for alerts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateCheckError {
    /// The template does not parse.
    #[error("{kind} template: {error}")]
    Parse {
        /// The kind.
        kind: AlertKind,
        /// What is wrong.
        error: TemplateError,
    },
    /// A field neither the event nor the roster provides.
    #[error(
        "{kind} template uses {{{field}}}, which neither the event nor the roster provides; known: {known}"
    )]
    UnknownField {
        /// The kind.
        kind: AlertKind,
        /// The field.
        field: String,
        /// The fields that exist.
        known: String,
    },
    /// A field the event would leave empty (`{start_date}` without a start).
    #[error("{kind} template uses {{{field}}}: give {what}")]
    EventValueMissing {
        /// The kind.
        kind: AlertKind,
        /// The field.
        field: String,
        /// What to give.
        what: String,
    },
}

/// The templates in force: the stored ones, the embedded defaults for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTemplates {
    overrides: BTreeMap<AlertKind, String>,
}

impl AlertTemplates {
    /// The defaults overridden by `stored`.
    pub fn new(stored: impl IntoIterator<Item = (AlertKind, String)>) -> Self {
        AlertTemplates {
            overrides: stored.into_iter().collect(),
        }
    }

    /// The wording of `kind`.
    pub fn source(&self, kind: AlertKind) -> &str {
        self.overrides
            .get(&kind)
            .map_or_else(|| default_template(kind), String::as_str)
    }

    /// Whether `kind` uses the embedded default.
    pub fn is_default(&self, kind: AlertKind) -> bool {
        !self.overrides.contains_key(&kind)
    }

    /// The parsed template of `kind`.
    pub fn parsed(&self, kind: AlertKind) -> Result<Template, TemplateCheckError> {
        Template::parse(self.source(kind))
            .map_err(|error| TemplateCheckError::Parse { kind, error })
    }
}

/// Checks that `template` (for `kind`) can be filled from an event with `event_values` and a
/// roster with `roster_columns`: every field known, and every event field it uses has a value.
pub(crate) fn check_for_event(
    kind: AlertKind,
    template: &Template,
    event_values: &BTreeMap<String, String>,
    roster_columns: &[&str],
) -> Result<(), TemplateCheckError> {
    for field in template.fields() {
        let from_roster = RECORD_FIELDS.contains(&field) || roster_columns.contains(&field);
        if from_roster {
            continue;
        }
        if !event_fields().contains(&field) {
            let mut known: Vec<&str> = event_fields().to_vec();
            known.extend(RECORD_FIELDS);
            known.extend(roster_columns);
            return Err(TemplateCheckError::UnknownField {
                kind,
                field: field.to_owned(),
                known: known.join(", "),
            });
        }
        if event_values.get(field).is_none_or(|v| v.trim().is_empty()) {
            let what = match field {
                "start_date" | "start_time" => "the start (--starts-at)".to_owned(),
                "old" | "new" => "the old and new values (--old, --new)".to_owned(),
                "hold_until" => "the hold-until time (--hold-until)".to_owned(),
                "reason" => "the reason (--reason)".to_owned(),
                other => format!("a roster column {other}"),
            };
            return Err(TemplateCheckError::EventValueMissing {
                kind,
                field: field.to_owned(),
                what,
            });
        }
    }
    Ok(())
}

/// A warning about a wording, measured with [`typical_values`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum LintWarning {
    /// Characters outside GSM-7 make every text UCS-2 (70 characters a segment, not 160).
    #[error("{} forces UCS-2 (70 characters a segment instead of 160)", characters.iter().map(|c| format!("{c:?} (U+{:04X})", c.chars().next().map_or(0, u32::from))).collect::<Vec<_>>().join(", "))]
    Ucs2 {
        /// The characters responsible, in order of first appearance.
        characters: Vec<String>,
    },
    /// With typical values the text needs more than one segment.
    #[error(
        "{length} {unit} with typical values: {segments} segments, past one segment ({limit}) by {over}"
    )]
    PastOneSegment {
        /// Its length in the encoding's units (septets or UTF-16 units).
        length: u32,
        /// `characters` (GSM-7 septets) or `UCS-2 units`.
        unit: String,
        /// One segment holds this many.
        limit: u32,
        /// By how much it is longer.
        over: u32,
        /// Segments it needs.
        segments: u32,
    },
    /// A field the event does not provide: it must come from a roster column.
    #[error("{{{field}}} is not an alert field: every roster must have a column {field}")]
    RosterField {
        /// The field.
        field: String,
    },
}

/// Lints `source`: parse errors are errors; UCS-2, length past one segment (with
/// [`typical_values`]) and fields only a roster column could fill are warnings.
pub fn lint(source: &str) -> Result<Vec<LintWarning>, TemplateError> {
    let template = Template::parse(source)?;
    let typical = typical_values();
    let mut warnings = Vec::new();
    for field in template.fields() {
        if !typical.contains_key(field) {
            warnings.push(LintWarning::RosterField {
                field: field.to_owned(),
            });
        }
    }
    // A roster field's typical value is taken as ten letters.
    let body = template.render(|f| Some(typical.get(f).copied().unwrap_or("Abcdefghij")))?;
    let report = segment::analyze(&body, SegmentOptions::default());
    if report.encoding == Encoding::Ucs2 {
        let mut characters: Vec<String> = Vec::new();
        for c in report.non_gsm {
            if !characters.contains(&c) {
                characters.push(c);
            }
        }
        warnings.push(LintWarning::Ucs2 { characters });
    }
    if report.segments > 1 {
        let (limit, unit) = match report.encoding {
            Encoding::Gsm7 => (160, "characters"),
            Encoding::Ucs2 => (70, "UCS-2 units"),
        };
        let length: u32 = report.segment_units.iter().sum();
        warnings.push(LintWarning::PastOneSegment {
            length,
            unit: unit.to_owned(),
            limit,
            over: length.saturating_sub(limit),
            segments: report.segments,
        });
    }
    Ok(warnings)
}
