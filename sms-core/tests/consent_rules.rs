//! Property tests of the consent rules as a preview applies them: nobody blocked is ever
//! texted, and STOP then START restores eligibility.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use sms_core::preview::preview;
use sms_core::{
    BlockReason, ChangeSource, InMemoryOptOutStore, Money, OptOutAction, OptOutChange,
    OptOutSnapshot, OptOutStore, PermittedMarketingMethods, PhoneNumber, PreviewOutcome,
    PreviewSettings, ProgramYear, ProgramYears, Purpose, Recipient, RecipientKind, RecordId,
    Region, Template, Timestamp,
};

/// Mobiles as typed, with what the README says each is: the E.164 number, or why not. Written
/// out by hand so the oracle does not lean on the parser it checks.
const MOBILES: &[(&str, Mobile)] = &[
    ("(212) 555-0123", Mobile::Valid("+12125550123")),
    ("212.555.0123", Mobile::Valid("+12125550123")),
    ("+1 646 555 0199", Mobile::Valid("+16465550199")),
    ("1-347-555-0111", Mobile::Valid("+13475550111")),
    ("917 555 0188", Mobile::Valid("+19175550188")),
    ("+15005550006", Mobile::Valid("+15005550006")),
    ("", Mobile::Blank),
    ("   ", Mobile::Blank),
    ("n/a", Mobile::Invalid),
    ("555-123-4567", Mobile::Invalid),
    ("(718) 555-0100 x12", Mobile::Invalid),
    ("12345", Mobile::Invalid),
    ("212-555-O123", Mobile::Invalid),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mobile {
    Valid(&'static str),
    Blank,
    Invalid,
}

impl Mobile {
    fn number(self) -> Option<PhoneNumber> {
        match self {
            Mobile::Valid(e164) => Some(PhoneNumber::from_e164(e164).expect("written valid")),
            Mobile::Blank | Mobile::Invalid => None,
        }
    }
}

/// Entries of Permitted Marketing Methods, in the spellings staff type.
const ENTRIES: &[&str] = &[
    "Text",
    "text",
    "TEXT",
    " Text ",
    "Alerts",
    "alerts",
    "ALERTS",
    "Email",
    "Mail",
    "Textbook",
    "Texting",
    "Alert",
    "Text message",
    "No Text",
    "",
];

/// What goes between entries: the README's `,` and `;`, and the like.
const BETWEEN: &[&str] = &[", ", ",", ";", " ; ", "|", "/", "\n", "\r\n"];

fn methods_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::sample::select(ENTRIES), prop::sample::select(BETWEEN)),
        0..4,
    )
    .prop_map(|parts| {
        let mut list = String::new();
        for (i, (entry, between)) in parts.iter().enumerate() {
            if i > 0 {
                list.push_str(between);
            }
            list.push_str(entry);
        }
        list
    })
}

fn recipient_strategy() -> impl Strategy<Value = (Recipient, Mobile)> {
    (
        0..1_000u32,
        any::<bool>(),
        methods_strategy(),
        any::<bool>(),
        prop::sample::select(MOBILES),
        prop::option::of("[A-Za-z ]{0,12}"),
    )
        .prop_map(
            |(id, is_client, methods, permitted, (mobile, expected), course)| {
                let kind = if is_client {
                    RecipientKind::Client {
                        permitted_marketing_methods: PermittedMarketingMethods::new(methods),
                    }
                } else {
                    RecipientKind::Staff {
                        permitted_sms_text: permitted,
                    }
                };
                let mut fields = BTreeMap::new();
                fields.insert("course_title".to_owned(), course.unwrap_or_default());
                let recipient = Recipient {
                    record_id: RecordId::new(format!("R{id}")),
                    kind,
                    first_name: "Ana".into(),
                    last_name: "Lopez".into(),
                    mobile: mobile.to_owned(),
                    time_zone: None,
                    fields,
                };
                (recipient, expected)
            },
        )
}

