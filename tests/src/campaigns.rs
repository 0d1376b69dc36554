//! Campaigns made for tests: unique bodies per record (so a provider's history tells exactly
//! which record a message belongs to), some numbers shared by several records.

use sms_core::journal::{Campaign, CampaignId, CampaignSettings};
use sms_core::{Encoding, PhoneNumber, PreviewItem, PreviewOutcome, RecordId, Timestamp};

/// The `i`-th test number, `+1212200nnnn`.
pub fn number(i: usize) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1212200{:04}", i % 10_000)).expect("a valid NANP number")
}

/// A campaign of `records` eligible records; record `i` goes to number `i % numbers` with the
/// body `"Class update for record i"`.
pub fn campaign(id: &str, records: usize, numbers: usize, settings: CampaignSettings) -> Campaign {
    let numbers = numbers.max(1);
    let items = (0..records)
        .map(|i| PreviewItem {
            record_id: RecordId::new(format!("C-{i}")),
            kind: sms_core::RecordKind::Client,
            name: format!("Client {i}"),
            mobile: number(i % numbers).to_string(),
            time_zone: None,
            outcome: PreviewOutcome::Eligible {
                number: number(i % numbers),
                body: body(i),
                encoding: Encoding::Gsm7,
                segments: 1,
            },
        })
        .collect();
    Campaign {
        id: CampaignId::new(id).expect("a test id is not blank"),
        name: format!("Test campaign {id}"),
        created_at: Timestamp::now(),
        template: "Class update for record {record_id}".into(),
        settings,
        items,
    }
}

/// The body of record `i` in [`campaign`].
pub fn body(i: usize) -> String {
    format!("Class update for record {i}")
}
