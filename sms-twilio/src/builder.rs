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

/// The shortest wait, in seconds, before a real provider's silence about a send in doubt may
/// count as "not sent". Twilio's message list is eventually consistent: a message accepted by a
/// call that timed out may be listed some seconds later, and a shorter silence proves nothing.
pub const MIN_RECONCILE_WAIT_S: u64 = 10;

/// Whether `url` is a Twilio stand-in on this machine (`http://127.0.0.1:PORT`,
/// `http://localhost:PORT`, `http://[::1]:PORT`), where a shorter reconcile wait cannot text
/// anyone twice. Anything that only looks local (`127.0.0.1.example.com`, userinfo, a
/// backslash) is not.
pub fn is_local_stand_in(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains(['@', '\\', '?', '#']) {
        return false;
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(host, _)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

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
    https_proxy: Option<String>,
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
            https_proxy: None,
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
        builder.https_proxy = env.https_proxy;
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

    /// How many pages of a number's history `lookup_sent` reads at most (default 10, at 100
    /// messages a page). Paging stops early once a page reaches messages older than the
    /// attempt; a history still longer than this is an error ("cannot tell"), never "not
    /// sent".
    pub fn lookup_max_pages(mut self, pages: u32) -> Self {
        self.lookup_max_pages = pages;
        self
    }

    /// Sends the requests to Twilio through this proxy (`http://proxy:3128`), inside a TLS
    /// tunnel so the proxy never sees the credentials. Only for an https base URL.
    ///
    /// Without it no proxy is used at all: the `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY`
    /// variables are ignored, since a proxy named by the environment would receive a local
    /// stand-in's credentials in clear text, and one for https should be a decision made for
    /// Twilio, not inherited (`TWILIO_HTTPS_PROXY` sets it from the environment).
    pub fn https_proxy(mut self, proxy: impl Into<String>) -> Self {
        self.https_proxy = Some(proxy.into());
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
        let parsed = parse_http_url("base URL", &base_url)?;
        let destination = Destination::of(&parsed).map_err(|reason| ConfigError::Invalid {
            name: "base URL",
            reason,
        })?;
        match (destination, parsed.scheme()) {
            (Destination::Loopback, _) | (Destination::Twilio, "https") => {}
            (_, "http") => {
                return Err(ConfigError::Invalid {
                    name: "base URL",
                    reason: "plain http is only for a local stand-in (127.0.0.1, localhost, \
                             [::1]): credentials would travel unencrypted"
                        .into(),
                });
            }
            (Destination::Other, _) if self.any_base_url => {}
            (Destination::Twilio | Destination::Other, _) => {
                return Err(ConfigError::Invalid {
                    name: "base URL",
                    reason: "the credentials go only to twilio.com hosts (port 443) or a local \
                             stand-in; call allow_any_base_url() for a trusted proxy"
                        .into(),
                });
            }
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(ConfigError::Invalid {
                name: "base URL",
                reason: "a base URL has no query or fragment".into(),
            });
        }
        let https_proxy = match &self.https_proxy {
            None => None,
            Some(_) if parsed.scheme() != "https" => {
                return Err(ConfigError::Invalid {
                    name: "https proxy",
                    reason: "a proxy is used only for an https base URL; a local stand-in is \
                             reached directly"
                        .into(),
                });
            }
            Some(proxy) => {
                let proxy = parse_http_url("https proxy", proxy.trim())?;
                Some(proxy.to_string())
            }
        };
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
            (self.connect_timeout, self.timeout),
            https_proxy,
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

/// Where a base URL sends the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// This machine: 127.0.0.0/8, `[::1]`, `localhost`.
    Loopback,
    /// `twilio.com` or a subdomain (regional edges included), on the https port.
    Twilio,
    /// Anything else.
    Other,
}

impl Destination {
    /// Classifies a parsed URL by its host and port, as the HTTP client will connect.
    fn of(url: &url::Url) -> Result<Self, String> {
        Ok(match url.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Self::Loopback,
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Self::Loopback,
            Some(url::Host::Domain("localhost")) => Self::Loopback,
            Some(url::Host::Domain(host))
                if (host == "twilio.com" || host.ends_with(".twilio.com"))
                    && url.port_or_known_default() == Some(443) =>
            {
                Self::Twilio
            }
            Some(_) => Self::Other,
            None => return Err("the URL has no host".into()),
        })
    }
}

/// Parses an `http://` or `https://` URL with a real URL parser and refuses what could make
/// the host the client connects to differ from the host a person reads: a user name or
/// password (`user@host`), a backslash (WHATWG parsers read `\` as `/`, so
/// `http://127.0.0.2:1\@127.0.0.1` is host 127.0.0.2), white space or control characters, and
/// any host as written that is not exactly the parsed host (percent-encoding, numeric forms of
/// IP addresses, international names, a trailing dot).
fn parse_http_url(name: &'static str, text: &str) -> Result<url::Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name,
        reason: reason.to_owned(),
    };
    if text.contains('\\') {
        return Err(invalid("a backslash is not allowed in a URL"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("white space is not allowed in a URL"));
    }
    let url = url::Url::parse(text).map_err(|e| invalid(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("expected an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() || text.contains('@') {
        return Err(invalid(
            "a user name or password (user@host) is not allowed in a URL",
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("the URL has no host"))?;
    if host.ends_with('.') {
        return Err(invalid("the host must not end with a dot"));
    }
    // The authority exactly as typed must be the host the parser found (with the port as
    // typed, or none): anything the parser had to reinterpret is refused.
    let written = text
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
    let agrees = written.eq_ignore_ascii_case(host)
        || port.is_some_and(|p| written.eq_ignore_ascii_case(&p));
    if !agrees {
        return Err(invalid(&format!(
            "the host as written ({written:?}) is not the host it names ({host:?})"
        )));
    }
    Ok(url)
}

fn check_http_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid {
        name,
        reason: format!("not a URL ({e})"),
    })?;
    if matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && !url.contains(char::is_whitespace)
        && !url.contains('\\')
    {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: "expected an http:// or https:// URL".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(url: &str) -> Result<Destination, ConfigError> {
        let parsed = parse_http_url("base URL", url)?;
        Destination::of(&parsed).map_err(|reason| ConfigError::Invalid {
            name: "base URL",
            reason,
        })
    }

    fn build(url: &str) -> Result<TwilioProvider, ConfigError> {
        TwilioBuilder::new("AC0123456789abcdef0123456789abcdef")
            .auth_token("t")
            .from_number("+15005550006")
            .base_url(url)
            .build()
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://LOCALHOST:9",
            "http://[::1]:9/x",
            "http://127.3.4.5",
        ] {
            assert_eq!(destination(url), Ok(Destination::Loopback), "{url}");
            assert!(build(url).is_ok(), "{url}");
        }
        for url in [
            "https://api.twilio.com",
            "https://api.dublin.ie1.twilio.com",
            "https://API.Twilio.com:443",
        ] {
            assert_eq!(destination(url), Ok(Destination::Twilio), "{url}");
            assert!(build(url).is_ok(), "{url}");
        }
        for url in [
            "http://example.com",
            "http://127.0.0.1.evil.com",
            "http://10.0.0.1:80",
            "https://api.twilio.com.evil.example",
            "https://twilio.com.attacker.example",
            "https://nottwilio.com",
            "https://api.twilio.com:8443",
            "http://api.twilio.com",
        ] {
            assert!(
                matches!(
                    build(url),
                    Err(ConfigError::Invalid {
                        name: "base URL",
                        ..
                    })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_that_read_as_one_host_and_connect_to_another_are_refused() {
        for url in [
            // WHATWG parsers read the backslash as a slash: the host is 127.0.0.2 (or
            // attacker.example), not what follows the @.
            "http://127.0.0.2:8080\\@127.0.0.1:1",
            "https://attacker.example\\@api.twilio.com",
            "https://attacker.example\\.twilio.com",
            // User info of any kind.
            "https://api.twilio.com@attacker.example",
            "https://user:pass@api.twilio.com",
            "http://user@127.0.0.1:8080",
            "https://attacker.example%40api.twilio.com",
            // Percent-encoded or numeric hosts the parser rewrites.
            "http://%31%32%37.0.0.1:8080",
            "https://api%2etwilio.com",
            "http://0x7f.0.0.1:8080",
            "http://2130706433:8080",
            "http://127.1:8080",
            // A trailing dot, white space, other schemes, no host.
            "https://api.twilio.com.",
            "https://api.twilio.com. ",
            "https://api.twi lio.com",
            "ftp://127.0.0.1",
            "http://",
            "http:///x",
            "127.0.0.1:8080",
        ] {
            let err = build(url).expect_err(url);
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        name: "base URL",
                        ..
                    }
                ),
                "{url}: {err}"
            );
        }
        // With allow_any_base_url an https proxy host is fine, but never user info.
        let any = |url: &str| {
            TwilioBuilder::new("AC0123456789abcdef0123456789abcdef")
                .auth_token("t")
                .from_number("+15005550006")
                .allow_any_base_url()
                .base_url(url)
                .build()
        };
        assert!(any("https://twilio-proxy.example.org").is_ok());
        assert!(any("https://a.example\\@api.twilio.com").is_err());
        assert!(any("http://twilio-proxy.example.org").is_err());
    }

    #[test]
    fn a_proxy_only_for_https() {
        let with_proxy = |base: &str, proxy: &str| {
            TwilioBuilder::new("AC0123456789abcdef0123456789abcdef")
                .auth_token("t")
                .from_number("+15005550006")
                .base_url(base)
                .https_proxy(proxy)
                .build()
        };
        assert!(with_proxy("https://api.twilio.com", "http://proxy.example:3128").is_ok());
        assert!(matches!(
            with_proxy("http://127.0.0.1:9", "http://proxy.example:3128"),
            Err(ConfigError::Invalid {
                name: "https proxy",
                ..
            })
        ));
        assert!(with_proxy("https://api.twilio.com", "http://proxy.example\\@x:1").is_err());
    }
}
