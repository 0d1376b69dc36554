//! Twilio's error answers, and what they mean for the caller (`SendError` classes).

use std::time::Duration;

use sms_core::SendError;

/// Error codes meaning "this recipient cannot be texted": invalid `To` (21211), not reachable
/// by SMS (21612), not a mobile (21614), region not enabled (21408).
///
/// Kept for reference and for hosts that name them; since any 4xx with a Twilio code that is
/// not in [`STOP_THE_RUN_CODES`] fails only its record, the list no longer decides anything.
pub const BAD_RECIPIENT_CODES: &[u32] = &[21211, 21612, 21614, 21408];

/// Twilio error codes that stop the whole run (`SendError::Configuration`): every other record
/// would be refused the same way, so failing them one by one would only burn the list.
///
/// | code | Twilio's meaning | why the run stops |
/// |---|---|---|
/// | 20003 | authentication failed / permission denied (401, 403) | the credentials |
/// | 20005 | account not active (suspended or closed) | the account |
/// | 20404 | resource not found (404: a wrong account SID or API path) | the account or base URL |
/// | 21212 | invalid `From` number | the sender |
/// | 21603 | a `From` or `MessagingServiceSid` is required | the sender |
/// | 21606 | `From` is not a message-capable Twilio number for this destination/account | the sender (Twilio: not SMS-capable, still porting, or not owned by this account) |
/// | 21659 | `From` is not a Twilio number, or a short code of another country | the sender |
/// | 21660 | the `From` number belongs to another account than the credentials | the sender and account |
/// | 21703 | the Messaging Service has no sender in its pool | the sender |
/// | 21704 | the Messaging Service's sender pool has no usable sender | the sender |
/// | 21705 | the Messaging Service is invalid | the sender |
///
/// Sources: Twilio's error pages (twilio.com/docs/api/errors/CODE) and
/// `tests/data/twilio/NOTES.md` section 2. HTTP 401, 403 and 404 stop the run whatever code
/// they carry.
pub const STOP_THE_RUN_CODES: &[u32] = &[
    20003, 20005, 20404, 21212, 21603, 21606, 21659, 21660, 21703, 21704, 21705,
];
/// The recipient replied STOP to this sender: record the opt-out locally.
pub const OPTED_OUT_CODE: u32 = 21610;
/// Too many concurrent requests.
pub const TOO_MANY_REQUESTS_CODE: u32 = 20429;
/// Refusals that created nothing and may succeed later: the sender's queue is full (21611),
/// the runaway-loop guard between two numbers (14107).
pub const TRY_LATER_CODES: &[u32] = &[21611, 14107];

/// An error answer from Twilio's REST API, read leniently.
///
/// Accepts the legacy body (`code`, `message`, `more_info`, `status`), the RFC 9457
/// problem+json body (`type`, `title`, `detail`, `code`, `status`), and anything else (then
/// only the HTTP status is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub http_status: u16,
    /// Twilio's error code (`21211`), when the body has one.
    pub code: Option<u32>,
    /// Twilio's explanation, or the HTTP status when the body has none.
    pub message: String,
    /// Twilio's documentation link for the code.
    pub more_info: Option<String>,
}

impl ApiError {
    /// Reads an error body; never fails.
    pub fn parse(http_status: u16, body: &[u8]) -> Self {
        let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| value.as_ref().and_then(|v| v.get(name));
        let text = |name: &str| {
            field(name)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let code = field("code").and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|c| u32::try_from(c).ok())
        });
        let message = text("message")
            .or_else(|| text("detail"))
            .or_else(|| text("title"))
            .unwrap_or_else(|| format!("HTTP {http_status} from Twilio"));
        Self {
            http_status,
            code,
            message,
            more_info: text("more_info").or_else(|| text("type")),
        }
    }
}

/// Whether repeating the request could do something twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Creates a message (`POST Messages.json`): not idempotent.
    Create,
    /// Reads (balance, list): safe to repeat.
    Read,
}

