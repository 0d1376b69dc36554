//! A preview from the host's own records: who will be texted, who is skipped and why, and
//! what it will cost, printed as the office reads it before pressing Send.
//!
//! Run it with `cargo run -p sms-core --example preview`.
//!
//! A registration system already has its clients and staff in its own database; it does not
//! write a CSV to text them. It maps each row to a [`Recipient`] (the permission field as
//! stored, the mobile number as typed), and `sms-core` decides consent, renders the message,
//! and counts segments exactly as Twilio bills them. Nothing here does I/O: the opt-outs come
//! in as a snapshot, which a real host reads from its store (`sms_sqlite::SqliteStore`).

use std::collections::BTreeMap;

use sms_core::preview::preview;
use sms_core::quiet::QuietRule;
use sms_core::{
    ChangeSource, Encoding, InMemoryOptOutStore, Money, OptOutAction, OptOutChange, OptOutStore,
    PermittedMarketingMethods, PhoneNumber, PreviewOutcome, PreviewSettings, ProgramYear,
    ProgramYears, Purpose, Recipient, RecipientKind, RecordId, Region, Template, Timestamp,
};

/// A row of the host's own enrolment table: whatever shape the host already has.
struct Enrolment {
    id: &'static str,
    is_staff: bool,
    first: &'static str,
    last: &'static str,
    mobile: &'static str,
    /// Clients: the *Permitted Marketing Methods* field. Staff: *Permitted SMS Text*.
    permission: &'static str,
    course: &'static str,
}

/// What the host's query returned for "everyone in Pottery 101".
const ROWS: &[Enrolment] = &[
    Enrolment {
        id: "C-1001",
        is_staff: false,
        first: "Ada",
        last: "Lovelace",
        mobile: "(212) 555-0123",
        permission: "Email, Text",
        course: "Pottery 101",
    },
    Enrolment {
        id: "C-1002",
        is_staff: false,
        first: "Zoë",
        last: "Ørsted",
        mobile: "212.555.0124",
        permission: "Mail;Alerts",
        course: "Pottery 101",
    },
    // Same number as C-1001: a parent with two children enrolled gets one text per record.
    Enrolment {
        id: "C-1003",
        is_staff: false,
        first: "Byron",
        last: "Lovelace",
        mobile: "+1 212 555 0123",
        permission: "Text",
        course: "Pottery 101",
    },
    Enrolment {
        id: "C-1004",
        is_staff: false,
        first: "Grace",
        last: "Hopper",
        mobile: "",
        permission: "Text",
        course: "Pottery 101",
    },
    Enrolment {
        id: "C-1005",
        is_staff: false,
        first: "Alan",
        last: "Turing",
        mobile: "212-555-0126",
        permission: "Email",
        course: "Pottery 101",
    },
    // Replied STOP last week: the store knows it, the host's table does not.
    Enrolment {
        id: "C-1006",
        is_staff: false,
        first: "Edsger",
        last: "Dijkstra",
        mobile: "212 555 0127",
        permission: "Text",
        course: "Pottery 101",
    },
    Enrolment {
        id: "C-1007",
        is_staff: false,
        first: "Barbara",
        last: "Liskov",
        mobile: "212-555-O128",
        permission: "Text",
        course: "Pottery 101",
    },
    Enrolment {
        id: "S-17",
        is_staff: true,
        first: "Mary",
        last: "Somerville",
        mobile: "1-212-555-0129",
        permission: "Yes",
        course: "Pottery 101",
    },
    Enrolment {
        id: "S-18",
        is_staff: true,
        first: "Charles",
        last: "Babbage",
        mobile: "212 555 0130",
        permission: "No",
        course: "Pottery 101",
    },
];

