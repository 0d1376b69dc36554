//! Inbound replies and status callbacks as Twilio sends them: signed form posts over real HTTP
//! to a local server that hands URL, fields and header to the library, plus the fixed vectors.

mod twilio_common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sms_core::{
    DeliveryStatus, InMemoryOptOutStore, KeywordClass, OptOutAction, OptOutChange, OptOutSnapshot,
    OptOutState, OptOutStore, PhoneNumber, StoreError, Timestamp,
};
use sms_twilio::{
    Form, InboundHandler, InboundOutcome, ReplyConfig, SignatureValidator, StatusUpdate,
    WebhookError, compute_signature, handle_status_callback,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use twilio_common::fields;

const TOKEN: &str = "12345";
const CLIENT: &str = "+14155552671";
const OURS: &str = "+15005550006";

/// What the host's server saw, for the test to inspect.
#[derive(Debug)]
enum Seen {
    Inbound(Result<InboundOutcome, WebhookError>),
    Status(Result<StatusUpdate, WebhookError>),
}

/// A minimal host: reads one HTTP/1.1 request per connection, passes the URL Twilio requested,
/// the form fields and the signature header to the library, answers as the docs say.
async fn start_host(handler: InboundHandler) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = Arc::new(handler);
    let validator = SignatureValidator::new(TOKEN);
    let host = base.clone();
    tokio::spawn(async move {
        // Ends when the test's runtime shuts down.
        while let Ok((mut stream, _)) = listener.accept().await {
            let (target, signature, body) = match read_request(&mut stream).await {
                Some(request) => request,
                None => continue,
            };
            let url = format!("{host}{target}");
            let (status, answer) = if target.starts_with("/twilio/sms") {
                let outcome = handler
                    .handle_form_body(&url, &body, signature.as_deref(), Timestamp::now())
                    .await;
                let answer = match &outcome {
                    Ok(o) => (200, o.response_body().to_owned()),
                    Err(e) => (http_status(e), String::new()),
                };
                let _ = tx.send(Seen::Inbound(outcome));
                answer
            } else {
                let params = sms_twilio::parse_form(&body);
                let update =
                    handle_status_callback(&validator, &url, &params, signature.as_deref());
                let code = update.as_ref().map_or_else(http_status, |_| 204);
                let _ = tx.send(Seen::Status(update));
                (code, String::new())
            };
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (base, rx)
}

fn http_status(e: &WebhookError) -> u16 {
    match e {
        WebhookError::Signature(_) => 403,
        WebhookError::Store(_) => 503,
        _ => 400,
    }
}

async fn read_request(
    stream: &mut tokio::net::TcpStream,
) -> Option<(String, Option<String>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let header_end = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_string();
    let target = head.lines().next()?.split_whitespace().nth(1)?.to_owned();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some((
        target,
        header("x-twilio-signature"),
        data[header_end..].to_vec(),
    ))
}

/// Posts `params` to `url` signed with `token`, as Twilio does; returns status and body.
async fn post_signed(url: &str, params: &[(String, String)], token: Option<&str>) -> (u16, String) {
    let mut form = Form::new();
    for (k, v) in params {
        form.push(k, v.clone());
    }
    // reqwest is built without a default crypto provider (no aws-lc C build); the test's own
    // client needs one even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.encode());
    if let Some(token) = token {
        request = request.header("X-Twilio-Signature", compute_signature(token, url, params));
    }
    let response = request.send().await.expect("local host answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn inbound(sid: &str, body: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params = fields(&[
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("MessageSid", sid),
        ("From", CLIENT),
        ("To", OURS),
        ("Body", body),
        ("NumSegments", "1"),
        ("SmsStatus", "received"),
    ]);
    params.extend(fields(extra));
    params
}

fn client() -> PhoneNumber {
    PhoneNumber::from_e164(CLIENT).expect("valid")
}

async fn next_inbound(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
) -> Result<InboundOutcome, WebhookError> {
    match rx.recv().await.expect("host saw a request") {
        Seen::Inbound(outcome) => outcome,
        other => panic!("expected inbound, got {other:?}"),
    }
}

#[tokio::test]
async fn stop_and_start_over_http_are_recorded_before_the_answer() {
    let store = Arc::new(InMemoryOptOutStore::new());
    let replies = ReplyConfig {
        stop_confirmation: Some("You're unsubscribed. Reply START to resume.".into()),
        start_confirmation: Some("Welcome back!".into()),
    };
    let handler =
        InboundHandler::new(SignatureValidator::new(TOKEN), store.clone()).with_replies(replies);
    let (base, mut rx) = start_host(handler).await;
    let url = format!("{base}/twilio/sms");

    // Twilio's Advanced Opt-Out handled it (OptOutType) and already answered: no second reply.
    let (status, answer) = post_signed(
        &url,
        &inbound("SM1", "Stop", &[("OptOutType", "STOP")]),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer, sms_twilio::EMPTY_TWIML);
    let outcome = next_inbound(&mut rx).await.expect("handled");
    assert_eq!(outcome.classification.class, KeywordClass::OptOut);
    assert!(matches!(
        store.state(client()).await.expect("read"),
        OptOutState::OptedOut { .. }
    ));

    // Twilio redelivers the same message: nothing new is recorded.
    post_signed(
        &url,
        &inbound("SM1", "Stop", &[("OptOutType", "STOP")]),
        Some(TOKEN),
    )
    .await;
    next_inbound(&mut rx).await.expect("handled");
    assert_eq!(store.history(client()).await.expect("read").len(), 1);

    // START without OptOutType: our confirmation, escaped into TwiML.
    let (status, answer) = post_signed(&url, &inbound("SM2", "start", &[]), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(
        answer.contains("<Message>Welcome back!</Message>"),
        "{answer}"
    );
    let outcome = next_inbound(&mut rx).await.expect("handled");
    assert_eq!(
        outcome.change.as_ref().map(|c| c.action),
        Some(OptOutAction::Start)
    );
    assert_eq!(
        store.state(client()).await.expect("read"),
        OptOutState::OptedIn
    );
    let history = store.history(client()).await.expect("read");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].message_sid.as_deref(), Some("SM2"));
}

#[tokio::test]
async fn other_texts_change_nothing_but_their_segments_are_counted() {
    let store = Arc::new(InMemoryOptOutStore::new());
    let handler = InboundHandler::new(SignatureValidator::new(TOKEN), store.clone());
    let (base, mut rx) = start_host(handler).await;
    let mut params = inbound(
        "SM3",
        "Stop texting me about the pottery class please, thanks",
        &[],
    );
    params.retain(|(k, _)| k != "NumSegments");
    params.push(("NumSegments".into(), "2".into()));
    let (status, answer) = post_signed(&format!("{base}/twilio/sms"), &params, Some(TOKEN)).await;
    assert_eq!((status, answer.as_str()), (200, sms_twilio::EMPTY_TWIML));
    let outcome = next_inbound(&mut rx).await.expect("handled");
    assert_eq!(outcome.classification.class, KeywordClass::Other);
    assert!(outcome.classification.likely_revocation);
    assert_eq!(outcome.change, None);
    assert_eq!(outcome.segments, 2);
    assert!(store.snapshot().await.expect("read").is_empty());
}

#[tokio::test]
async fn forged_missing_and_stale_signatures_are_refused_and_record_nothing() {
    let store = Arc::new(InMemoryOptOutStore::new());
    let handler = InboundHandler::new(SignatureValidator::new(TOKEN), store.clone());
    let (base, mut rx) = start_host(handler).await;
    let url = format!("{base}/twilio/sms");
    for token in [Some("stale-token"), None] {
        let (status, _) = post_signed(&url, &inbound("SM4", "STOP", &[]), token).await;
        assert_eq!(status, 403);
        let err = next_inbound(&mut rx).await.expect_err("refused");
        assert!(matches!(err, WebhookError::Signature(_)), "{err}");
    }
    assert!(store.snapshot().await.expect("read").is_empty());
}

/// A store that is down: the STOP must not be acknowledged.
struct DownStore;

#[async_trait]
impl OptOutStore for DownStore {
    async fn record(&self, _: OptOutChange) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("disk full".into()))
    }
    async fn state(&self, _: PhoneNumber) -> Result<OptOutState, StoreError> {
        Ok(OptOutState::OptedIn)
    }
    async fn history(&self, _: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
        Ok(Vec::new())
    }
    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        Ok(OptOutSnapshot::default())
    }
}

