//! Configuration: account, credentials, sender, and where they come from (the environment).

use std::fmt;

/// A secret (auth token, API key secret) that never prints.
///
/// `Debug` and `Display` both show `***`, so a secret cannot leak through a log line, an error
/// message or a `{:?}` of a struct that holds it.
///
/// ```
/// use sms_twilio::Secret;
/// let token = Secret::new("s3cr3t");
/// assert_eq!(format!("{token:?} {token}"), "*** ***");
/// assert_eq!(token.expose(), "s3cr3t");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it (an HTTP header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How requests authenticate (HTTP Basic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Account SID and auth token (Twilio recommends this for local testing only).
    AuthToken(Secret),
    /// An API key (`SK…`) and its secret: Twilio's recommended production choice.
    ApiKey {
        /// The key's SID, `SK` followed by 32 hex digits.
        sid: String,
        /// The key's secret.
        secret: Secret,
    },
}

/// A configuration that cannot work. Names the setting (or environment variable) at fault and
/// never contains a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required setting is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A setting is present but malformed.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting or variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Two settings exclude each other.
    #[error("conflicting settings: {0}")]
    Conflict(String),
    /// A scheduled send (`SendAt`) without a Messaging Service: Twilio would silently send
    /// at once, so it is refused.
    #[error(
        "scheduled sends (SendAt) require a Messaging Service SID (TWILIO_MESSAGING_SERVICE_SID)"
    )]
    ScheduleNeedsMessagingService,
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// Environment variable: the account SID (`AC…`).
pub const ENV_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
/// Environment variable: the auth token.
pub const ENV_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
/// Environment variable: an API key SID (`SK…`), used with [`ENV_API_SECRET`].
pub const ENV_API_KEY: &str = "TWILIO_API_KEY";
/// Environment variable: the API key's secret.
pub const ENV_API_SECRET: &str = "TWILIO_API_SECRET";
/// Environment variable: the sending number.
pub const ENV_FROM: &str = "TWILIO_FROM";
/// Environment variable: the Messaging Service SID (`MG…`).
pub const ENV_MESSAGING_SERVICE_SID: &str = "TWILIO_MESSAGING_SERVICE_SID";
/// Environment variable: a base URL replacing `https://api.twilio.com` (a local stand-in).
pub const ENV_BASE_URL: &str = "TWILIO_BASE_URL";

/// Environment variable: a proxy for the https requests to Twilio (`http://proxy:3128`). The
/// usual `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` are ignored: a proxy is used only when named
/// for Twilio.
pub const ENV_HTTPS_PROXY: &str = "TWILIO_HTTPS_PROXY";

/// What the environment says, before it becomes a builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvConfig {
    /// The account SID.
    pub account_sid: String,
    /// The credentials.
    pub credentials: Credentials,
    /// The sending number (`TWILIO_FROM`), when set.
    pub from: Option<String>,
    /// The Messaging Service (`TWILIO_MESSAGING_SERVICE_SID`), when set. With `from` too,
    /// Twilio sends from that number of the service's pool.
    pub messaging_service_sid: Option<String>,
    /// The base URL override, when set.
    pub base_url: Option<String>,
    /// The https proxy (`TWILIO_HTTPS_PROXY`), when set.
    pub https_proxy: Option<String>,
}

