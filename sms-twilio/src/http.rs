//! One HTTP exchange with Twilio, retried only when repeating it cannot do anything twice.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use sms_core::SendError;

use crate::config::{ConfigError, Secret};
use crate::error::{ApiError, RequestKind, classify_error, is_retryable_status};
use crate::retry::{RetryPolicy, parse_retry_after};

/// A successful (2xx) answer's raw body, and Twilio's clock when it answered.
pub(crate) struct Answer {
    pub body: Vec<u8>,
    /// The `Date` header: reconciliation measures how far Twilio's clock is from ours.
    pub date: Option<sms_core::Timestamp>,
}

/// The HTTP side of the provider: client, base URL, Basic credentials, retry policy.
pub(crate) struct Http {
    client: reqwest::Client,
    pub base_url: String,
    user: String,
    secret: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base_url", &self.base_url)
            .field("user", &self.user)
            .field("secret", &self.secret)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Http {
    pub fn new(
        base_url: String,
        user: String,
        secret: Secret,
        retry: RetryPolicy,
        (connect_timeout, timeout): (Duration, Duration),
        https_proxy: Option<String>,
    ) -> Result<Self, ConfigError> {
        // No proxy from the environment, ever: `HTTP_PROXY` would receive a local stand-in's
        // Basic credentials in clear text. A proxy is used only when the configuration names
        // one, and the builder allows that only for https (a CONNECT tunnel: the proxy sees
        // the host name, never the credentials).
        let proxy = match https_proxy {
            Some(proxy) => {
                Some(
                    reqwest::Proxy::https(&proxy).map_err(|e| ConfigError::Invalid {
                        name: "https proxy",
                        reason: error_chain(&e),
                    })?,
                )
            }
            None => None,
        };
        let mut client = reqwest::Client::builder().no_proxy();
        if let Some(proxy) = proxy {
            client = client.proxy(proxy);
        }
        let client = client
            .tls_backend_preconfigured(tls_config(base_url.starts_with("http://"))?)
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("sms-twilio/", env!("CARGO_PKG_VERSION")))
            // Twilio's API does not redirect; following one could replay a create elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::HttpClient(error_chain(&e)))?;
        Ok(Self {
            client,
            base_url,
            user,
            secret,
            retry,
        })
    }

    /// Sends the request `build` makes (once per attempt), retrying what is safe to retry.
    pub async fn execute(
        &self,
        kind: RequestKind,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, SendError> {
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= attempts;
            let request = build(&self.client).basic_auth(&self.user, Some(self.secret.expose()));
            let (error, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
                    let date = response
                        .headers()
                        .get(reqwest::header::DATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(sms_core::Timestamp::parse);
                    let body = match response.bytes().await {
                        Ok(body) => body.to_vec(),
                        Err(e) if (200..300).contains(&status) => {
                            return Err(body_lost(kind, &e));
                        }
                        // An error answer whose body broke off still has its status.
                        Err(_) => Vec::new(),
                    };
                    tracing::debug!(?kind, status, attempt, "Twilio answered");
                    if (200..300).contains(&status) {
                        return Ok(Answer { body, date });
                    }
                    let error = classify_error(&ApiError::parse(status, &body), retry_after, kind);
                    if !is_retryable_status(status, kind) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(e) => {
                    let error = transport_error(&e, kind);
                    if !error.is_retryable() {
                        return Err(error);
                    }
                    (error, None)
                }
            };
            if last {
                return Err(error);
            }
            match self.retry.delay_for(attempt - 1, retry_after) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(error),
            }
        }
    }
}

/// The class of a request that got no HTTP answer.
fn transport_error(e: &reqwest::Error, kind: RequestKind) -> SendError {
    let message = error_chain(e);
    if e.is_builder() {
        return SendError::Configuration {
            code: None,
            message,
        };
    }
    // A connect failure (refused, DNS, TLS handshake, connect timeout) happens before a byte
    // of the request leaves: nothing can have been created.
    if e.is_connect() || kind == RequestKind::Read {
        return SendError::TryLater {
            code: None,
            message,
        };
    }
    // The request may have been written: a timeout waiting for the answer, a reset, a closed
    // connection. Twilio may have created the message.
    SendError::Unknown { message }
}

/// A 2xx whose body could not be read: for a create, the message exists but its SID is lost.
fn body_lost(kind: RequestKind, e: &reqwest::Error) -> SendError {
    match kind {
        RequestKind::Create => SendError::Unknown {
            message: format!(
                "Twilio accepted the request but its answer broke off: {}",
                error_chain(e)
            ),
        },
        RequestKind::Read => SendError::TryLater {
            code: None,
            message: error_chain(e),
        },
    }
}

/// An error and its causes on one line (reqwest's own text hides the cause).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// rustls with the ring provider and the platform's roots.
///
/// Built here rather than through reqwest's default so the crate never needs a process-wide
/// crypto provider installed. When the platform has no usable roots and the base URL is plain
/// HTTP (a local stand-in), an empty root store keeps the client usable; https then fails at
/// connect time with a clear TLS error.
fn tls_config(plain_http: bool) -> Result<rustls::ClientConfig, ConfigError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
    match builder.clone().with_platform_verifier() {
        Ok(with_verifier) => Ok(with_verifier.with_no_client_auth()),
        Err(_) if plain_http => Ok(builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()),
        Err(e) => Err(ConfigError::HttpClient(format!(
            "no TLS root certificates: {e}"
        ))),
    }
}