fn settings(current: bool) -> PreviewSettings {
    let year = ProgramYear::new("2026-2027").expect("not blank");
    let database = if current {
        year.clone()
    } else {
        ProgramYear::new("2025-2026").expect("not blank")
    };
    PreviewSettings {
        region: Region::US,
        smart_encoding: false,
        price_per_segment: Money::parse("0.0083", "USD").expect("valid"),
        program_years: ProgramYears {
            database,
            current: year,
        },
        purpose: Purpose::Manual,
        quiet_hours: None,
    }
}

/// The README's rule, stated independently: the field is a list whose entries are separated by
/// punctuation (anything that is not a letter, a digit or a space); a client may be texted when
/// an entry, trimmed, is `Text` or `Alerts` in any case.
fn client_permitted(list: &str) -> bool {
    list.split(|c: char| !(c.is_alphanumeric() || c == ' '))
        .map(|entry| entry.trim_matches(' '))
        .any(|entry| entry.eq_ignore_ascii_case("text") || entry.eq_ignore_ascii_case("alerts"))
}

fn number(raw: &str) -> Option<PhoneNumber> {
    PhoneNumber::parse(raw, Region::US).ok()
}

/// The reason code the rules give, checked in the documented order: program year, then a
/// missing or invalid number, then permission, then opt-out, then the message.
fn expected_code(
    recipient: &Recipient,
    mobile: Mobile,
    current: bool,
    opted_out: &HashSet<PhoneNumber>,
    course_needed: bool,
) -> Option<&'static str> {
    if !current {
        return Some("not_current_program_year");
    }
    let number = match mobile {
        Mobile::Blank => return Some("no_mobile"),
        Mobile::Invalid => return Some("invalid_number"),
        Mobile::Valid(_) => mobile.number(),
    };
    match &recipient.kind {
        RecipientKind::Client {
            permitted_marketing_methods,
        } if !client_permitted(permitted_marketing_methods.as_str()) => {
            return Some("client_not_permitted");
        }
        RecipientKind::Staff {
            permitted_sms_text: false,
        } => return Some("staff_not_permitted"),
        _ => {}
    }
    if number.is_some_and(|n| opted_out.contains(&n)) {
        return Some("opted_out");
    }
    if course_needed && recipient.fields["course_title"].trim().is_empty() {
        return Some("missing_merge_field");
    }
    None
}

