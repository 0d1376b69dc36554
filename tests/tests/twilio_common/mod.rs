//! Shared by the `twilio_*` integration tests: the OpenAPI file, its examples, and a provider
//! pointed at a local stand-in.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::OnceLock;
use std::time::Duration;

use sms_twilio::{RetryPolicy, TwilioBuilder, TwilioProvider};

/// The account of the OpenAPI examples.
pub const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// A token that must never show up in any output.
pub const TOKEN: &str = "tok-NEVER-PRINT-9f8e7d6c5b4a";
/// A Messaging Service.
pub const SERVICE: &str = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// The Messages endpoint path.
pub const MESSAGES_PATH: &str =
    "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json";
/// The Balance endpoint path.
pub const BALANCE_PATH: &str =
    "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Balance.json";

/// Twilio's OpenAPI description of the 2010-04-01 API.
pub fn spec() -> &'static serde_json::Value {
    static SPEC: OnceLock<serde_json::Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = sms_tests::data_file("twilio/twilio_api_v2010.json");
        let text = std::fs::read_to_string(&path).expect("the OpenAPI file is in tests/data");
        serde_json::from_str(&text).expect("the OpenAPI file is JSON")
    })
}

/// The operation `method` of `path` in the spec.
pub fn operation(path: &str, method: &str) -> &'static serde_json::Value {
    &spec()["paths"][path][method]
}

/// A named response example of an operation, as the JSON text a server would send.
pub fn example(path: &str, method: &str, status: &str, name: &str) -> String {
    let value = &operation(path, method)["responses"][status]["content"]["application/json"]["examples"]
        [name]["value"];
    assert!(!value.is_null(), "example {name} exists in the spec");
    value.to_string()
}

/// A CreateMessage 201 example.
pub fn create_example(name: &str) -> String {
    example(
        "/2010-04-01/Accounts/{AccountSid}/Messages.json",
        "post",
        "201",
        name,
    )
}

/// Retries that keep tests fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(2),
    }
}

/// A builder for the examples' account, with a From number, pointed at `base_url`.
pub fn builder(base_url: &str) -> TwilioBuilder {
    TwilioProvider::builder(ACCOUNT)
        .auth_token(TOKEN)
        .from_number("+14155552345")
        .base_url(base_url)
        .timeout(Duration::from_secs(5))
        .retry_policy(fast_retries())
}

/// `pairs` as owned form fields.
pub fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    sms_twilio::form_fields(pairs)
}
