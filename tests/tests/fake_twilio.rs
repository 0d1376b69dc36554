//! The stand-in itself behaves like Twilio where the other tests rely on it.

use std::io::{Read, Write};
use std::net::TcpStream;

use sms_tests::fake_twilio::{FakeTwilio, Fault};

/// One HTTP/1.1 request over a plain socket; `None` when the server dropped the connection.
fn request(base: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    request_with_headers(base, method, path, body).map(|(status, _, body)| (status, body))
}

/// One request; the status, the headers (lower-cased) and the body.
fn request_with_headers(
    base: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String, String)> {
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
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
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
    let fired = twilio.fault_counts();
    assert_eq!(fired.get("status_429"), Some(&1));
    assert_eq!(fired.get("error_after_create"), Some(&1));
    assert_eq!(fired.get("reset_before_create"), Some(&1));
    assert_eq!(fired.get("none"), None);
}

fn post(base: &str, to: &str, body: &str) -> Option<(u16, String)> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("To", to)
        .append_pair("Body", body)
        .finish();
    request(base, "POST", MESSAGES, &form)
}

fn list(base: &str, query: &str) -> serde_json::Value {
    let (status, body) =
        request(base, "GET", &format!("{MESSAGES}?{query}"), "").expect("a response");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn sids(page: &serde_json::Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["sid"].as_str().expect("sid").to_owned())
        .collect()
}

#[test]
fn a_slow_answer_comes_after_the_message_exists_even_when_the_client_hangs_up() {
    let twilio = FakeTwilio::start();
    twilio.set_plan(|_, _| Fault::Delay(std::time::Duration::from_secs(30)));
    let addr = twilio.base_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).expect("the stand-in listens");
    let form = "To=%2B12125550123&Body=late";
    let request = format!(
        "POST {MESSAGES} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic QUM6dG9rZW4=\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).expect("written");
    // The client gives up long before the answer: the message was created all the same.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while twilio.fault_counts().get("delay") != Some(&1) || twilio.created().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow request never created its message"
        );
        std::thread::yield_now();
    }
    drop(stream);
    let created = twilio.created();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].body, "late");
    assert_eq!(
        sids(&list(&twilio.base_url(), "To=%2B12125550123")).len(),
        1
    );
}

#[test]
fn the_list_is_paged_newest_first_and_lags_behind_creation() {
    let twilio = FakeTwilio::start();
    let base = twilio.base_url();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let seeded: Vec<String> = (0..7)
        .map(|i| {
            twilio
                .seed("+12125550123", &format!("m{i}"), now - 60_000 + i * 1_000)
                .sid
        })
        .collect();
    twilio.seed("+12125550199", "other number", now - 30_000);
    twilio.set_max_page_size(3);
    let mut page = list(&base, "To=%2B12125550123&PageSize=100");
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert_eq!(page["page_size"], 3);
        all.extend(sids(&page));
        let Some(next) = page["next_page_uri"].as_str().map(str::to_owned) else {
            break;
        };
        assert!(
            next.starts_with("/2010-04-01/") && next.contains("PageToken="),
            "{next}"
        );
        // A message created while paging does not shift the pages.
        if pages == 1 {
            twilio.seed("+12125550123", "newer", now);
        }
        let (status, body) = request(&base, "GET", &next, "").expect("a response");
        assert_eq!(status, 200);
        page = serde_json::from_str(&body).expect("JSON");
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = seeded.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);
    assert_eq!(twilio.list_requests(), 3);

    // A message is listed only `lag` after it was created.
    twilio.set_list_lag(std::time::Duration::from_secs(3_600));
    post(&base, "+12125550177", "just now").expect("a response");
    assert_eq!(twilio.created().len(), 10);
    assert!(sids(&list(&base, "To=%2B12125550177")).is_empty());
    twilio.set_list_lag(std::time::Duration::ZERO);
    assert_eq!(sids(&list(&base, "To=%2B12125550177")).len(), 1);
}

#[test]
fn its_clock_may_disagree_with_ours_and_says_so_in_date() {
    let twilio = FakeTwilio::start();
    let base = twilio.base_url();
    twilio.set_clock_offset(-180_000);
    let (status, head, body) =
        request_with_headers(&base, "POST", MESSAGES, "To=%2B12125550123&Body=x")
            .expect("a response");
    assert_eq!(status, 201);
    let created = &twilio.created()[0];
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let date_created = jiff::fmt::rfc2822::parse(json["date_created"].as_str().expect("date"))
        .expect("RFC 2822")
        .timestamp()
        .as_millisecond();
    // RFC 2822 has whole seconds.
    assert_eq!(date_created / 1000, (created.created_ms - 180_000) / 1000);
    let date = head
        .lines()
        .find_map(|l| l.strip_prefix("date: "))
        .expect("a Date header");
    let date = jiff::fmt::rfc2822::parse(date)
        .expect("an HTTP date")
        .timestamp()
        .as_millisecond();
    let behind = created.created_ms - date;
    assert!((178_000..=182_000).contains(&behind), "{behind} ms behind");
}
