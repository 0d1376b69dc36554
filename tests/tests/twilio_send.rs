//! `TwilioProvider` against a real local HTTP server standing in for Twilio: successes with
//! the OpenAPI examples, each error class, retries that are safe, and the failures that must
//! come back as `Unknown` because the message may exist.

mod twilio_common;

use std::time::Duration;

use base64::Engine as _;
use sms_core::{DeliveryStatus, OutboundSms, PhoneNumber, Provider, SendError};
use sms_twilio::{RetryPolicy, TwilioProvider};
use twilio_common::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sms(body: &str) -> OutboundSms {
    OutboundSms::new(
        PhoneNumber::from_e164("+14155552345").expect("valid number"),
        body,
    )
}

fn error_body(code: u32, status: u16) -> String {
    format!(
        r#"{{"code": {code}, "message": "Twilio says {code}", "more_info": "https://www.twilio.com/docs/errors/{code}", "status": {status}}}"#
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

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

fn json(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body, "application/json")
}

/// Every error's `Display` and `Debug` is free of the token (and of its Basic encoding).
fn assert_no_secret(err: &SendError) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(TOKEN) && !shown.contains(&basic), "{shown}");
    }
}

#[tokio::test]
async fn sends_from_a_number_with_the_spec_example() {
    let server = server_answering(json(201, create_example("create"))).await;
    let provider = builder(&server.uri()).build().expect("valid");
    let accepted = provider.send(&sms("Hello! 👍")).await.expect("sent");
    assert_eq!(accepted.provider_id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(accepted.status, DeliveryStatus::Queued);
    assert_eq!(accepted.segments, Some(1));

    let sent = requests(&server).await;
    assert_eq!(sent.len(), 1);
    let form = sms_twilio::parse_form(&sent[0].body);
    assert_eq!(
        form,
        fields(&[
            ("To", "+14155552345"),
            ("From", "+14155552345"),
            ("Body", "Hello! 👍")
        ])
    );
    let auth = sent[0].headers.get("authorization").expect("basic auth");
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    assert_eq!(auth.to_str().expect("ascii"), format!("Basic {expected}"));
    assert_eq!(
        sent[0]
            .headers
            .get("content-type")
            .expect("set")
            .to_str()
            .expect("ascii"),
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn sends_through_a_messaging_service_whose_answer_has_from_null() {
    let server = server_answering(json(201, create_example("createWithMessagingService"))).await;
    let provider = TwilioProvider::builder(ACCOUNT)
        .api_key("SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", TOKEN)
        .messaging_service_sid(SERVICE)
        .base_url(server.uri())
        .build()
        .expect("valid");
    let accepted = provider
        .send(&sms("Hello! 👍"))
        .await
        .expect("from: null must parse");
    assert_eq!(accepted.provider_id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    let sent = requests(&server).await;
    let form = sms_twilio::parse_form(&sent[0].body);
    assert!(form.contains(&("MessagingServiceSid".into(), SERVICE.into())));
    assert!(!form.iter().any(|(k, _)| k == "From"));
    let auth = sent[0].headers.get("authorization").expect("basic auth");
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:{TOKEN}"));
    assert_eq!(auth.to_str().expect("ascii"), format!("Basic {expected}"));
}

#[tokio::test]
async fn every_create_example_in_the_spec_parses() {
    let examples = operation("/2010-04-01/Accounts/{AccountSid}/Messages.json", "post")["responses"]
        ["201"]["content"]["application/json"]["examples"]
        .as_object()
        .expect("examples");
    assert!(examples.len() >= 7);
    for (name, _) in examples {
        let server = server_answering(json(201, create_example(name))).await;
        let provider = builder(&server.uri()).build().expect("valid");
        let accepted = provider
            .send(&sms("hi"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(accepted.provider_id.starts_with("SM") || accepted.provider_id.starts_with("MM"));
        if name == "createScheduledMessageSms" {
            assert_eq!(accepted.segments, None, "\"0\" means not counted yet");
        }
    }
}

#[tokio::test]
async fn each_error_class() {
    let cases: &[(u16, u32, &str)] = &[
        (400, 21211, "bad_recipient"),
        (400, 21614, "bad_recipient"),
        (400, 21612, "bad_recipient"),
        (400, 21408, "bad_recipient"),
        (400, 21266, "bad_recipient"),
        (400, 21608, "bad_recipient"),
        (400, 21617, "bad_recipient"),
        (400, 21606, "configuration"),
        (400, 21212, "configuration"),
        (400, 21660, "configuration"),
        (400, 21705, "configuration"),
        (400, 21610, "opted_out"),
        (401, 20003, "configuration"),
        (403, 20003, "configuration"),
        (404, 20404, "configuration"),
        (400, 21611, "try_later"),
        (429, 20429, "slow_down"),
        (500, 20500, "unknown"),
        (503, 20503, "unknown"),
    ];
    for &(status, code, class) in cases {
        let server = server_answering(json(status, error_body(code, status))).await;
        let provider = builder(&server.uri()).build().expect("valid");
        let err = provider.send(&sms("hi")).await.expect_err("refused");
        assert_eq!(err.class(), class, "{code}: {err}");
        if class != "unknown" {
            assert_eq!(err.code(), Some(code));
        }
        assert_no_secret(&err);
        let attempts = requests(&server).await.len();
        let expected = if class == "slow_down" { 3 } else { 1 };
        assert_eq!(attempts, expected, "{code}: attempts");
    }
}

#[tokio::test]
async fn slow_down_then_success_honours_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(json(429, error_body(20429, 429)).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(json(201, create_example("create")))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    let accepted = provider
        .send(&sms("hi"))
        .await
        .expect("second attempt succeeds");
    assert_eq!(accepted.provider_id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_long_retry_after_goes_back_to_the_caller() {
    let server =
        server_answering(json(429, error_body(20429, 429)).insert_header("Retry-After", "120"))
            .await;
    let provider = builder(&server.uri()).build().expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("slow down");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.is_retryable());
    assert_eq!(
        requests(&server).await.len(),
        1,
        "not waited out inside send"
    );
}

#[tokio::test]
async fn a_server_error_is_never_retried_blindly() {
    let server = server_answering(json(500, error_body(20500, 500))).await;
    let provider = builder(&server.uri())
        .retry_policy(RetryPolicy::new(5, Duration::from_millis(1)))
        .build()
        .expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("500");
    assert!(err.is_unknown_outcome(), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_slow_server_hits_the_timeout_and_the_outcome_is_unknown() {
    let server =
        server_answering(json(201, create_example("create")).set_delay(Duration::from_secs(3)))
            .await;
    let provider = builder(&server.uri())
        .timeout(Duration::from_millis(300))
        .build()
        .expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("timed out");
    assert!(err.is_unknown_outcome(), "{err}");
    assert_no_secret(&err);
    assert_eq!(
        requests(&server).await.len(),
        1,
        "a timed-out create is not repeated"
    );
}

#[tokio::test]
async fn a_connection_reset_after_the_request_is_unknown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = tokio::spawn(async move {
        let mut count = 0;
        // Bounded: the test makes one request; a retry would show up as a second accept.
        while let Ok(Ok((stream, _))) =
            tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
        {
            count += 1;
            let mut stream = stream;
            // Read part of the request so it has surely been written, then drop the
            // connection without an answer.
            let mut buf = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            drop(stream);
        }
        count
    });
    let provider = builder(&format!("http://{addr}")).build().expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("reset");
    assert!(err.is_unknown_outcome(), "{err}");
    assert_no_secret(&err);
    assert_eq!(accepted.await.expect("listener task"), 1, "not retried");
}

#[tokio::test]
async fn a_refused_connection_is_safe_to_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener); // nothing listens there now
    let provider = builder(&format!("http://{addr}")).build().expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("refused");
    assert_eq!(err.class(), "try_later", "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn malformed_bodies() {
    // Created, but the SID is unreadable: only a reconciliation can tell.
    let server = server_answering(json(201, "{\"sid\": ".into())).await;
    let provider = builder(&server.uri()).build().expect("valid");
    assert!(
        provider
            .send(&sms("hi"))
            .await
            .expect_err("unreadable")
            .is_unknown_outcome()
    );

    // An error page that is not JSON still maps by status.
    let server =
        server_answering(ResponseTemplate::new(400).set_body_string("<html>no</html>")).await;
    let provider = builder(&server.uri()).build().expect("valid");
    let err = provider.send(&sms("hi")).await.expect_err("400");
    assert_eq!((err.class(), err.code()), ("configuration", Some(400)));

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BALANCE_PATH))
        .respond_with(json(200, "not json".into()))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    assert_eq!(
        provider.balance().await.expect_err("garbage").class(),
        "try_later"
    );
}

#[tokio::test]
async fn scheduled_sends_need_a_messaging_service() {
    let at = sms_core::Timestamp::from_unix_ms(sms_core::Timestamp::now().unix_ms() + 3_600_000);
    assert_eq!(
        builder("http://127.0.0.1:9")
            .send_at(at)
            .build()
            .unwrap_err(),
        sms_twilio::ConfigError::ScheduleNeedsMessagingService
    );
    let server = server_answering(json(201, create_example("createScheduledMessageSms"))).await;
    let from_only = builder(&server.uri()).build().expect("valid");
    let options = sms_twilio::SendOptions {
        send_at: Some(at),
        ..Default::default()
    };
    let err = from_only
        .send_with(&sms("later"), &options)
        .await
        .expect_err("refused");
    assert_eq!(err.class(), "configuration");
    assert!(
        requests(&server).await.is_empty(),
        "nothing sent now instead"
    );

    let with_service = builder(&server.uri())
        .messaging_service_sid(SERVICE)
        .build()
        .expect("valid");
    let accepted = with_service
        .send_with(&sms("later"), &options)
        .await
        .expect("scheduled");
    assert_eq!(
        accepted.segments, None,
        "not counted before the scheduled time"
    );
    let form = sms_twilio::parse_form(&requests(&server).await[0].body);
    assert!(form.contains(&("ScheduleType".into(), "fixed".into())));
    assert!(form.contains(&("SendAt".into(), at.to_string())));
}

#[tokio::test]
async fn balance_and_subaccounts_without_one() {
    let server = MockServer::start().await;
    let fetch = example(
        "/2010-04-01/Accounts/{AccountSid}/Balance.json",
        "get",
        "200",
        "fetch",
    );
    Mock::given(method("GET"))
        .and(path(BALANCE_PATH))
        .respond_with(json(200, fetch))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    let balance = provider.balance().await.expect("read").expect("has one");
    assert_eq!(
        (balance.amount.as_str(), balance.currency.as_str()),
        ("0.05", "USD")
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BALANCE_PATH))
        .respond_with(json(
            200,
            r#"{"account_sid":null,"balance":null,"currency":null}"#.into(),
        ))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    assert_eq!(provider.balance().await.expect("read"), None);
}

#[tokio::test]
async fn reads_retry_server_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BALANCE_PATH))
        .respond_with(json(503, error_body(20503, 503)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let fetch = example(
        "/2010-04-01/Accounts/{AccountSid}/Balance.json",
        "get",
        "200",
        "fetch",
    );
    Mock::given(method("GET"))
        .and(path(BALANCE_PATH))
        .respond_with(json(200, fetch))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    assert!(provider.balance().await.expect("retried").is_some());
    assert_eq!(requests(&server).await.len(), 2);
}
