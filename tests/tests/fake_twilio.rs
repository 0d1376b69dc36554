//! The stand-in itself behaves like Twilio where the other tests rely on it.

use std::io::{Read, Write};
use std::net::TcpStream;

use sms_tests::fake_twilio::{FakeTwilio, Fault};

/// One HTTP/1.1 request over a plain socket; `None` when the server dropped the connection.
fn request(base: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("the stand-in listens");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic QUM6dG9rZW4=\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("request written");
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

const MESSAGES: &str = "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json";

#[test]
fn creates_lists_counts_and_injects_faults() {
    let twilio = FakeTwilio::start();
    let base = twilio.base_url();
    let (status, body) =
        request(&base, "POST", MESSAGES, "To=%2B12125550123&Body=Hi+Ana").expect("a response");
    assert_eq!(status, 201, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["status"], "queued");
    assert_eq!(json["to"], "+12125550123");

    twilio.set_plan(|n, _| match n {
        2 => Fault::Status {
            status: 429,
            code: 20429,
            retry_after_s: Some(1),
        },
        3 => Fault::ErrorAfterCreate,
        _ => Fault::ResetBeforeCreate,
    });
    let (status, _) =
        request(&base, "POST", MESSAGES, "To=%2B12125550123&Body=x").expect("a response");
    assert_eq!(status, 429);
    let (status, _) =
        request(&base, "POST", MESSAGES, "To=%2B12125550123&Body=y").expect("a response");
    assert_eq!(status, 500);
    assert!(
        request(&base, "POST", MESSAGES, "To=%2B12125550123&Body=z").is_none_or(|(s, _)| s == 0)
    );

    assert_eq!(
        twilio.created().len(),
        2,
        "the 500 after create still created one"
    );
    let list = |query: &str| {
        let (status, body) =
            request(&base, "GET", &format!("{MESSAGES}?{query}"), "").expect("a response");
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        list["messages"].as_array().map(Vec::len)
    };
    assert_eq!(list("To=%2B12125550123"), Some(2));
    // Queued messages have no date_sent, so Twilio's DateSent filter leaves them out.
    assert_eq!(list("To=%2B12125550123&DateSent%3E=2020-01-01"), Some(0));
    assert_eq!(
        twilio.created_per_recipient()[&("+12125550123".into(), "y".into())],
        1
    );
}
