//! `TwilioProvider`: sends through the Messages API, reads the balance, lists past sends.

use std::time::Duration;

use async_trait::async_trait;
use sms_core::{
    Accepted, Balance, History, OutboundSms, PhoneNumber, Provider, SendError, SentMessage,
    Timestamp,
};

use crate::builder::TwilioBuilder;
use crate::config::ConfigError;
use crate::error::RequestKind;
use crate::form::Form;
use crate::http::Http;
use crate::model::{BalanceResource, MessagePage, MessageResource};

/// Twilio accepts `SendAt` from 15 minutes to 35 days ahead.
const SEND_AT_MIN_AHEAD_MS: i64 = 15 * 60 * 1000;
const SEND_AT_MAX_AHEAD_MS: i64 = 35 * 24 * 60 * 60 * 1000;
/// Twilio's limit on a (concatenated) body, the core's own figure.
const MAX_BODY_CHARS: usize = sms_core::preview::MAX_BODY_CHARACTERS;
/// Messages per list page (Twilio allows up to 1000).
const LIST_PAGE_SIZE: u32 = 100;

/// Per-send settings beyond the provider's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Schedule this text (`SendAt`); needs a Messaging Service, 15 min … 35 days ahead.
    pub send_at: Option<Timestamp>,
    /// Status callback URL for this text, replacing the provider's.
    pub status_callback: Option<String>,
}

/// The settings a send uses, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct SendSettings {
    pub account_sid: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub status_callback: Option<String>,
    pub validity_period: Option<u32>,
    pub smart_encoded: Option<bool>,
    pub send_at: Option<Timestamp>,
    pub lookup_clock_skew: Duration,
    pub lookup_max_pages: u32,
}

/// The real provider: Twilio's Messages API over HTTPS (reqwest + rustls).
///
/// Safe to share between tasks (`Arc<TwilioProvider>`); the HTTP connection pool is reused.
/// Its `Debug` never shows the auth token or API secret.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use sms_core::{OutboundSms, PhoneNumber, Provider};
/// use sms_twilio::TwilioProvider;
/// let provider = TwilioProvider::from_env(|k| std::env::var(k).ok())?;
/// let to = PhoneNumber::from_e164("+15005550006")?;
/// let accepted = provider.send(&OutboundSms::new(to, "Class moved to Room 4")).await?;
/// println!("{}", accepted.provider_id);
/// # Ok(()) }
/// ```
pub struct TwilioProvider {
    http: Http,
    settings: SendSettings,
}

impl std::fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioProvider")
            .field("http", &self.http)
            .field("settings", &self.settings)
            .finish()
    }
}

impl TwilioProvider {
    /// A builder for the account `account_sid`.
    pub fn builder(account_sid: impl Into<String>) -> TwilioBuilder {
        TwilioBuilder::new(account_sid)
    }

