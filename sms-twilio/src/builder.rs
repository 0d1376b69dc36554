//! `TwilioBuilder`: every setting of the provider, checked once at `build`.

use std::time::Duration;

use sms_core::Timestamp;

use crate::config::{ConfigError, Credentials, EnvConfig, Secret, validate_sid};
use crate::http::Http;
use crate::provider::{SendSettings, TwilioProvider};
use crate::retry::RetryPolicy;

/// Twilio's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default total timeout of one request (Twilio's Node SDK uses the same 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`TwilioProvider`].
///
/// ```
/// use std::time::Duration;
/// use sms_twilio::{TwilioProvider, RetryPolicy};
/// let provider = TwilioProvider::builder("AC0123456789abcdef0123456789abcdef")
///     .auth_token("your-auth-token")
///     .messaging_service_sid("MG0123456789abcdef0123456789abcdef")
///     .status_callback("https://example.com/twilio/status")
///     .validity_period(Duration::from_secs(3600))
///     .retry_policy(RetryPolicy::new(3, Duration::from_millis(500)))
///     .build()
///     .expect("complete configuration");
/// assert!(!format!("{provider:?}").contains("your-auth-token"));
/// ```
#[derive(Debug, Clone)]
pub struct TwilioBuilder {
    account_sid: String,
    credentials: Option<Credentials>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
    validity_period: Option<Duration>,
    smart_encoded: Option<bool>,
    send_at: Option<Timestamp>,
    base_url: String,
    any_base_url: bool,
    connect_timeout: Duration,
    timeout: Duration,
    retry: RetryPolicy,
    lookup_clock_skew: Duration,
    lookup_max_pages: u32,
}

