//! `X-Twilio-Signature`: proof that a webhook request comes from Twilio.
//!
//! `base64(HMAC-SHA1(auth token, URL + every form parameter as name+value, sorted by name))`,
//! compared in constant time. The URL is used exactly as Twilio requested it (host case, query
//! string and credentials kept), with and without the default port, as every official SDK
//! accepts both. JSON bodies are covered by a `bodySHA256` query parameter instead.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The header Twilio signs requests with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Why a webhook request was not accepted as Twilio's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Twilio-Signature` header (or an empty one).
    #[error("missing X-Twilio-Signature header")]
    Missing,
    /// The signature does not match this URL, these parameters and the configured auth
    /// token(s): forged, altered, signed with another token, or the URL differs from the one
    /// configured at Twilio (a proxy rewrote it).
    #[error(
        "X-Twilio-Signature does not match the request (wrong URL, altered parameters or another auth token)"
    )]
    Mismatch,
    /// A JSON-body request whose URL has no `bodySHA256` query parameter.
    #[error("JSON webhook without a bodySHA256 query parameter")]
    BodyHashMissing,
    /// The body's SHA-256 differs from `bodySHA256`: altered after signing.
    #[error("webhook body does not match its bodySHA256")]
    BodyHashMismatch,
}

/// Checks signatures against the account's auth token (and, during a rotation, the previous
/// one). Webhooks are always signed with the auth token, never with an API key secret.
///
/// ```
/// use sms_twilio::signature::{SignatureValidator, compute_signature};
/// let url = "https://example.com/twilio/sms";
/// let params = vec![("Body".to_string(), "STOP".to_string())];
/// let header = compute_signature("12345", url, &params);
/// let validator = SignatureValidator::new("12345");
/// assert!(validator.validate(url, &params, Some(&header)).is_ok());
/// assert!(validator.validate(url, &params, Some("forged")).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct SignatureValidator {
    tokens: Vec<Secret>,
}

impl SignatureValidator {
    /// A validator for the account's auth token.
    pub fn new(auth_token: impl Into<String>) -> Self {
        Self {
            tokens: vec![Secret::new(auth_token)],
        }
    }

    /// Also accepts signatures made with `token` (the other token during a rotation).
    pub fn with_additional_token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(Secret::new(token));
        self
    }

    /// Validates a form (or GET) webhook: `url` as Twilio requested it, the decoded form
    /// fields (repeated names allowed), and the header's value.
    pub fn validate(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::Missing)?;
        let mut matched = false;
        // Every candidate is checked, so the time taken does not tell which one matched.
        for candidate in url_variants(url) {
            let data = signed_string(&candidate, params);
            for token in &self.tokens {
                let expected = sign(token.expose(), &data);
                matched |= bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
            }
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Validates a JSON-body webhook: the signature covers the URL (which carries
    /// `bodySHA256`) and the raw body must hash to that value.
    pub fn validate_body(
        &self,
        url: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        self.validate(url, &[], signature)?;
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let query = query.split('#').next().unwrap_or("");
        let declared = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v.to_ascii_lowercase())
            .ok_or(SignatureError::BodyHashMissing)?;
        let actual = hex_sha256(body);
        if bool::from(actual.as_bytes().ct_eq(declared.as_bytes())) {
            Ok(())
        } else {
            Err(SignatureError::BodyHashMismatch)
        }
    }
}

/// The signature Twilio would send for this URL and these parameters (for tests and for
/// signing requests to a local stand-in).
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    sign(auth_token, &signed_string(url, params))
}

/// Lower-case hex SHA-256 of a body, as `bodySHA256` carries it.
pub fn hex_sha256(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sign(token: &str, data: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL followed by `name+value` for every parameter, sorted by name then value in byte
/// order, identical pairs once (the Python and Node SDKs' rule for repeated names).
fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = params.iter().collect();
    pairs.sort();
    pairs.dedup();
    let mut data = String::with_capacity(url.len() + pairs.len() * 24);
    data.push_str(url);
    for (name, value) in pairs {
        data.push_str(name);
        data.push_str(value);
    }
    data
}

/// The URL as given, without its port, and with the scheme's default port added.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, hostport) = authority.split_at(host_start);
    // The port is after the last ':' that is not inside an IPv6 literal.
    let port_sep = hostport
        .rfind(':')
        .filter(|i| !hostport[*i..].contains(']'));
    let host = port_sep.map_or(hostport, |i| &hostport[..i]);
    let rebuild = |port: Option<&str>| match port {
        Some(port) => format!("{scheme}://{userinfo}{host}:{port}{tail}"),
        None => format!("{scheme}://{userinfo}{host}{tail}"),
    };
    if port_sep.is_some() {
        variants.push(rebuild(None));
    } else {
        let default = match scheme.to_ascii_lowercase().as_str() {
            "https" => Some("443"),
            "http" => Some("80"),
            _ => None,
        };
        if let Some(port) = default {
            variants.push(rebuild(Some(port)));
        }
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::form::form_fields as p;

    #[test]
    fn official_base_vector() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            compute_signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn port_variants() {
        assert_eq!(
            url_variants("https://a.com/x?y=1"),
            ["https://a.com/x?y=1", "https://a.com:443/x?y=1"]
        );
        assert_eq!(
            url_variants("HTTP://u:p@A.com:8080"),
            ["HTTP://u:p@A.com:8080", "HTTP://u:p@A.com"]
        );
        assert_eq!(
            url_variants("http://[::1]:8080/x"),
            ["http://[::1]:8080/x", "http://[::1]/x"]
        );
        assert_eq!(
            url_variants("http://[::1]/x"),
            ["http://[::1]/x", "http://[::1]:80/x"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
    }

    #[test]
    fn missing_and_blank_headers() {
        let v = SignatureValidator::new("t");
        assert_eq!(
            v.validate("https://a.com", &[], None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            v.validate("https://a.com", &[], Some("  ")),
            Err(SignatureError::Missing)
        );
    }

    proptest::proptest! {
        #[test]
        fn order_of_fields_never_matters_but_any_value_change_does(
            mut params in proptest::collection::vec(("[A-Za-z]{1,6}", "[ -~]{0,8}"), 1..8),
            seed in proptest::prelude::any::<u64>(),
            which in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let url = "https://example.com/sms?x=1";
            let signature = compute_signature("t", url, &params);
            let v = SignatureValidator::new("t");
            let mut rng = fastrand::Rng::with_seed(seed);
            rng.shuffle(&mut params);
            proptest::prop_assert!(v.validate(url, &params, Some(&signature)).is_ok());
            let i = which.index(params.len());
            let original = params[i].1.clone();
            params[i].1.push('!');
            // The changed value may equal another value of the same name (deduplicated), so
            // only assert a mismatch when the multiset of pairs really changed.
            let changed = !params.iter().any(|(k, v)| *k == params[i].0 && *v == original);
            if changed {
                proptest::prop_assert!(v.validate(url, &params, Some(&signature)).is_err());
            }
        }
    }

    #[test]
    fn rotation_accepts_either_token_and_debug_hides_them() {
        let url = "https://a.com/sms";
        let sig = compute_signature("old-token", url, &[]);
        let v = SignatureValidator::new("new-token");
        assert_eq!(
            v.validate(url, &[], Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        let v = v.with_additional_token("old-token");
        assert!(v.validate(url, &[], Some(&sig)).is_ok());
        let shown = format!("{v:?}");
        assert!(
            !shown.contains("old-token") && !shown.contains("new-token"),
            "{shown}"
        );
    }
}
