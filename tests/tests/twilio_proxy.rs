//! The proxy variables of the environment never see the credentials: a plain-http stand-in on
//! this machine is reached directly, whatever `HTTP_PROXY` or `ALL_PROXY` say.
//!
//! One test in its own binary: it sets process-wide environment variables before anything else
//! runs, which no other test must observe.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sms_core::{OutboundSms, PhoneNumber, Provider};
use sms_tests::fake_twilio::FakeTwilio;
use sms_twilio::{RetryPolicy, TwilioProvider};

#[test]
fn proxy_variables_never_receive_the_credentials() {
    // A "proxy" that records what it is sent and answers 502.
    let proxy = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("bound"));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for stream in proxy.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buffer = [0u8; 4096];
                let n = stream.read(&mut buffer).unwrap_or(0);
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(String::from_utf8_lossy(&buffer[..n]).into_owned());
                let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
            }
        });
    }
    // SAFETY: this binary holds this one test, and the variables are set before any other
    // thread that could read the environment (the stand-in's runtime, the client) exists.
    unsafe {
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
            "HTTPS_PROXY",
            "https_proxy",
        ] {
            std::env::set_var(name, &proxy_url);
        }
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }

    let twilio = FakeTwilio::start();
    let provider = TwilioProvider::builder("AC00000000000000000000000000000000")
        .auth_token("token-for-the-stand-in-only")
        .from_number("+15005550006")
        .base_url(twilio.base_url())
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a valid configuration");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let to = PhoneNumber::from_e164("+12125550123").expect("valid");
    let sent = runtime.block_on(provider.send(&OutboundSms::new(to, "Class moved")));
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert!(
        seen.is_empty(),
        "the proxy named by the environment received {} request(s); credentials sent: {}",
        seen.len(),
        seen.iter()
            .any(|r| r.to_ascii_lowercase().contains("authorization: basic"))
    );
    sent.expect("sent straight to the stand-in");
    assert_eq!(twilio.created().len(), 1);
}