impl TwilioBuilder {
    /// A builder for the account `account_sid` (`AC…`, also when authenticating by API key).
    pub fn new(account_sid: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into().trim().to_owned(),
            credentials: None,
            from: None,
            messaging_service_sid: None,
            status_callback: None,
            validity_period: None,
            smart_encoded: None,
            send_at: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            any_base_url: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            lookup_clock_skew: Duration::from_secs(300),
            lookup_max_pages: 10,
        }
    }

    /// A builder from the `TWILIO_*` variables read through `lookup`: `TWILIO_ACCOUNT_SID`;
    /// `TWILIO_API_KEY` + `TWILIO_API_SECRET`, else `TWILIO_AUTH_TOKEN`;
    /// `TWILIO_FROM` and/or `TWILIO_MESSAGING_SERVICE_SID`; optional `TWILIO_BASE_URL`.
    /// Further settings (a `--twilio-base-url` flag, say) can still be chained.
    ///
    /// ```
    /// use sms_twilio::{TwilioBuilder, ConfigError};
    /// let err = TwilioBuilder::from_env(|_| None).unwrap_err();
    /// assert_eq!(err, ConfigError::Missing("TWILIO_ACCOUNT_SID"));
    /// ```
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = EnvConfig::from_lookup(lookup)?;
        let mut builder = Self::new(env.account_sid);
        builder.credentials = Some(env.credentials);
        builder.from = env.from;
        builder.messaging_service_sid = env.messaging_service_sid;
        if let Some(url) = env.base_url {
            builder.base_url = url;
        }
        Ok(builder)
    }

    /// Authenticates with the account's auth token.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::AuthToken(Secret::new(token)));
        self
    }

    /// Authenticates with an API key (`SK…`) and its secret (recommended for production).
    pub fn api_key(mut self, sid: impl Into<String>, secret: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::ApiKey {
            sid: sid.into().trim().to_owned(),
            secret: Secret::new(secret),
        });
        self
    }

    /// Sends from this number (E.164), short code or alphanumeric sender ID.
    pub fn from_number(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into().trim().to_owned());
        self
    }

    /// Sends through this Messaging Service (`MG…`). With a `from_number` too, Twilio uses
    /// that number from the service's pool.
    pub fn messaging_service_sid(mut self, sid: impl Into<String>) -> Self {
        self.messaging_service_sid = Some(sid.into().trim().to_owned());
        self
    }

    /// Where Twilio posts delivery statuses (`StatusCallback`).
    pub fn status_callback(mut self, url: impl Into<String>) -> Self {
        self.status_callback = Some(url.into());
        self
    }

    /// How long a text may wait in Twilio's queue before it is dropped (1 s … 10 h).
    pub fn validity_period(mut self, period: Duration) -> Self {
        self.validity_period = Some(period);
        self
    }

    /// Lets Twilio replace Unicode look-alikes with GSM-7 characters (`SmartEncoded`).
    pub fn smart_encoded(mut self, on: bool) -> Self {
        self.smart_encoded = Some(on);
        self
    }

    /// Schedules every send for `at` (`SendAt`, 15 min … 35 days ahead). Requires a Messaging
    /// Service: without one Twilio would send at once, so `build` refuses it.
    pub fn send_at(mut self, at: Timestamp) -> Self {
        self.send_at = Some(at);
        self
    }

    /// Lets [`TwilioBuilder::base_url`] name any https host (a trusted proxy in front of
    /// Twilio). Plain http stays limited to this machine.
    pub fn allow_any_base_url(mut self) -> Self {
        self.any_base_url = true;
        self
    }

    /// Sends to this API address instead of `https://api.twilio.com`: a regional edge, or a
    /// local stand-in over plain http on 127.0.0.1/localhost. Other hosts are refused unless
    /// [`TwilioBuilder::allow_any_base_url`] is called, so a mistyped address never receives
    /// the credentials.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Total timeout of one attempt, answer included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy (default: 4 attempts from 1 s).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How far before `since` `lookup_sent` still reports a message, to absorb the clock
    /// difference between this host and Twilio (default 5 min). Reporting one extra old
    /// message is safe; missing the one being reconciled would text someone twice.
    pub fn lookup_clock_skew(mut self, skew: Duration) -> Self {
        self.lookup_clock_skew = skew;
        self
    }

    /// Checks the settings and builds the provider.
    pub fn build(self) -> Result<TwilioProvider, ConfigError> {
        validate_sid("account SID", &self.account_sid, "AC")?;
        let (user, secret) = match self.credentials {
            Some(Credentials::AuthToken(token)) => (self.account_sid.clone(), token),
            Some(Credentials::ApiKey { sid, secret }) => {
                validate_sid("API key SID", &sid, "SK")?;
                (sid, secret)
            }
            None => return Err(ConfigError::Missing("auth token or API key")),
        };
        if secret.expose().trim().is_empty() {
            return Err(ConfigError::Missing("auth token or API key secret"));
        }
        if let Some(sid) = &self.messaging_service_sid {
            validate_sid("Messaging Service SID", sid, "MG")?;
        }
        if let Some(from) = &self.from
            && from.is_empty()
        {
            return Err(ConfigError::Invalid {
                name: "From",
                reason: "empty".into(),
            });
        }
        if self.from.is_none() && self.messaging_service_sid.is_none() {
            return Err(ConfigError::Missing(
                "sender: a From number or a Messaging Service SID",
            ));
        }
        if self.send_at.is_some() && self.messaging_service_sid.is_none() {
            return Err(ConfigError::ScheduleNeedsMessagingService);
        }
        let validity_period = self
            .validity_period
            .map(|p| {
                let secs = p.as_secs();
                u32::try_from(secs)
                    .ok()
                    .filter(|s| (1..=36_000).contains(s))
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "ValidityPeriod",
                        reason: format!("{secs} s is outside 1 ..= 36000 s"),
                    })
            })
            .transpose()?;
        if let Some(url) = &self.status_callback {
            check_http_url("StatusCallback", url)?;
        }
        let base_url = self.base_url.trim().trim_end_matches('/').to_owned();
        check_http_url("base URL", &base_url)?;
        if base_url.starts_with("http://") && !is_loopback(&base_url) {
            return Err(ConfigError::Invalid {
                name: "base URL",
                reason: "plain http is only for a local stand-in (127.0.0.1, localhost, [::1]): \
                         credentials would travel unencrypted"
                    .into(),
            });
        }
        if !is_loopback(&base_url) && !is_twilio(&base_url) && !self.any_base_url {
            return Err(ConfigError::Invalid {
                name: "base URL",
                reason: "the credentials go only to twilio.com hosts or a local stand-in; \
                         call allow_any_base_url() for a trusted proxy"
                    .into(),
            });
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                name: "retry policy",
                reason: "max_attempts must be at least 1".into(),
            });
        }
        let http = Http::new(
            base_url,
            user,
            secret,
            self.retry,
            self.connect_timeout,
            self.timeout,
        )?;
        Ok(TwilioProvider::new(
            http,
            SendSettings {
                account_sid: self.account_sid,
                from: self.from,
                messaging_service_sid: self.messaging_service_sid,
                status_callback: self.status_callback,
                validity_period,
                smart_encoded: self.smart_encoded,
                send_at: self.send_at,
                lookup_clock_skew: self.lookup_clock_skew,
                lookup_max_pages: self.lookup_max_pages,
            },
        ))
    }
}

/// The host of an `http://` or `https://` URL, without brackets or port.
fn host_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    }
}

/// Whether a URL points at Twilio (`twilio.com` or a subdomain, regional edges included).
fn is_twilio(url: &str) -> bool {
    let host = host_of(url).to_ascii_lowercase();
    host == "twilio.com" || host.ends_with(".twilio.com")
}

/// Whether a URL points at this machine.
fn is_loopback(url: &str) -> bool {
    let host = host_of(url);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_http_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(ConfigError::Invalid {
            name,
            reason: "expected an http:// or https:// URL".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:9/x",
            "http://127.3.4.5",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://example.com",
            "http://127.0.0.1.evil.com",
            "http://10.0.0.1:80",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
        assert!(is_twilio("https://api.dublin.ie1.twilio.com"));
        assert!(!is_twilio("https://api.twilio.com.evil.example"));
        assert!(!is_twilio("https://nottwilio.com"));
        let err = TwilioBuilder::new("AC0123456789abcdef0123456789abcdef")
            .auth_token("t")
            .from_number("+15005550006")
            .base_url("http://api.example.com")
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "base URL",
                ..
            }
        ));
    }
}