/// The `SendError` class for an error answer.
///
/// `retry_after` is what the `Retry-After` header asked for, when sent.
pub fn classify_error(
    error: &ApiError,
    retry_after: Option<Duration>,
    kind: RequestKind,
) -> SendError {
    let code = error.code;
    let message = error.message.clone();
    match (code, error.http_status) {
        (Some(OPTED_OUT_CODE), _) => SendError::OptedOut { code, message },
        // Account-level: the credentials, the account or the path are wrong for every record.
        (_, 401 | 403 | 404) => SendError::Configuration {
            code: code.or(Some(u32::from(error.http_status))),
            message,
        },
        (Some(c), _) if STOP_THE_RUN_CODES.contains(&c) => SendError::Configuration {
            code: Some(c),
            message,
        },
        (Some(TOO_MANY_REQUESTS_CODE), _) | (_, 429) => SendError::SlowDown {
            code: code.or(Some(429)),
            message,
            retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        },
        (Some(c), _) if TRY_LATER_CODES.contains(&c) => SendError::TryLater { code, message },
        (_, status) if status >= 500 => match kind {
            // Twilio may have created the message before failing: only a reconciliation
            // (lookup_sent) can tell, so the caller must not simply retry.
            RequestKind::Create => SendError::Unknown {
                message: format!("HTTP {status}: {message}"),
            },
            RequestKind::Read => SendError::TryLater {
                code: code.or(Some(u32::from(status))),
                message,
            },
        },
        // Any other 4xx with a Twilio code (21266 To equals From, 21608 unverified number on a
        // trial account, 21617 body too long, 21211 invalid number...) is about this record:
        // nothing was created, the record fails with its code and the rest of the list goes
        // on. Stopping the run instead would stop every resume at the same record, for good.
        (Some(_), status) if (400..500).contains(&status) => {
            SendError::BadRecipient { code, message }
        }
        // A 4xx without a Twilio code (an HTML error page from something in between) says
        // nothing about the record: stop and let a person look.
        _ => SendError::Configuration {
            code: code.or(Some(u32::from(error.http_status))),
            message,
        },
    }
}

/// Whether an error answer may be retried by the provider itself (before reporting).
pub(crate) fn is_retryable_status(status: u16, kind: RequestKind) -> bool {
    match kind {
        // A 429 is never processed (Twilio: "safe to retry"); a 5xx may have created the message.
        RequestKind::Create => status == 429,
        RequestKind::Read => status == 429 || matches!(status, 500 | 502 | 503 | 504),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, body: &str, kind: RequestKind) -> SendError {
        classify_error(&ApiError::parse(status, body.as_bytes()), None, kind)
    }

    fn legacy(code: u32, status: u16) -> String {
        format!(
            r#"{{"code": {code}, "message": "m{code}", "more_info": "https://www.twilio.com/docs/errors/{code}", "status": {status}}}"#
        )
    }

    #[test]
    fn codes_map_to_the_documented_classes() {
        for code in [
            21211, 21614, 21612, 21408, 21266, 21608, 21617, 21602, 30000,
        ] {
            let e = class(400, &legacy(code, 400), RequestKind::Create);
            assert_eq!(e.class(), "bad_recipient", "{code}");
            assert_eq!(e.code(), Some(code));
        }
        for &code in STOP_THE_RUN_CODES {
            let e = class(400, &legacy(code, 400), RequestKind::Create);
            assert_eq!(e.class(), "configuration", "{code}");
            assert_eq!(e.code(), Some(code));
        }
        // 401, 403 and 404 stop the run whatever code (or none) they carry.
        for status in [401, 403, 404] {
            let e = class(status, &legacy(21266, status), RequestKind::Create);
            assert_eq!(e.class(), "configuration", "{status}");
            assert_eq!(
                class(status, "", RequestKind::Create).code(),
                Some(u32::from(status))
            );
        }
        // A 4xx page without a Twilio code says nothing about the record.
        assert_eq!(
            class(400, "<html>", RequestKind::Create).class(),
            "configuration"
        );
        assert_eq!(
            class(400, &legacy(21610, 400), RequestKind::Create).class(),
            "opted_out"
        );
        assert_eq!(
            class(401, &legacy(20003, 401), RequestKind::Create).class(),
            "configuration"
        );
        assert_eq!(
            class(429, &legacy(20429, 429), RequestKind::Create).class(),
            "slow_down"
        );
        assert_eq!(
            class(400, &legacy(21611, 400), RequestKind::Create).class(),
            "try_later"
        );
        assert_eq!(
            class(500, &legacy(20500, 500), RequestKind::Create).class(),
            "unknown"
        );
        assert_eq!(
            class(503, &legacy(20503, 503), RequestKind::Read).class(),
            "try_later"
        );
    }

    #[test]
    fn reads_problem_json_and_garbage() {
        let problem = r#"{"type":"https://www.twilio.com/docs/errors/21211","title":"Invalid To","status":400,"code":21211,"detail":"The 'To' number is not valid"}"#;
        let e = ApiError::parse(400, problem.as_bytes());
        assert_eq!(e.code, Some(21211));
        assert_eq!(e.message, "The 'To' number is not valid");
        let e = ApiError::parse(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.code, None);
        assert_eq!(e.message, "HTTP 502 from Twilio");
        let e = ApiError::parse(400, br#"{"code":"21614","message":null}"#);
        assert_eq!(e.code, Some(21614));
    }

    #[test]
    fn retry_after_travels_with_slow_down() {
        let e = classify_error(
            &ApiError::parse(429, b""),
            Some(Duration::from_secs(2)),
            RequestKind::Create,
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(e.code(), Some(429));
    }
}
