//! The 1,600-character limit is counted the way Twilio is likeliest to count it (UTF-16 code
//! units), so a text Twilio would refuse with 21617 is blocked in the preview instead.

use std::collections::BTreeMap;

use sms_core::preview::{MAX_BODY_CHARACTERS, preview};
use sms_core::{
    Money, OptOutSnapshot, PreviewOutcome, PreviewSettings, ProgramYear, ProgramYears, Purpose,
    Recipient, RecipientKind, RecordId, Region, Template,
};

fn settings() -> PreviewSettings {
    let year = ProgramYear::new("2026-2027").expect("not blank");
    PreviewSettings {
        region: Region::US,
        smart_encoding: false,
        price_per_segment: Money::parse("0.0083", "USD").expect("valid"),
        program_years: ProgramYears {
            database: year.clone(),
            current: year,
        },
        purpose: Purpose::Manual,
        quiet_hours: None,
    }
}

fn outcome(body: &str) -> PreviewOutcome {
    let staff = Recipient {
        record_id: RecordId::new("S1"),
        kind: RecipientKind::Staff {
            permitted_sms_text: true,
        },
        first_name: "Ana".into(),
        last_name: "Lopez".into(),
        mobile: "212-555-0123".into(),
        time_zone: None,
        fields: BTreeMap::new(),
    };
    let template = Template::parse(body).expect("no fields");
    let result =
        preview([staff], &template, &OptOutSnapshot::default(), &settings()).expect("no fields");
    result.items[0].outcome.clone()
}

#[test]
fn emoji_count_twice_against_the_limit() {
    assert_eq!(MAX_BODY_CHARACTERS, 1_600);
    // 900 emoji: 900 scalars but 1,800 UTF-16 code units, over Twilio's limit.
    match outcome(&"\u{1F44D}".repeat(900)) {
        PreviewOutcome::Blocked { reason } => {
            assert_eq!(reason.code(), "too_long");
            assert!(reason.to_string().contains("1800"), "{reason}");
        }
        other => panic!("900 emoji must be blocked: {other:?}"),
    }
    // 800 emoji are 1,600 units: at the limit, allowed; one more unit is over.
    assert!(matches!(
        outcome(&"\u{1F44D}".repeat(800)),
        PreviewOutcome::Eligible { .. }
    ));
    assert!(matches!(
        outcome(&format!("{}a", "\u{1F44D}".repeat(800))),
        PreviewOutcome::Blocked { .. }
    ));
    // Accented letters of the BMP count once each.
    assert!(matches!(
        outcome(&"é".repeat(1_600)),
        PreviewOutcome::Eligible { .. }
    ));
}
