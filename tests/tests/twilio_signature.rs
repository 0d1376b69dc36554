//! Every vector of `signature_vectors.json` (Twilio's SDK test suites and SMS cases computed
//! with Twilio's Node SDK) through `SignatureValidator`, plus signatures made here.

use serde::Deserialize;
use sms_twilio::{SignatureError, SignatureValidator, compute_signature};

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    token: String,
    url: String,
    params: Vec<(String, String)>,
    body: Option<String>,
    signature: String,
    valid: bool,
    note: String,
}

fn vectors() -> Vec<Case> {
    let path = sms_tests::data_file("twilio/signature_vectors.json");
    let text = std::fs::read_to_string(path).expect("the vectors are in tests/data");
    serde_json::from_str::<Vectors>(&text)
        .expect("vectors parse")
        .cases
}

#[test]
fn all_vectors_pass() {
    let cases = vectors();
    assert!(cases.len() >= 20, "all vectors read");
    for case in cases {
        let validator = SignatureValidator::new(&case.token);
        let result = match &case.body {
            Some(body) => {
                validator.validate_body(&case.url, body.as_bytes(), Some(&case.signature))
            }
            None => validator.validate(&case.url, &case.params, Some(&case.signature)),
        };
        assert_eq!(result.is_ok(), case.valid, "{}: {result:?}", case.note);
    }
}

#[test]
fn stale_token_missing_header_and_forgery_are_told_apart() {
    let url = "https://example.com/twilio/sms";
    let params = vec![("Body".to_string(), "STOP".to_string())];
    let old = compute_signature("old-token", url, &params);
    let validator = SignatureValidator::new("new-token");
    assert_eq!(
        validator.validate(url, &params, Some(&old)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        validator.validate(url, &params, None),
        Err(SignatureError::Missing)
    );
    let forged = compute_signature("new-token", url, &[("Body".into(), "START".into())]);
    assert_eq!(
        validator.validate(url, &params, Some(&forged)),
        Err(SignatureError::Mismatch)
    );
    assert!(
        SignatureError::Mismatch
            .to_string()
            .contains("does not match"),
        "the error says what failed"
    );
}

#[test]
fn json_bodies_need_their_hash_in_the_url() {
    let body = br#"{"property": "value", "boolean": true}"#;
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let signature = compute_signature("12345", url, &[]);
    let validator = SignatureValidator::new("12345");
    assert_eq!(
        validator.validate_body(url, body, Some(&signature)),
        Err(SignatureError::BodyHashMissing)
    );
    let hashed = format!(
        "{url}&bodySHA256={}",
        sms_twilio::signature::hex_sha256(body)
    );
    let signature = compute_signature("12345", &hashed, &[]);
    assert!(
        validator
            .validate_body(&hashed, body, Some(&signature))
            .is_ok()
    );
    assert_eq!(
        validator.validate_body(&hashed, b"{}", Some(&signature)),
        Err(SignatureError::BodyHashMismatch)
    );
}

#[test]
fn self_made_signatures_validate_on_both_port_forms() {
    let params = vec![("From".to_string(), "+14155552671".to_string())];
    let validator = SignatureValidator::new("s3cr3t");
    for (signed, received) in [
        (
            "https://example.com:443/path?test=param",
            "https://example.com/path?test=param",
        ),
        (
            "https://example.com/path?test=param",
            "https://example.com:443/path?test=param",
        ),
        ("http://127.0.0.1:8080/sms", "http://127.0.0.1:8080/sms"),
    ] {
        let signature = compute_signature("s3cr3t", signed, &params);
        assert!(
            validator
                .validate(received, &params, Some(&signature))
                .is_ok(),
            "{signed} vs {received}"
        );
    }
    let signature = compute_signature("s3cr3t", "https://example.com/path?test=param", &params);
    assert!(
        validator
            .validate(
                "https://example.com/path?test=param2",
                &params,
                Some(&signature)
            )
            .is_err()
    );
}
