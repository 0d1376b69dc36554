//! How a host tests its own texting code without Twilio: `MockProvider` to pin down the exact
//! texts sent, and `SimulatedProvider` with Twilio's magic test numbers to drive the failures.
//!
//! Run it with `cargo run -p sms-core --example mock_provider`.
//!
//! In your crate, each `check_*` function below is a `#[tokio::test]`, and `MockProvider`
//! comes from a dev-dependency on `sms-core` with the `mock` feature:
//!
//! ```toml
//! [dev-dependencies]
//! sms-core = { version = "0.1", features = ["mock"] }
//! ```
//!
//! The host code under test takes `&dyn Provider`, so production passes
//! `sms_twilio::TwilioProvider` and the tests pass a mock or the simulator.

use mockall::Sequence;
use mockall::predicate::function;
use sms_core::{
    Accepted, DeliveryStatus, MockProvider, OutboundSms, PhoneNumber, Provider, SendError,
    SimulatedProvider,
};

// ---- the host's code under test ------------------------------------------------------------

/// A student as the host's code knows them.
struct Student {
    first_name: &'static str,
    mobile: &'static str,
}

/// What the host shows staff after telling a class about a room change.
#[derive(Debug, PartialEq)]
struct Announced {
    /// Twilio's message ids of the texts accepted.
    sent: Vec<String>,
    /// Students who could not be texted, with the provider's reason (the error code when
    /// there is one).
    failed: Vec<(String, Option<u32>)>,
}

/// The host's feature: text every student of a class that the room changed. One bad number
/// must not stop the rest; a configuration error (wrong credentials) must.
async fn announce_room_change(
    provider: &dyn Provider,
    students: &[Student],
    room: &str,
) -> Result<Announced, SendError> {
    let mut announced = Announced {
        sent: Vec::new(),
        failed: Vec::new(),
    };
    for student in students {
        let Ok(to) = PhoneNumber::from_e164(student.mobile) else {
            announced.failed.push((student.first_name.to_owned(), None));
            continue;
        };
        let text = format!("Hi {}, class is in {room} today.", student.first_name);
        match provider.send(&OutboundSms::new(to, text)).await {
            Ok(accepted) => announced.sent.push(accepted.provider_id),
            Err(e) if e.is_bad_recipient() => announced
                .failed
                .push((student.first_name.to_owned(), e.code())),
            Err(e) => return Err(e),
        }
    }
    Ok(announced)
}

// ---- the host's tests ----------------------------------------------------------------------

fn accepted(id: &str) -> Accepted {
    Accepted {
        provider_id: id.to_owned(),
        status: DeliveryStatus::Queued,
        segments: Some(1),
    }
}

/// The exact texts, to the exact numbers, in order, once each: what a mock is for. Any other
/// call (a second send, another text) fails the test inside `mockall`.
async fn check_exact_texts_are_sent() {
    let mut provider = MockProvider::new();
    let mut order = Sequence::new();
    provider
        .expect_send()
        .with(function(|sms: &OutboundSms| {
            sms.to.e164() == "+12125550123" && sms.body == "Hi Ada, class is in Room 4 today."
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(accepted("SM-ada")));
    provider
        .expect_send()
        .with(function(|sms: &OutboundSms| {
            sms.to.e164() == "+12125550124" && sms.body == "Hi Zoë, class is in Room 4 today."
        }))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(accepted("SM-zoe")));

    let students = [
        Student {
            first_name: "Ada",
            mobile: "+12125550123",
        },
        Student {
            first_name: "Zoë",
            mobile: "+12125550124",
        },
    ];
    let announced = announce_room_change(&provider, &students, "Room 4")
        .await
        .expect("no configuration error");
    assert_eq!(announced.sent, ["SM-ada", "SM-zoe"]);
    assert!(announced.failed.is_empty());
    // `MockProvider` checks `times(1)` when dropped: a missing send fails here too.
    println!("ok: the two texts went out once each, word for word, in order");
}

/// A configuration error stops the feature after the first call: `never()` proves the
/// second student was not tried.
async fn check_configuration_error_stops() {
    let mut provider = MockProvider::new();
    provider
        .expect_send()
        .withf(|sms| sms.body.starts_with("Hi Ada,"))
        .times(1)
        .returning(|_| {
            Err(SendError::Configuration {
                code: Some(20003),
                message: "Authenticate".to_owned(),
            })
        });
    provider
        .expect_send()
        .withf(|sms| sms.body.starts_with("Hi Zoë,"))
        .never();

    let students = [
        Student {
            first_name: "Ada",
            mobile: "+12125550123",
        },
        Student {
            first_name: "Zoë",
            mobile: "+12125550124",
        },
    ];
    let error = announce_room_change(&provider, &students, "Room 4")
        .await
        .expect_err("credentials refused");
    assert_eq!(error.code(), Some(20003));
    println!("ok: a refused account stops the announcement (code 20003), nobody else is tried");
}

/// The simulator needs no expectations: it accepts everything except Twilio's magic test
/// numbers, which fail the way real Twilio fails. It remembers what it accepted.
async fn check_bad_numbers_with_the_simulator() {
    let provider = SimulatedProvider::new();
    let students = [
        Student {
            first_name: "Ada",
            mobile: "+12125550123",
        },
        // +15005550001: invalid number (Twilio 21211).
        Student {
            first_name: "Ivan",
            mobile: "+15005550001",
        },
        // +15005550004: replied STOP to this sender (Twilio 21610).
        Student {
            first_name: "Olga",
            mobile: "+15005550004",
        },
        // +15005550009: not a mobile, cannot receive SMS (Twilio 21614).
        Student {
            first_name: "Lena",
            mobile: "+15005550009",
        },
        // Not a phone number at all: the host's own check, no provider call.
        Student {
            first_name: "Nobody",
            mobile: "n/a",
        },
        Student {
            first_name: "Zoë",
            mobile: "+12125550124",
        },
    ];
    let announced = announce_room_change(&provider, &students, "Room 4")
        .await
        .expect("no configuration error");

    assert_eq!(announced.sent.len(), 2);
    assert_eq!(
        announced.failed,
        [
            ("Ivan".to_owned(), Some(21211)),
            ("Olga".to_owned(), Some(21610)),
            ("Lena".to_owned(), Some(21614)),
            ("Nobody".to_owned(), None),
        ]
    );
    let bodies: Vec<String> = provider
        .sent()
        .into_iter()
        .map(|m| m.body.unwrap_or_default())
        .collect();
    assert_eq!(
        bodies,
        [
            "Hi Ada, class is in Room 4 today.",
            "Hi Zoë, class is in Room 4 today.",
        ]
    );
    println!(
        "ok: the simulator accepted Ada and Zoë and refused 21211, 21610, 21614 as Twilio would"
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    check_exact_texts_are_sent().await;
    check_configuration_error_stops().await;
    check_bad_numbers_with_the_simulator().await;
    println!("all checks passed");
}
