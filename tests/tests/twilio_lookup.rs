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
