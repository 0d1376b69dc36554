//! `lookup_sent`: how an `Unknown` send is reconciled after a crash, against a local stand-in
//! serving the OpenAPI list examples.

mod twilio_common;

use sms_core::{DeliveryStatus, PhoneNumber, Provider, Timestamp};
use twilio_common::*;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIST: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";

fn page(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(example(LIST, "get", "200", name), "application/json")
}

#[tokio::test]
async fn lists_outbound_messages_to_the_number_across_pages() {
    let server = MockServer::start().await;
    let to = PhoneNumber::from_e164("+18182008801").expect("valid");
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param("To", "+18182008801"))
        .and(query_param("PageSize", "100"))
        .respond_with(page("readFullPage1"))
        .mount(&server)
        .await;
    // The example's next_page_uri carries this token.
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(query_param(
            "PageToken",
            "PAMMc26223853f8c46b4ab7dfaa6abba0a26",
        ))
        .respond_with(page("readEmptySentdateGreater"))
        .mount(&server)
        .await;
    let provider = builder(&server.uri()).build().expect("valid");
    let since = Timestamp::parse("2019-05-24T17:00:00Z").expect("valid");
    let sent = provider.lookup_sent(to, since).await.expect("listed");
    assert_eq!(
        sent.len(),
        1,
        "the inbound message of the example is not a send: {sent:?}"
    );
    assert_eq!(sent[0].provider_id, "SMded05904ccb347238880ca9264e8fe1c");
    assert_eq!(sent[0].to, to);
    assert_eq!(sent[0].status, DeliveryStatus::Sent);
    assert_eq!(sent[0].body.as_deref(), Some("testing"));
    assert_eq!(sent[0].segments, Some(1));
    assert_eq!(sent[0].created_at, Timestamp::parse("2019-05-24T17:44:46Z"));
    let seen = server.received_requests().await.expect("recorded");
    assert_eq!(seen.len(), 2, "followed next_page_uri once, then stopped");
    // Not filtered on DateSent: a queued message has no date_sent yet, and Twilio's filter
    // would hide the very message a crash left in flight.
    // (The second request follows the example's own next_page_uri as given.)
    assert!(
        !seen[0].url.as_str().contains("DateSent"),
        "{}",
        seen[0].url
    );
}

/// A stand-in whose first page is the example page and whose next page is empty.
async fn one_full_page() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(page("readFullPage1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(page("readEmptySentdateGreater"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn messages_created_well_before_since_are_not_reported() {
    let to = PhoneNumber::from_e164("+18182008801").expect("valid");
    // The example message was created at 17:44:46, more than the 5-minute clock allowance
    // before 18:00.
    let server = one_full_page().await;
    let provider = builder(&server.uri()).build().expect("valid");
    let since = Timestamp::parse("2019-05-24T18:00:00Z").expect("valid");
    assert!(
        provider
            .lookup_sent(to, since)
            .await
            .expect("listed")
            .is_empty()
    );

    // This host's clock 3 minutes ahead of Twilio's: the message is still reported, since
    // missing it would text the person twice.
    let server = one_full_page().await;
    let provider = builder(&server.uri()).build().expect("valid");
    let since = Timestamp::parse("2019-05-24T17:47:46Z").expect("valid");
    assert_eq!(
        provider.lookup_sent(to, since).await.expect("listed").len(),
        1
    );
}

fn json_page(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json")
}

fn message(sid: &str, to: &str, created: &str) -> serde_json::Value {
    serde_json::json!({
        "sid": sid, "to": to, "body": "Class moved", "status": "queued",
        "direction": "outbound-api", "date_created": created, "date_sent": null,
        "num_segments": "1",
    })
}

/// A history page Twilio would never send is "cannot tell" (an error), never "not sent".
#[tokio::test]
async fn a_malformed_history_page_is_an_error_not_an_empty_history() {
    let to = PhoneNumber::from_e164("+18182008801").expect("valid");
    let since = Timestamp::parse("2026-05-01T12:00:00Z").expect("valid");
    let recent = "Fri, 01 May 2026 12:00:05 +0000";
    for body in [
        // No `messages` at all, or null.
        serde_json::json!({"next_page_uri": null}),
        serde_json::json!({"messages": null, "next_page_uri": null}),
        // An element that is not a message, beside one that is.
        serde_json::json!({"messages": [message("SM1", "+18182008801", recent), "junk"]}),
        serde_json::json!({"messages": [{"sid": 17, "to": "+18182008801"}]}),
        // A message in the window without a SID cannot prove anything.
        serde_json::json!({"messages": [{"to": "+18182008801", "date_created": recent}]}),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(MESSAGES_PATH))
            .respond_with(json_page(body.clone()))
            .mount(&server)
            .await;
        let provider = builder(&server.uri()).build().expect("valid");
        let answer = provider.lookup_sent(to, since).await;
        assert!(answer.is_err(), "{body} read as {answer:?}");
    }
}