/// The host's row as the library's recipient. Extra merge fields go in `fields`.
fn to_recipient(row: &Enrolment) -> Recipient {
    let kind = if row.is_staff {
        RecipientKind::Staff {
            // The host's own Yes/No reading; `sms_core::recipient::parse_yes_no` reads the
            // usual spellings when the field is text.
            permitted_sms_text: row.permission == "Yes",
        }
    } else {
        RecipientKind::Client {
            permitted_marketing_methods: PermittedMarketingMethods::new(row.permission),
        }
    };
    Recipient {
        record_id: RecordId::new(row.id),
        kind,
        first_name: row.first.to_owned(),
        last_name: row.last.to_owned(),
        mobile: row.mobile.to_owned(),
        time_zone: Some("America/New_York".to_owned()),
        fields: BTreeMap::from([("course_title".to_owned(), row.course.to_owned())]),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The opt-outs. A real host opens its SQLite store instead; an in-memory one keeps this
    // example free of files. Times are fixed so the output is the same on every run.
    let opt_outs = InMemoryOptOutStore::new();
    opt_outs
        .record(OptOutChange {
            number: PhoneNumber::from_e164("+12125550127")?,
            action: OptOutAction::Stop,
            at: Timestamp::from_unix_ms(1_767_225_600_000), // 2026-01-01T00:00:00Z
            source: ChangeSource::Inbound,
            message_sid: None,
            body: Some("STOP".to_owned()),
        })
        .await?;

    // What the office typed, checked once: a field that no record has is an error here, not
    // a text with a hole in it.
    let template = Template::parse(
        "Hi {first_name}, {course_title} moves to Room 4 on Monday – same time. Reply STOP to opt out.",
    )?;
    let settings = PreviewSettings {
        region: Region::parse("US").ok_or("unknown region")?,
        // Twilio's Smart Encoding: the en dash above becomes '-', keeping the text GSM-7
        // (160 characters a segment instead of 70). The preview counts what will be sent.
        smart_encoding: true,
        price_per_segment: Money::parse("0.0083", "USD").ok_or("bad price")?,
        program_years: ProgramYears::current(ProgramYear::new("2026").ok_or("blank year")?),
        purpose: Purpose::Manual,
        // Quiet hours (08:00-21:00 in each record's zone, else New York's): checked when each
        // text is about to go, so a campaign is held, not sent, at night. `None` ignores them.
        quiet_hours: Some(QuietRule::default()),
    };

    let preview = preview(
        ROWS.iter().map(to_recipient),
        &template,
        &opt_outs.snapshot().await?,
        &settings,
    )?;

    // The preview is a value: render it however the office's screen wants it.
    println!("Message: {}", preview.template);
    println!();
    println!(
        "{:<8} {:<7} {:<18} {:<16} outcome",
        "record", "kind", "name", "mobile"
    );
    for item in &preview.items {
        let outcome = match &item.outcome {
            PreviewOutcome::Eligible {
                number,
                encoding,
                segments,
                ..
            } => {
                // UCS-2 (a character outside the GSM alphabet) fits 70 characters a segment
                // instead of 160: the office sees which texts cost more and why.
                let encoding = match encoding {
                    Encoding::Gsm7 => "GSM-7",
                    Encoding::Ucs2 => "UCS-2",
                };
                format!("text {} ({segments} unit(s), {encoding})", number.e164())
            }
            PreviewOutcome::Blocked { reason } => format!("skipped: {reason}"),
        };
        println!(
            "{:<8} {:<7} {:<18} {:<16} {outcome}",
            item.record_id.as_str(),
            item.kind.label(),
            item.name,
            item.mobile
        );
    }

    let totals = &preview.totals;
    println!();
    println!("records selected   {}", totals.records);
    println!(
        "to text            {} ({} distinct numbers, {} shared by {} records)",
        totals.texts,
        totals.distinct_numbers,
        totals.shared_numbers,
        totals.records_on_shared_numbers
    );
    println!("skipped            {}", totals.blocked);
    for (reason, count) in &totals.blocked_by_reason {
        println!("  {reason:<24} {count}");
    }
    println!("message units      {}", totals.message_units);
    println!("estimated cost     {}", totals.estimated_cost);

    // The first eligible record's text, exactly as it will be sent.
    if let Some(PreviewOutcome::Eligible { body, .. }) = preview
        .items
        .iter()
        .map(|i| &i.outcome)
        .find(|o| matches!(o, PreviewOutcome::Eligible { .. }))
    {
        println!();
        println!("First text: {body}");
    }
    Ok(())
}
