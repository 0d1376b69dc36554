//! Twilio for the SMS library: the real [`sms_core::Provider`] over Twilio's Messages API, and
//! the verified handling of what Twilio posts back (inbound replies, delivery statuses).
//!
//! A host's webhook handler hands over the URL Twilio requested, the form fields and the
//! `X-Twilio-Signature` header; a forged request is refused before anything is read:
//!
//! ```
//! use sms_core::DeliveryStatus;
//! use sms_twilio::{SignatureValidator, compute_signature, form_fields, handle_status_callback};
//!
//! let validator = SignatureValidator::new("the account's auth token");
//! let url = "https://sms.example.org/twilio/status";
//! let fields = form_fields(&[("MessageSid", "SM0123"), ("MessageStatus", "delivered")]);
//! // What Twilio puts in the header (computed here; a real request carries it).
//! let signature = compute_signature("the account's auth token", url, &fields);
//!
//! let update = handle_status_callback(&validator, url, &fields, Some(&signature)).unwrap();
//! assert_eq!(update.status, DeliveryStatus::Delivered);
//! assert!(handle_status_callback(&validator, url, &fields, Some("forged")).is_err());
//! ```
//!
//! Sending needs an account (`no_run` here); `examples/webhooks.rs` is a whole axum
//! application (`cargo run -p sms-twilio --example webhooks -- --self-test`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sms_core::{OutboundSms, PhoneNumber, Provider};
//! use sms_twilio::TwilioProvider;
//!
//! // TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET),
//! // TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID, optional TWILIO_BASE_URL.
//! let provider = TwilioProvider::from_env(|k| std::env::var(k).ok())?;
//! let to = PhoneNumber::from_e164("+15005550006")?;
//! let accepted = provider.send(&OutboundSms::new(to, "Class moved to Room 4")).await?;
//! println!("sent as {}", accepted.provider_id);
//! # Ok(()) }
//! ```
//!
//! | piece | what it does |
//! |---|---|
//! | [`TwilioProvider`] / [`TwilioBuilder`] | send, balance, lookup of past sends; retries only what cannot send twice |
//! | [`SignatureValidator`] | `X-Twilio-Signature` for form and JSON webhooks |
//! | [`InboundHandler`] | inbound replies: classify, record STOP/START durably, TwiML to answer |
//! | [`handle_status_callback`] / [`StatusUpdate`] | delivery statuses for the journal |
//!
//! Webhooks are framework-free: the host passes the URL Twilio requested (its public URL,
//! not the one behind a proxy), the decoded form fields, and the signature header.

#![warn(missing_docs)]

mod builder;
mod config;
mod error;
mod form;
mod http;
mod inbound;
mod model;
mod provider;
mod retry;
pub mod signature;
mod status;
mod webhook;

pub use builder::{
    DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, MIN_RECONCILE_WAIT_S,
    TwilioBuilder, is_local_stand_in,
};
pub use config::{
    ConfigError, Credentials, ENV_ACCOUNT_SID, ENV_API_KEY, ENV_API_SECRET, ENV_AUTH_TOKEN,
    ENV_BASE_URL, ENV_FROM, ENV_HTTPS_PROXY, ENV_MESSAGING_SERVICE_SID, EnvConfig, Secret,
};
pub use error::{
    ApiError, BAD_RECIPIENT_CODES, OPTED_OUT_CODE, RequestKind, STOP_THE_RUN_CODES, classify_error,
};
pub use form::{Form, form_fields, parse_form};
pub use inbound::{
    EMPTY_TWIML, InboundHandler, InboundMessage, InboundOutcome, ReplyConfig, twiml_message,
};
pub use model::{BalanceResource, MessagePage, MessageResource};
pub use provider::{SendOptions, TwilioProvider};
pub use retry::{RetryPolicy, parse_retry_after};
pub use signature::{SIGNATURE_HEADER, SignatureError, SignatureValidator, compute_signature};
pub use status::{StatusUpdate, handle_status_callback};
pub use webhook::WebhookError;