proptest! {
    #[test]
    fn eligible_exactly_when_every_rule_allows_and_the_first_rule_is_the_reason(
        recipients in prop::collection::vec(recipient_strategy(), 0..40),
        stopped in prop::collection::hash_set(prop::sample::select(MOBILES), 0..4),
        current in any::<bool>(),
        with_course in any::<bool>(),
    ) {
        let opted_out: HashSet<PhoneNumber> =
            stopped.iter().filter_map(|(_, m)| m.number()).collect();
        let since = Timestamp::from_unix_ms(1_000);
        let snapshot = OptOutSnapshot::new(opted_out.iter().map(|n| (*n, since)));
        let body = if with_course { "Hi {first_name}: {course_title}" } else { "Hi {first_name}" };
        let template = Template::parse(body).expect("valid template");
        let people: Vec<Recipient> = recipients.iter().map(|(r, _)| r.clone()).collect();
        let result = preview(people, &template, &snapshot, &settings(current))
            .expect("course_title is a known field");

        prop_assert_eq!(result.items.len(), recipients.len());
        let mut units = 0u64;
        for (item, (recipient, mobile)) in result.items.iter().zip(&recipients) {
            let expected = expected_code(recipient, *mobile, current, &opted_out, with_course);
            match &item.outcome {
                PreviewOutcome::Eligible { number, segments, .. } => {
                    prop_assert_eq!(expected, None, "texted but a rule forbids it: {:?}", recipient);
                    prop_assert_eq!(Some(*number), mobile.number());
                    units += u64::from(*segments);
                }
                PreviewOutcome::Blocked { reason } => {
                    prop_assert_eq!(
                        Some(reason.code()), expected,
                        "wrong reason for {:?}: {}", recipient, reason
                    );
                    if let BlockReason::OptedOut { number, since: at } = reason {
                        prop_assert_eq!(Some(*number), mobile.number());
                        prop_assert_eq!(*at, since);
                    }
                }
            }
        }
        let t = &result.totals;
        prop_assert_eq!(t.texts + t.blocked, t.records);
        prop_assert_eq!(t.message_units, units);
        prop_assert_eq!(t.blocked_by_reason.values().sum::<u64>(), t.blocked);
    }

    #[test]
    fn stop_then_start_restores_eligibility(
        (recipient, _) in recipient_strategy(),
        stop_at in 0i64..1_000_000,
        gap in 1i64..1_000_000,
        restart in any::<bool>(),
    ) {
        let Some(n) = number(&recipient.mobile) else { return Ok(()); };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let store = InMemoryOptOutStore::new();
        let change = |action, at| OptOutChange {
            number: n,
            action,
            at: Timestamp::from_unix_ms(at),
            source: ChangeSource::Inbound,
            message_sid: None,
            body: None,
        };
        let template = Template::parse("Class moved to Room 4").expect("valid");
        let before = runtime.block_on(async {
            let snapshot = store.snapshot().await.expect("in memory");
            preview([recipient.clone()], &template, &snapshot, &settings(true))
        }).expect("no fields");
        runtime.block_on(store.record(change(OptOutAction::Stop, stop_at))).expect("in memory");
        if restart {
            runtime.block_on(store.record(change(OptOutAction::Start, stop_at + gap))).expect("in memory");
        }
        let after = runtime.block_on(async {
            let snapshot = store.snapshot().await.expect("in memory");
            preview([recipient.clone()], &template, &snapshot, &settings(true))
        }).expect("no fields");
        if restart {
            prop_assert_eq!(&before.items[0].outcome, &after.items[0].outcome);
        } else {
            prop_assert!(
                matches!(after.items[0].outcome, PreviewOutcome::Blocked { .. }),
                "texted after STOP without START"
            );
        }
    }
}

#[test]
fn a_stop_blocks_every_record_that_carries_the_number() {
    let parent_number = number("(646) 555-0199").expect("valid");
    let make = |id: &str, mobile: &str| Recipient {
        record_id: RecordId::new(id),
        kind: RecipientKind::Client {
            permitted_marketing_methods: PermittedMarketingMethods::new("Text"),
        },
        first_name: "Kid".into(),
        last_name: "Shah".into(),
        mobile: mobile.into(),
        time_zone: None,
        fields: BTreeMap::new(),
    };
    let kids = vec![
        make("C1", "+1 646 555 0199"),
        make("C2", "646.555.0199"),
        make("C3", "212-555-0123"),
    ];
    let template = Template::parse("Hi {first_name}").expect("valid");
    let open = preview(
        kids.clone(),
        &template,
        &OptOutSnapshot::default(),
        &settings(true),
    )
    .expect("valid");
    assert_eq!(
        open.totals.texts, 3,
        "each record on a shared number is texted"
    );
    assert_eq!(open.totals.distinct_numbers, 2);
    assert_eq!(open.totals.shared_numbers, 1);
    assert_eq!(open.totals.records_on_shared_numbers, 2);

    let stopped = OptOutSnapshot::new([(parent_number, Timestamp::from_unix_ms(5))]);
    let after = preview(kids, &template, &stopped, &settings(true)).expect("valid");
    assert_eq!(after.totals.texts, 1);
    assert_eq!(after.totals.blocked_by_reason["opted_out"], 2);
}

