//! Configuration of `TwilioProvider`: the environment entry point the CLI calls, secrets that
//! never print, and requests refused before anything is sent.

mod twilio_common;

use std::time::Duration;

use sms_core::{OutboundSms, PhoneNumber, Provider};
use sms_twilio::{ConfigError, TwilioProvider};
use twilio_common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sms(body: &str) -> OutboundSms {
    OutboundSms::new(
        PhoneNumber::from_e164("+14155552345").expect("valid number"),
        body,
    )
}

async fn server_answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn secrets_never_show_in_debug() {
    let provider = builder("http://127.0.0.1:9").build().expect("valid");
    let shown = format!("{provider:?} {:?}", builder("http://127.0.0.1:9"));
    assert!(!shown.contains(TOKEN), "{shown}");
    let by_key = TwilioProvider::builder(ACCOUNT)
        .api_key("SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", TOKEN)
        .from_number("+15005550006")
        .build()
        .expect("valid");
    assert!(!format!("{by_key:?}").contains(TOKEN));
}

#[tokio::test]
async fn configured_from_the_environment() {
    let server = server_answering(json(201, create_example("create"))).await;
    let uri = server.uri();
    let env = move |name: &str| match name {
        "TWILIO_ACCOUNT_SID" => Some(ACCOUNT.to_string()),
        "TWILIO_AUTH_TOKEN" => Some(TOKEN.to_string()),
        "TWILIO_FROM" => Some("+15005550006".to_string()),
        "TWILIO_BASE_URL" => Some(uri.clone()),
        _ => None,
    };
    let provider = TwilioProvider::from_env(env).expect("complete");
    provider
        .send(&sms("hi"))
        .await
        .expect("sent to the stand-in");
    let err = TwilioProvider::from_env(|name| {
        (name == "TWILIO_ACCOUNT_SID").then(|| ACCOUNT.to_string())
    })
    .unwrap_err();
    assert_eq!(err, sms_twilio::ConfigError::Missing("TWILIO_AUTH_TOKEN"));
}

#[tokio::test]
async fn from_env_keeps_both_senders_and_names_what_is_missing() {
    let server = server_answering(json(201, create_example("createWithMessagingService"))).await;
    let provider = TwilioProvider::from_env(env(vec![
        ("TWILIO_ACCOUNT_SID", ACCOUNT.into()),
        (
            "TWILIO_API_KEY",
            "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
        ),
        ("TWILIO_API_SECRET", TOKEN.into()),
        ("TWILIO_FROM", "+15005550006".into()),
        ("TWILIO_MESSAGING_SERVICE_SID", SERVICE.into()),
        ("TWILIO_BASE_URL", server.uri()),
    ]))
    .expect("complete");
    provider.send(&sms("hi")).await.expect("sent");
    let sent = server.received_requests().await.expect("recorded");
    let form = sms_twilio::parse_form(&sent[0].body);
    assert!(form.contains(&("From".into(), "+15005550006".into())));
    assert!(form.contains(&("MessagingServiceSid".into(), SERVICE.into())));

    let missing = |pairs| TwilioProvider::from_env(env(pairs)).unwrap_err();
    assert_eq!(missing(vec![]), ConfigError::Missing("TWILIO_ACCOUNT_SID"));
    assert_eq!(
        missing(vec![
            ("TWILIO_ACCOUNT_SID", ACCOUNT.into()),
            (
                "TWILIO_API_KEY",
                "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()
            )
        ]),
        ConfigError::Missing("TWILIO_API_SECRET")
    );
    let err = missing(vec![
        ("TWILIO_ACCOUNT_SID", ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN", TOKEN.into()),
    ]);
    assert!(
        err.to_string().contains("TWILIO_MESSAGING_SERVICE_SID"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains(TOKEN));
    let err = missing(vec![
        ("TWILIO_ACCOUNT_SID", ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN", TOKEN.into()),
        ("TWILIO_MESSAGING_SERVICE_SID", "MG-not-a-sid".into()),
    ]);
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                name: "TWILIO_MESSAGING_SERVICE_SID",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn bodies_twilio_would_refuse_are_refused_before_sending() {
    let server = server_answering(json(201, create_example("create"))).await;
    let provider = builder(&server.uri()).build().expect("valid");
    let empty = provider.send(&sms("")).await.expect_err("empty");
    // Both are about this record's text: the record fails, the campaign goes on.
    assert_eq!(
        (empty.class(), empty.code()),
        ("bad_recipient", Some(21602))
    );
    let long = provider
        .send(&sms(&"a".repeat(1601)))
        .await
        .expect_err("too long");
    assert_eq!((long.class(), long.code()), ("bad_recipient", Some(21617)));
    // Counted in UTF-16 code units, as the preview counts: 801 emoji are 1,602.
    let emoji = provider
        .send(&sms(&"\u{1F44D}".repeat(801)))
        .await
        .expect_err("too long");
    assert_eq!(emoji.code(), Some(21617));
    assert!(
        server
            .received_requests()
            .await
            .expect("recorded")
            .is_empty()
    );
    provider
        .send(&sms(&"a".repeat(1600)))
        .await
        .expect("1600 is the limit");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/elsewhere"))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("not followed");
    assert_eq!(err.class(), "configuration");
    assert_eq!(server.received_requests().await.expect("recorded").len(), 1);
}

#[test]
fn invalid_settings_are_typed_errors() {
    let err = builder("http://127.0.0.1:9")
        .validity_period(Duration::from_secs(36_001))
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            name: "ValidityPeriod",
            ..
        }
    ));
    let err = builder("ftp://x").build().unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            name: "base URL",
            ..
        }
    ));
    let err = TwilioProvider::builder(ACCOUNT)
        .from_number("+15005550006")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::Missing("auth token or API key"));
    let err = TwilioProvider::builder(ACCOUNT)
        .auth_token(TOKEN)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Missing(_)));
    let err = TwilioProvider::builder("AC-short")
        .auth_token(TOKEN)
        .from_number("+1")
        .build()
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(TOKEN));
}

/// The credentials go only to twilio.com (https, port 443) or this machine, judged on the host
/// the HTTP client will really connect to.
#[tokio::test]
async fn a_base_url_that_names_one_host_and_reaches_another_is_refused() {
    // A listener standing in for the host the credentials must not reach.
    let elsewhere = MockServer::start().await;
    let port = elsewhere.address().port();
    for url in [
        // The client connects to 127.0.0.2 (WHATWG reads the backslash as a slash), while the
        // part after the @ reads as 127.0.0.1.
        format!("http://127.0.0.2:{port}\\@127.0.0.1:1"),
        "https://attacker.example\\@api.twilio.com".to_owned(),
        "https://api.twilio.com@attacker.example".to_owned(),
        format!("http://user:pw@127.0.0.1:{port}"),
        format!("http://%31%32%37.0.0.1:{port}"),
        "https://twilio.com.attacker.example".to_owned(),
        "https://api.twilio.com.".to_owned(),
        "https://api.twilio.com:8443".to_owned(),
    ] {
        match builder(&url).build() {
            Err(ConfigError::Invalid {
                name: "base URL", ..
            }) => {}
            other => panic!("{url} must be refused, got {other:?}"),
        }
    }
    assert!(
        elsewhere
            .received_requests()
            .await
            .expect("recorded")
            .is_empty()
    );
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        format!("http://localhost:{port}/"),
        "https://api.twilio.com".to_owned(),
        "https://api.sydney.au1.twilio.com".to_owned(),
    ] {
        assert!(builder(&url).build().is_ok(), "{url}");
    }
}
