//! Shared helpers for the benchmarks in `benches/benches/`.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use sms_core::{
    Money, PermittedMarketingMethods, PreviewSettings, ProgramYear, ProgramYears, Purpose,
    Recipient, RecipientKind, RecordId, Region,
};

/// A reference file in `tests/data/` (where each came from: `tests/data/README.md`).
pub fn data_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(relative)
}

/// The message used by the preview benchmarks: two merge fields, one segment for most records.
pub const PREVIEW_TEMPLATE: &str =
    "Hi {first_name}, {course_title} starts Monday at 9am in Room 4. Reply STOP to opt out.";

const FIRST: &[&str] = &[
    "Ana", "Marcus", "Priya", "Dev", "Tom", "Lena", "Sam", "Grace", "Omar", "Zoë", "Julia", "Noah",
    "Wei", "Lucy", "Dana", "José", "Rita", "Max", "Aisha", "Chloé",
];
const LAST: &[&str] = &[
    "Lopez",
    "Reid",
    "Shah",
    "Baker",
    "Kowalski",
    "Ortiz",
    "Kim",
    "Haddad",
    "Fontaine",
    "Rossi",
    "Green",
    "Chen",
    "Nguyen",
    "Whitfield",
    "Park",
    "Moreno",
    "Ford",
    "Okafor",
];
const COURSES: &[&str] = &[
    "Intro to Welding",
    "Conversational Spanish I",
    "Watercolor Basics",
    "Robotics for Kids",
    "Pottery",
    "Yoga for Beginners",
    "Bookkeeping with QuickBooks",
    "French for Travellers",
    "First Aid & CPR",
    "Python Programming",
];
const AREA_CODES: &[u32] = &[212, 646, 347, 718, 917, 312, 415, 617, 303, 206, 404, 305];
const METHODS: &[&str] = &[
    "Email, Text",
    "Text",
    "Mail;Alerts",
    "Email",
    "text",
    "Email;Mail",
];

/// `count` realistic recipients, generated lazily and deterministically: clients and staff,
/// numbers typed in assorted formats (some blank, some shared by siblings, some invalid),
/// mixed permissions, a course title merge field, names with accents (some texts go UCS-2).
pub fn recipients(count: usize) -> impl Iterator<Item = Recipient> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: cheap and deterministic, good enough to vary test data.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut previous_mobile = String::new();
    (0..count).map(move |i| {
        let r = next();
        let area = AREA_CODES[(r % AREA_CODES.len() as u64) as usize];
        let exchange = 200 + (r >> 8) % 800;
        let line = (r >> 20) % 10_000;
        let mobile = match (r >> 34) % 20 {
            0 => String::new(),
            1 => "n/a".to_owned(),
            2 if !previous_mobile.is_empty() => previous_mobile.clone(),
            3 => format!("+1 {area} {exchange} {line:04}"),
            4 => format!("{area}.{exchange}.{line:04}"),
            5 => format!("1-{area}-{exchange}-{line:04}"),
            _ => format!("({area}) {exchange}-{line:04}"),
        };
        previous_mobile.clone_from(&mobile);
        let kind = if (r >> 40) % 10 == 0 {
            RecipientKind::Staff {
                permitted_sms_text: (r >> 44) % 4 != 0,
            }
        } else {
            RecipientKind::Client {
                permitted_marketing_methods: PermittedMarketingMethods::new(
                    METHODS[((r >> 44) % METHODS.len() as u64) as usize],
                ),
            }
        };
        let mut fields = BTreeMap::new();
        fields.insert(
            "course_title".to_owned(),
            COURSES[((r >> 48) % COURSES.len() as u64) as usize].to_owned(),
        );
        Recipient {
            record_id: RecordId::new(format!("C{i:07}")),
            kind,
            first_name: FIRST[((r >> 52) % FIRST.len() as u64) as usize].to_owned(),
            last_name: LAST[((r >> 56) % LAST.len() as u64) as usize].to_owned(),
            mobile,
            time_zone: Some("America/New_York".to_owned()),
            fields,
        }
    })
}

/// Settings for the preview benchmarks: US numbers, current program year, US price.
pub fn preview_settings() -> PreviewSettings {
    let year = ProgramYear::new("2026-2027").expect("not blank");
    PreviewSettings {
        region: Region::US,
        smart_encoding: false,
        price_per_segment: Money::parse("0.0083", "USD").expect("valid amount"),
        program_years: ProgramYears::current(year),
        purpose: Purpose::Manual,
        // The CLI's default: every record's zone is checked (and kept) for quiet hours.
        quiet_hours: Some(sms_core::quiet::QuietRule::default()),
    }
}