/// A next page that is there but cannot be followed leaves the history incomplete.
#[tokio::test]
async fn a_next_page_link_that_cannot_be_followed_is_an_error() {
    let to = PhoneNumber::from_e164("+18182008801").expect("valid");
    let since = Timestamp::parse("2026-05-01T12:00:00Z").expect("valid");
    for next in [
        "https://elsewhere.example/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json?Page=1",
        "//elsewhere.example/2010-04-01/Messages.json?Page=1",
        "2010-04-01/Messages.json?Page=1",
        "/\\elsewhere.example/Messages.json",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(MESSAGES_PATH))
            .respond_with(json_page(serde_json::json!({
                "messages": [message("SM1", "+18182008801", "Fri, 01 May 2026 12:00:05 +0000")],
                "next_page_uri": next,
            })))
            .mount(&server)
            .await;
        let provider = builder(&server.uri()).build().expect("valid");
        let answer = provider.lookup_sent(to, since).await;
        assert!(answer.is_err(), "{next}: read as complete: {answer:?}");
    }
}

fn ms_ago(ms: i64) -> i64 {
    Timestamp::now().unix_ms() - ms
}

/// A number with a long history is still reconciled: paging stops at the first page that
/// reaches messages older than the attempt.
#[test]
fn a_long_history_stops_at_the_attempt_and_the_limit_is_an_error_only_before_it() {
    // The stand-in runs its own runtime: started outside this test's.
    let twilio = sms_tests::fake_twilio::FakeTwilio::start();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(long_history(&twilio));
}

async fn long_history(twilio: &sms_tests::fake_twilio::FakeTwilio) {
    twilio.set_max_page_size(3);
    let to = PhoneNumber::from_e164("+12125550123").expect("valid");
    // 60 texts over the past two months, then the one in doubt a second ago.
    for day in (1..=60).rev() {
        twilio.seed(&to.to_string(), "Old news", ms_ago(day * 86_400_000));
    }
    let recent = twilio.seed(&to.to_string(), "Class moved", ms_ago(1_000));
    let since = Timestamp::from_unix_ms(ms_ago(5_000));
    let provider = builder(&twilio.base_url())
        .lookup_max_pages(4)
        .build()
        .expect("valid");
    let sent = provider.lookup_sent(to, since).await.expect("reconciled");
    assert_eq!(
        sent.iter()
            .map(|m| m.provider_id.as_str())
            .collect::<Vec<_>>(),
        [recent.sid.as_str()]
    );
    assert_eq!(
        twilio.list_requests(),
        1,
        "the first page already reached the attempt"
    );

    // Twenty texts in the window: four pages of three do not reach the attempt.
    for _ in 0..20 {
        twilio.seed(&to.to_string(), "Class moved", ms_ago(500));
    }
    let answer = provider.lookup_sent(to, since).await;
    assert!(
        answer.is_err(),
        "a history cut at the page limit: {answer:?}"
    );
    // With room for every page, all 21 are found and the old ones are not.
    let provider = builder(&twilio.base_url())
        .lookup_max_pages(8)
        .build()
        .expect("valid");
    let sent = provider.lookup_sent(to, since).await.expect("reconciled");
    assert_eq!(sent.len(), 21);
}