#[tokio::test]
async fn a_stop_that_cannot_be_stored_is_not_acknowledged() {
    let handler = InboundHandler::new(SignatureValidator::new(TOKEN), Arc::new(DownStore));
    let (base, mut rx) = start_host(handler).await;
    let (status, _) = post_signed(
        &format!("{base}/twilio/sms"),
        &inbound("SM5", "STOP", &[]),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 503, "Twilio retries a failed webhook");
    assert!(matches!(
        next_inbound(&mut rx).await,
        Err(WebhookError::Store(_))
    ));
}

#[tokio::test]
async fn status_callbacks_over_http_become_typed_updates() {
    let handler = InboundHandler::new(
        SignatureValidator::new(TOKEN),
        Arc::new(InMemoryOptOutStore::new()),
    );
    let (base, mut rx) = start_host(handler).await;
    let url = format!("{base}/twilio/status?tenant=a%20b&id=42");
    for (word, expected, code) in [
        ("undelivered", DeliveryStatus::Undelivered, Some("30003")),
        ("delivered", DeliveryStatus::Delivered, None),
        ("read", DeliveryStatus::Other("read".into()), None),
    ] {
        let mut params = fields(&[
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("MessageStatus", word),
            ("SmsStatus", word),
            ("To", CLIENT),
            ("From", OURS),
        ]);
        if let Some(code) = code {
            params.push(("ErrorCode".into(), code.into()));
        }
        let (status, _) = post_signed(&url, &params, Some(TOKEN)).await;
        assert_eq!(status, 204);
        let Seen::Status(update) = rx.recv().await.expect("seen") else {
            panic!("expected a status")
        };
        let update = update.expect("valid");
        assert_eq!(update.status, expected);
        assert_eq!(update.raw_status, word);
        assert_eq!(update.error_code, code.map(|c| c.parse().expect("number")));
    }
    let (status, _) = post_signed(
        &url,
        &fields(&[("MessageSid", "SM1"), ("MessageStatus", "sent")]),
        Some("x"),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_fixed_sms_vectors_drive_the_handlers() {
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sms_tests::data_file("twilio/signature_vectors.json"))
            .expect("read"),
    )
    .expect("json");
    let case = |note: &str| {
        let case = vectors["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .find(|c| c["note"].as_str().is_some_and(|n| n.starts_with(note)))
            .expect("vector present");
        let params: Vec<(String, String)> =
            serde_json::from_value(case["params"].clone()).expect("pairs");
        (
            case["url"].as_str().expect("url").to_owned(),
            params,
            case["signature"].as_str().expect("sig").to_owned(),
        )
    };

    let store = Arc::new(InMemoryOptOutStore::new());
    let handler = InboundHandler::new(SignatureValidator::new("12345"), store.clone());
    let (url, params, signature) = case("inbound STOP");
    let at = Timestamp::from_unix_ms(1_764_100_000_000);
    let outcome = handler
        .handle(&url, &params, Some(&signature), at)
        .await
        .expect("valid vector");
    assert_eq!(outcome.classification.class, KeywordClass::OptOut);
    assert_eq!(outcome.segments, 1);
    assert_eq!(
        store.state(client()).await.expect("read"),
        OptOutState::OptedOut { since: at }
    );
    // Twilio signed https://example.com/twilio/sms; the :443 form must validate too.
    let with_port = url.replace("example.com", "example.com:443");
    assert!(
        handler
            .handle(&with_port, &params, Some(&signature), at)
            .await
            .is_ok()
    );

    let (url, params, signature) = case("status callback");
    let update = handle_status_callback(
        &SignatureValidator::new("12345"),
        &url,
        &params,
        Some(&signature),
    )
    .expect("valid vector");
    assert_eq!(update.status, DeliveryStatus::Undelivered);
    assert_eq!(update.error_code, Some(30003));
}

#[tokio::test]
async fn a_get_webhook_is_signed_over_its_query() {
    let store = Arc::new(InMemoryOptOutStore::new());
    let handler = InboundHandler::new(SignatureValidator::new(TOKEN), store.clone());
    let url = "https://example.com/twilio/sms?MessageSid=SM9&From=%2B14155552671&To=%2B15005550006&Body=STOP&NumSegments=1";
    let signature = compute_signature(TOKEN, url, &[]);
    let at = Timestamp::from_unix_ms(1_764_100_000_000);
    let outcome = handler
        .handle_query(url, Some(&signature), at)
        .await
        .expect("valid");
    assert_eq!(outcome.change.map(|c| c.action), Some(OptOutAction::Stop));
    assert_eq!(
        store.state(client()).await.expect("read"),
        OptOutState::OptedOut { since: at }
    );
    let tampered = url.replace("STOP", "START");
    assert!(matches!(
        handler.handle_query(&tampered, Some(&signature), at).await,
        Err(WebhookError::Signature(_))
    ));
}