    /// A provider configured from the `TWILIO_*` environment variables read through `lookup`
    /// (see [`TwilioBuilder::from_env`]); the error names the missing or malformed variable.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        TwilioBuilder::from_env(lookup)?.build()
    }

    pub(crate) fn new(http: Http, settings: SendSettings) -> Self {
        Self { http, settings }
    }

    /// The account SID.
    pub fn account_sid(&self) -> &str {
        &self.settings.account_sid
    }

    /// The form `send_with` posts for `sms` (exposed so a host can log or check it).
    pub fn create_message_form(
        &self,
        sms: &OutboundSms,
        options: &SendOptions,
    ) -> Result<Form, SendError> {
        let s = &self.settings;
        let send_at = options.send_at.or(s.send_at);
        // Twilio refuses these (21602, 21617) without creating anything; saying so here saves
        // a round trip and keeps the reason precise. Both are about this record's text, so
        // the record fails and the run goes on. The length is counted as the core's preview
        // counts it (UTF-16 code units, the larger of the plausible counts: an emoji is two).
        let length = sms.body.encode_utf16().count();
        if length == 0 || length > MAX_BODY_CHARS {
            return Err(SendError::BadRecipient {
                code: Some(if length == 0 { 21602 } else { 21617 }),
                message: format!(
                    "the body must be 1 to {MAX_BODY_CHARS} characters (UTF-16 code units), not {length}"
                ),
            });
        }
        let mut form = Form::new();
        form.push("To", sms.to.to_string());
        form.push_opt("From", s.from.clone());
        form.push_opt("MessagingServiceSid", s.messaging_service_sid.clone());
        form.push("Body", sms.body.clone());
        form.push_opt(
            "StatusCallback",
            options
                .status_callback
                .clone()
                .or_else(|| s.status_callback.clone()),
        );
        form.push_opt("ValidityPeriod", s.validity_period.map(|p| p.to_string()));
        if let Some(on) = s.smart_encoded {
            form.push_bool("SmartEncoded", on);
        }
        if let Some(at) = send_at {
            if s.messaging_service_sid.is_none() {
                return Err(SendError::Configuration {
                    code: None,
                    message: "scheduled sends (SendAt) require a Messaging Service SID; \
                              refusing rather than sending now"
                        .into(),
                });
            }
            form.push("ScheduleType", "fixed");
            form.push("SendAt", at.to_string());
        }
        Ok(form)
    }

    /// Sends one text with per-send options (a scheduled time, another status callback).
    pub async fn send_with(
        &self,
        sms: &OutboundSms,
        options: &SendOptions,
    ) -> Result<Accepted, SendError> {
        let form = self.create_message_form(sms, options)?;
        if let Some(at) = options.send_at.or(self.settings.send_at) {
            check_send_window(at, Timestamp::now())?;
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.http.base_url, self.settings.account_sid
        );
        let body = form.encode();
        let answer = self
            .http
            .execute(RequestKind::Create, |client| {
                client
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await?;
        // A 2xx means Twilio created the message; if its answer is unreadable the SID is lost
        // and only a reconciliation can find it.
        serde_json::from_slice::<MessageResource>(&answer.body)
            .ok()
            .and_then(|m| m.to_accepted())
            .ok_or_else(|| SendError::Unknown {
                message: format!(
                    "Twilio accepted the message but its answer has no readable SID ({} bytes)",
                    answer.body.len()
                ),
            })
    }

    /// The URL of the next list page: a path on the API host, never anywhere else (a next-page
    /// link must not redirect the credentials). Anything else is an error, since skipping the
    /// rest of the history would read as "not sent".
    fn next_page_url(&self, next: &str) -> Result<String, String> {
        let refused = || format!("the next-page link {next:?} is not a path on the API host");
        if !next.starts_with('/') || next.starts_with("//") || next.contains('\\') {
            return Err(refused());
        }
        let joined = format!("{}{next}", self.http.base_url);
        let (base, url) = (
            url::Url::parse(&self.http.base_url),
            url::Url::parse(&joined),
        );
        match (base, url) {
            (Ok(base), Ok(url)) if base.origin() == url.origin() => Ok(joined),
            _ => Err(refused()),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, SendError> {
        self.get_json_dated(url).await.map(|(value, _)| value)
    }

    /// [`Self::get_json`] with the answer's `Date` header (Twilio's clock).
    async fn get_json_dated<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(T, Option<Timestamp>), SendError> {
        let answer = self
            .http
            .execute(RequestKind::Read, |client| {
                client
                    .get(url)
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        let value = serde_json::from_slice(&answer.body).map_err(|e| SendError::TryLater {
            code: None,
            message: format!("unreadable answer from Twilio: {e}"),
        })?;
        Ok((value, answer.date))
    }
}

/// Refuses a `SendAt` outside Twilio's window instead of letting Twilio reject it later.
fn check_send_window(at: Timestamp, now: Timestamp) -> Result<(), SendError> {
    let ahead = at.unix_ms() - now.unix_ms();
    if (SEND_AT_MIN_AHEAD_MS..=SEND_AT_MAX_AHEAD_MS).contains(&ahead) {
        Ok(())
    } else {
        Err(SendError::Configuration {
            code: None,
            message: format!("SendAt {at} must be 15 minutes to 35 days ahead of now ({now})"),
        })
    }
}

#[async_trait]
impl Provider for TwilioProvider {
    fn name(&self) -> &str {
        "twilio"
    }

    /// The account, API host and sender: a campaign resumed with another of these would
    /// reconcile against a history that holds none of its messages. No secret is included.
    fn identity(&self) -> String {
        let sender = match (&self.settings.messaging_service_sid, &self.settings.from) {
            (Some(service), _) => format!("messaging service {service}"),
            (None, Some(from)) => format!("from {from}"),
            (None, None) => "no sender".to_owned(),
        };
        format!(
            "twilio account {} at {}, {sender}",
            self.settings.account_sid,
            self.http.base_url.trim_end_matches('/')
        )
    }

    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        self.send_with(sms, &SendOptions::default()).await
    }

    async fn balance(&self) -> Result<Option<Balance>, SendError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Balance.json",
            self.http.base_url, self.settings.account_sid
        );
        let balance: BalanceResource = self.get_json(&url).await?;
        // Subaccounts carry no balance: "unknown", not zero.
        Ok(balance.balance.map(|amount| Balance {
            amount,
            currency: balance.currency.unwrap_or_default(),
        }))
    }

    async fn lookup_sent(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<Vec<SentMessage>, SendError> {
        self.lookup_history(to, since).await.map(|h| h.messages)
    }

    /// The history, with Twilio's clock from the `Date` header of the first page: the
    /// dispatcher corrects for the offset between the two clocks, so a Twilio clock minutes
    /// behind ours cannot hide a message created after the attempt.
    async fn lookup_history(
        &self,
        to: PhoneNumber,
        since: Timestamp,
    ) -> Result<History, SendError> {
        let skew_ms =
            i64::try_from(self.settings.lookup_clock_skew.as_millis()).unwrap_or(i64::MAX);
        let from = Timestamp::from_unix_ms(since.unix_ms().saturating_sub(skew_ms));
        // Listed by `To` only, filtered here on `date_created`: Twilio's `DateSent>` filter
        // matches `date_sent`, which stays null while a message is queued, so it would hide
        // exactly the message a crash left in flight, and the dispatcher would resend it.
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &to.to_string())
            .append_pair("PageSize", &LIST_PAGE_SIZE.to_string())
            .finish();
        let mut url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json?{query}",
            self.http.base_url, self.settings.account_sid
        );
        let cannot_tell = |why: String| SendError::TryLater {
            code: None,
            message: format!("cannot tell what was sent to {to}: {why}"),
        };
        let max_pages = self.settings.lookup_max_pages.max(1);
        let mut found = Vec::new();
        let mut pages = 0;
        let mut provider_now = None;
        loop {
            if pages == max_pages {
                // The limit hit before the history reached `since`: a partial history must
                // never read as "not sent".
                return Err(cannot_tell(format!(
                    "its message history since {from} spans more than {max_pages} pages"
                )));
            }
            pages += 1;
            let (page, date): (MessagePage, _) = self
                .get_json_dated(&url)
                .await
                .map_err(|e| cannot_tell(format!("a history page is unreadable: {e}")))?;
            provider_now = provider_now.or(date);
            // The list is newest first: once a page holds a message older than `from`, the
            // pages after it are older still and cannot hold the message being looked for.
            let mut reached_from = false;
            for m in &page.messages {
                match m.created_at() {
                    // Any message dates the page, a reply as well as a send.
                    Some(at) if at < from => reached_from = true,
                    _ if m.is_outbound() => found.push(m.to_sent_message(to).ok_or_else(|| {
                        cannot_tell("a message in the window has no SID".to_owned())
                    })?),
                    _ => {}
                }
            }
            match page.next_page_uri.as_deref() {
                None => break,
                Some(_) if reached_from => break,
                Some(next) => url = self.next_page_url(next).map_err(cannot_tell)?,
            }
        }
        found.sort_by_key(|m| std::cmp::Reverse(m.created_at));
        Ok(History {
            messages: found,
            provider_now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_is_15_minutes_to_35_days() {
        let now = Timestamp::from_unix_ms(1_000_000_000_000);
        let at = |min: i64| Timestamp::from_unix_ms(now.unix_ms() + min * 60_000);
        assert!(check_send_window(at(15), now).is_ok());
        assert!(check_send_window(at(35 * 24 * 60), now).is_ok());
        assert!(check_send_window(at(14), now).is_err());
        assert!(check_send_window(at(35 * 24 * 60 + 1), now).is_err());
    }
}