impl EnvConfig {
    /// Reads the `TWILIO_*` variables through `lookup` (pass `|k| std::env::var(k).ok()`).
    ///
    /// Empty values count as absent. At least one of `TWILIO_FROM` and
    /// `TWILIO_MESSAGING_SERVICE_SID` is required; with both, both are sent.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let account_sid = get(ENV_ACCOUNT_SID).ok_or(ConfigError::Missing(ENV_ACCOUNT_SID))?;
        validate_sid(ENV_ACCOUNT_SID, &account_sid, "AC")?;
        let credentials = match (get(ENV_API_KEY), get(ENV_API_SECRET), get(ENV_AUTH_TOKEN)) {
            (Some(sid), Some(secret), _) => {
                validate_sid(ENV_API_KEY, &sid, "SK")?;
                Credentials::ApiKey {
                    sid,
                    secret: Secret::new(secret),
                }
            }
            (Some(_), None, _) => return Err(ConfigError::Missing(ENV_API_SECRET)),
            (None, Some(_), _) => return Err(ConfigError::Missing(ENV_API_KEY)),
            (None, None, Some(token)) => Credentials::AuthToken(Secret::new(token)),
            (None, None, None) => return Err(ConfigError::Missing(ENV_AUTH_TOKEN)),
        };
        let messaging_service_sid = get(ENV_MESSAGING_SERVICE_SID);
        if let Some(sid) = &messaging_service_sid {
            validate_sid(ENV_MESSAGING_SERVICE_SID, sid, "MG")?;
        }
        let from = get(ENV_FROM);
        if from.is_none() && messaging_service_sid.is_none() {
            return Err(ConfigError::Missing(
                "TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID",
            ));
        }
        Ok(Self {
            account_sid,
            credentials,
            from,
            messaging_service_sid,
            base_url: get(ENV_BASE_URL),
            https_proxy: get(ENV_HTTPS_PROXY),
        })
    }
}

/// Checks a Twilio SID: a two-letter prefix and 32 hex digits (`^AC[0-9a-fA-F]{32}$`).
pub(crate) fn validate_sid(name: &'static str, sid: &str, prefix: &str) -> Result<(), ConfigError> {
    let ok = sid.len() == 34
        && sid.starts_with(prefix)
        && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("expected {prefix} followed by 32 hex digits"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn names_the_missing_variable() {
        assert_eq!(
            EnvConfig::from_lookup(env(&[])),
            Err(ConfigError::Missing(ENV_ACCOUNT_SID))
        );
        assert_eq!(
            EnvConfig::from_lookup(env(&[(ENV_ACCOUNT_SID, AC)])),
            Err(ConfigError::Missing(ENV_AUTH_TOKEN))
        );
        let err = EnvConfig::from_lookup(env(&[(ENV_ACCOUNT_SID, AC), (ENV_AUTH_TOKEN, "t")]))
            .unwrap_err();
        assert!(err.to_string().contains("TWILIO_FROM"));
        let err = EnvConfig::from_lookup(env(&[
            (ENV_ACCOUNT_SID, AC),
            (ENV_API_KEY, "SK0123456789abcdef0123456789abcdef"),
            (ENV_FROM, "+15005550006"),
        ]))
        .unwrap_err();
        assert_eq!(err, ConfigError::Missing(ENV_API_SECRET));
    }

    #[test]
    fn api_key_wins_over_auth_token_and_secrets_never_print() {
        let cfg = EnvConfig::from_lookup(env(&[
            (ENV_ACCOUNT_SID, AC),
            (ENV_AUTH_TOKEN, "tok-en"),
            (ENV_API_KEY, "SK0123456789abcdef0123456789abcdef"),
            (ENV_API_SECRET, "sec-ret"),
            (
                ENV_MESSAGING_SERVICE_SID,
                "MG0123456789abcdef0123456789abcdef",
            ),
            (ENV_BASE_URL, "http://127.0.0.1:9"),
        ]))
        .expect("complete");
        assert!(matches!(cfg.credentials, Credentials::ApiKey { .. }));
        assert!(cfg.messaging_service_sid.is_some() && cfg.from.is_none());
        assert_eq!(cfg.base_url.as_deref(), Some("http://127.0.0.1:9"));
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("sec-ret") && !shown.contains("tok-en"),
            "{shown}"
        );
    }

    #[test]
    fn malformed_sids_are_rejected() {
        let err = EnvConfig::from_lookup(env(&[(ENV_ACCOUNT_SID, "AC123")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: ENV_ACCOUNT_SID,
                ..
            }
        ));
        assert!(validate_sid("x", "MG0123456789abcdef0123456789abcdeg", "MG").is_err());
        assert!(validate_sid("x", "MG0123456789ABCDEF0123456789abcdef", "MG").is_ok());
    }
}