#[test]
fn an_unknown_merge_field_fails_the_preview_instead_of_sending_a_blank() {
    let template = Template::parse("Hi {frist_name}").expect("valid syntax");
    let recipients = vec![Recipient {
        record_id: RecordId::new("C1"),
        kind: RecipientKind::Staff {
            permitted_sms_text: true,
        },
        first_name: "Ana".into(),
        last_name: "Lopez".into(),
        mobile: "212-555-0123".into(),
        time_zone: None,
        fields: BTreeMap::new(),
    }];
    let err = preview(
        recipients,
        &template,
        &OptOutSnapshot::default(),
        &settings(true),
    )
    .expect_err("frist_name is a typo");
    assert!(err.to_string().contains("frist_name"), "{err}");
}

#[test]
fn smart_encoding_stores_the_text_it_counted_and_long_texts_are_blocked() {
    let staff = |id: &str| Recipient {
        record_id: RecordId::new(id),
        kind: RecipientKind::Staff {
            permitted_sms_text: true,
        },
        first_name: "Ana".into(),
        last_name: "Lopez".into(),
        mobile: "212-555-0123".into(),
        time_zone: None,
        fields: BTreeMap::new(),
    };
    let mut smart = settings(true);
    smart.smart_encoding = true;
    let template =
        Template::parse("Class \u{201c}moved\u{201d} \u{2014} see you\u{2026}").expect("valid");
    let result =
        preview([staff("S1")], &template, &OptOutSnapshot::default(), &smart).expect("no fields");
    match &result.items[0].outcome {
        PreviewOutcome::Eligible { body, encoding, .. } => {
            assert_eq!(body, "Class \"moved\" - see you...");
            assert_eq!(*encoding, sms_core::Encoding::Gsm7);
        }
        other => panic!("{other:?}"),
    }

    let long = Template::parse(&"a".repeat(1_601)).expect("valid");
    let result = preview(
        [staff("S2")],
        &long,
        &OptOutSnapshot::default(),
        &settings(true),
    )
    .expect("no fields");
    assert_eq!(result.totals.blocked_by_reason.get("too_long"), Some(&1));
    let ok = Template::parse(&"a".repeat(1_600)).expect("valid");
    let result = preview(
        [staff("S3")],
        &ok,
        &OptOutSnapshot::default(),
        &settings(true),
    )
    .expect("no fields");
    assert_eq!(result.totals.texts, 1);
    assert_eq!(result.totals.message_units, 11);
}

/// Issue 7, defect 1: a letter typed in a mobile (`O` for zero) was read as a keypad digit and
/// the preview called the record eligible at somebody else's number.
#[test]
fn a_mobile_with_a_letter_is_blocked_as_invalid_not_texted_elsewhere() {
    let make = |id: &str, mobile: &str| Recipient {
        record_id: RecordId::new(id),
        kind: RecipientKind::Client {
            permitted_marketing_methods: PermittedMarketingMethods::new("Text"),
        },
        first_name: "Ana".into(),
        last_name: "Lopez".into(),
        mobile: mobile.into(),
        time_zone: None,
        fields: BTreeMap::new(),
    };
    let typed = ["212-555-O123", "212-555-0l23", "212-S55-0123"];
    let recipients: Vec<Recipient> = typed
        .iter()
        .enumerate()
        .map(|(i, m)| make(&format!("C{i}"), m))
        .collect();
    let template = Template::parse("Hi {first_name}").expect("valid");
    let result = preview(
        recipients,
        &template,
        &OptOutSnapshot::default(),
        &settings(true),
    )
    .expect("no fields");
    assert_eq!(result.totals.texts, 0);
    for (item, mobile) in result.items.iter().zip(typed) {
        match &item.outcome {
            PreviewOutcome::Blocked { reason } => {
                assert_eq!(reason.code(), "invalid_number", "{mobile}");
                assert!(reason.to_string().contains(mobile), "{reason}");
            }
            other => panic!("{mobile} must be blocked, got {other:?}"),
        }
    }
}
