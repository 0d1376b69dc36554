//! Inbound replies: verify, classify (STOP / START / other), record the opt-out durably, and
//! say what to answer.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sms_core::keywords::classify_with;
use sms_core::{
    ChangeSource, Classification, KeywordClass, OptOutAction, OptOutChange, OptOutPolicy,
    OptOutStore, PhoneNumber, Timestamp,
};

use crate::form::parse_form;
use crate::signature::SignatureValidator;
use crate::webhook::{Fields, WebhookError};

/// The answer that sends nothing back.
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// An inbound text as Twilio posts it (the fields this library uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Twilio's id of the message (`SM…`).
    pub message_sid: String,
    /// The account.
    pub account_sid: Option<String>,
    /// The Messaging Service the text came in through.
    pub messaging_service_sid: Option<String>,
    /// Who wrote (E.164 for SMS).
    pub from: String,
    /// Our number.
    pub to: String,
    /// The text (may be empty).
    pub body: String,
    /// Segments the reply used (it costs units); `None` when Twilio did not say.
    pub num_segments: Option<u32>,
    /// Media attached.
    pub num_media: Option<u32>,
    /// Twilio's own reading when Advanced Opt-Out handled it: `STOP`, `START` or `HELP`.
    pub opt_out_type: Option<String>,
}

impl InboundMessage {
    /// Reads the webhook's fields (already authenticated). Unknown fields are ignored.
    pub fn parse(params: &[(String, String)]) -> Result<Self, WebhookError> {
        let fields = Fields(params);
        Ok(Self {
            message_sid: fields.required("MessageSid", &["SmsMessageSid", "SmsSid"])?,
            account_sid: fields.any(&["AccountSid"]),
            messaging_service_sid: fields.any(&["MessagingServiceSid"]),
            from: fields.required("From", &[])?,
            to: fields.required("To", &[])?,
            body: fields.get("Body").unwrap_or_default().to_owned(),
            num_segments: fields.number("NumSegments")?,
            num_media: fields.number("NumMedia")?,
            opt_out_type: fields.any(&["OptOutType"]).map(|t| t.to_ascii_uppercase()),
        })
    }

    /// What the text means by the default policy ([`OptOutPolicy::Fcc`]): see
    /// [`InboundMessage::classify_with`].
    pub fn classify(&self) -> Classification {
        self.classify_with(OptOutPolicy::default())
    }

    /// What the text means: Twilio's `OptOutType` when it sent one (it knows the keywords
    /// configured in Advanced Opt-Out), else the core's keyword rules under `policy`.
    pub fn classify_with(&self, policy: OptOutPolicy) -> Classification {
        let local = classify_with(&self.body, policy);
        let class = match self.opt_out_type.as_deref() {
            Some("STOP") => KeywordClass::OptOut,
            Some("START") => KeywordClass::OptIn,
            Some("HELP") => KeywordClass::Help,
            _ => return local,
        };
        Classification {
            class,
            keyword: if local.class == class {
                local.keyword
            } else {
                self.opt_out_type.clone()
            },
            likely_revocation: false,
            needs_review: false,
        }
    }
}

/// Confirmation texts answered to STOP and START. Off by default: Twilio already answers
/// keywords on long codes, toll-free numbers and Messaging Services. When Twilio's
/// `OptOutType` shows it handled the keyword, no confirmation is sent even if configured, so
/// the person never gets two. An opt-out read from a sentence ("please stop") gets the same
/// one confirmation when configured (Twilio answers keywords only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyConfig {
    /// Answer to an opt-out.
    pub stop_confirmation: Option<String>,
    /// Answer to an opt-in.
    pub start_confirmation: Option<String>,
}

/// What an inbound text did and what to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundOutcome {
    /// The text.
    pub message: InboundMessage,
    /// What it means.
    pub classification: Classification,
    /// The opt-out change recorded (already durable), for STOP and START only.
    pub change: Option<OptOutChange>,
    /// The confirmation text sent back, if any.
    pub reply: Option<String>,
    /// The TwiML to answer with; `None` means answer [`EMPTY_TWIML`] (or any 2xx).
    pub twiml: Option<String>,
    /// Units the inbound text used (its `NumSegments`, 1 when Twilio did not say).
    pub segments: u32,
}

impl InboundOutcome {
    /// The body of the HTTP answer (`text/xml`).
    pub fn response_body(&self) -> &str {
        self.twiml.as_deref().unwrap_or(EMPTY_TWIML)
    }

    /// The reply as a store keeps it (`sms replies` lists them), received at `received_at`:
    /// flagged for review when the opt-out was read from a sentence or it looks like a request
    /// to stop that was not acted on.
    pub fn stored_reply(&self, received_at: sms_core::Timestamp) -> sms_core::StoredReply {
        let class = &self.classification;
        sms_core::StoredReply {
            message_sid: self.message.message_sid.clone(),
            from: self.message.from.clone(),
            to: self.message.to.clone(),
            body: self.message.body.clone(),
            segments: self.segments,
            class: class.class,
            keyword: class.keyword.clone(),
            review: class.needs_review || class.likely_revocation,
            received_at,
        }
    }
}

/// Handles inbound-message webhooks.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use sms_core::{InMemoryOptOutStore, KeywordClass, OptOutState, OptOutStore, PhoneNumber, Timestamp};
/// use sms_twilio::{InboundHandler, SignatureValidator, compute_signature};
///
/// let store = Arc::new(InMemoryOptOutStore::new());
/// let handler = InboundHandler::new(SignatureValidator::new("token"), store.clone());
/// let url = "https://example.com/twilio/sms";
/// let fields = sms_twilio::form_fields(&[("MessageSid", "SM1"), ("From", "+14155552671"),
///     ("To", "+15005550006"), ("Body", "Stop")]);
/// let signature = compute_signature("token", url, &fields);
/// let now = Timestamp::from_unix_ms(1_764_000_000_000);
/// let outcome = handler.handle(url, &fields, Some(&signature), now).await.unwrap();
/// assert_eq!(outcome.classification.class, KeywordClass::OptOut);
/// let number = PhoneNumber::from_e164("+14155552671").unwrap();
/// assert_eq!(store.state(number).await.unwrap(), OptOutState::OptedOut { since: now });
/// assert_eq!(outcome.response_body(), sms_twilio::EMPTY_TWIML);
/// # });
/// ```
pub struct InboundHandler {
    validator: SignatureValidator,
    store: Arc<dyn OptOutStore>,
    replies: ReplyConfig,
    policy: OptOutPolicy,
}

impl std::fmt::Debug for InboundHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundHandler")
            .field("validator", &self.validator)
            .field("replies", &self.replies)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl InboundHandler {
    /// A handler verifying with `validator` and recording opt-outs in `store`.
    pub fn new(validator: SignatureValidator, store: Arc<dyn OptOutStore>) -> Self {
        Self {
            validator,
            store,
            replies: ReplyConfig::default(),
            policy: OptOutPolicy::default(),
        }
    }

    /// Reads replies by `policy`: [`OptOutPolicy::Fcc`] (the default) also records a short
    /// sentence holding an opt-out word ("please stop") as an opt-out, marked for review;
    /// [`OptOutPolicy::KeywordsOnly`] acts on keywords only.
    pub fn with_opt_out_policy(mut self, policy: OptOutPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sends these confirmations to STOP / START when Twilio did not already answer.
    pub fn with_replies(mut self, replies: ReplyConfig) -> Self {
        self.replies = replies;
        self
    }

    /// Handles a raw `application/x-www-form-urlencoded` body.
    pub async fn handle_form_body(
        &self,
        url: &str,
        body: &[u8],
        signature: Option<&str>,
        received_at: Timestamp,
    ) -> Result<InboundOutcome, WebhookError> {
        self.handle(url, &parse_form(body), signature, received_at)
            .await
    }

    /// Verifies the request, classifies the text, records a STOP/START durably (before this
    /// returns, so the answer never races the record), and returns what to answer.
    ///
    /// A repeated delivery of the same message (Twilio retries) records nothing new.
    pub async fn handle(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
        received_at: Timestamp,
    ) -> Result<InboundOutcome, WebhookError> {
        self.validator.validate(url, params, signature)?;
        self.process(params, received_at).await
    }

    /// Handles a webhook configured as GET: the fields are the URL's query string, which the
    /// signature covers as part of the URL.
    pub async fn handle_query(
        &self,
        url: &str,
        signature: Option<&str>,
        received_at: Timestamp,
    ) -> Result<InboundOutcome, WebhookError> {
        self.validator.validate(url, &[], signature)?;
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        self.process(&parse_form(query.as_bytes()), received_at)
            .await
    }

    /// Classifies, records and answers an authenticated inbound text.
    async fn process(
        &self,
        params: &[(String, String)],
        received_at: Timestamp,
    ) -> Result<InboundOutcome, WebhookError> {
        let message = InboundMessage::parse(params)?;
        let classification = message.classify_with(self.policy);
        let source = if classification.needs_review {
            ChangeSource::NaturalLanguage
        } else {
            ChangeSource::Inbound
        };
        let action = match classification.class {
            KeywordClass::OptOut => Some(OptOutAction::Stop),
            KeywordClass::OptIn => Some(OptOutAction::Start),
            // The product acts on STOP and START only; everything else is just returned.
            KeywordClass::Help | KeywordClass::Other => None,
        };
        let change = match action {
            Some(action) => Some(self.record(&message, action, source, received_at).await?),
            None => None,
        };
        let reply = match (action, &message.opt_out_type) {
            // Twilio's Advanced Opt-Out has answered already.
            (_, Some(_)) => None,
            (Some(OptOutAction::Stop), None) => self.replies.stop_confirmation.clone(),
            (Some(OptOutAction::Start), None) => self.replies.start_confirmation.clone(),
            (None, None) => None,
        };
        Ok(InboundOutcome {
            segments: message.num_segments.unwrap_or(1).max(1),
            twiml: reply.as_deref().map(twiml_message),
            reply,
            change,
            classification,
            message,
        })
    }

    async fn record(
        &self,
        message: &InboundMessage,
        action: OptOutAction,
        source: ChangeSource,
        at: Timestamp,
    ) -> Result<OptOutChange, WebhookError> {
        // A sender the phone metadata does not know (a new area code) still opted out: record
        // it by its E.164 shape, or a later metadata update would make the number textable.
        let number = PhoneNumber::from_e164(&message.from)
            .or_else(|e| PhoneNumber::from_e164_shape(&message.from).map_err(|_| e))
            .map_err(|e| WebhookError::InvalidField {
                name: "From",
                reason: e.to_string(),
            })?;
        let store_error = |e: sms_core::StoreError| WebhookError::Store(e.to_string());
        let history = self.store.history(number).await.map_err(store_error)?;
        if let Some(done) = history
            .into_iter()
            .find(|c| c.message_sid.as_deref() == Some(message.message_sid.as_str()))
        {
            return Ok(done);
        }
        let change = OptOutChange {
            number,
            action,
            at,
            source,
            message_sid: Some(message.message_sid.clone()),
            body: Some(message.body.clone()),
        };
        self.store
            .record(change.clone())
            .await
            .map_err(store_error)?;
        Ok(change)
    }
}

/// TwiML answering `text` with one message.
pub fn twiml_message(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escaped}</Message></Response>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str, opt_out_type: Option<&str>) -> InboundMessage {
        InboundMessage {
            message_sid: "SM1".into(),
            account_sid: None,
            messaging_service_sid: None,
            from: "+14155552671".into(),
            to: "+15005550006".into(),
            body: body.into(),
            num_segments: Some(1),
            num_media: None,
            opt_out_type: opt_out_type.map(str::to_owned),
        }
    }

    #[test]
    fn twilio_opt_out_type_wins_over_local_rules() {
        // A custom Advanced Opt-Out keyword the local list does not know.
        let c = msg("ARRET", Some("STOP")).classify();
        assert_eq!(c.class, KeywordClass::OptOut);
        assert_eq!(c.keyword.as_deref(), Some("STOP"));
        let c = msg("stop", Some("STOP")).classify();
        assert_eq!(c.keyword.as_deref(), Some("STOP"));
        assert_eq!(
            msg("Stop please", None)
                .classify_with(OptOutPolicy::KeywordsOnly)
                .class,
            KeywordClass::Other
        );
        let sentence = msg("Stop please", None).classify();
        assert_eq!(sentence.class, KeywordClass::OptOut);
        assert!(sentence.needs_review);
        // Twilio handled it as a keyword: no review needed.
        assert!(!msg("Stop please", Some("STOP")).classify().needs_review);
        assert_eq!(msg("unstop", None).classify().class, KeywordClass::OptIn);
        assert_eq!(
            msg("unstop", Some("WHATEVER")).classify().class,
            KeywordClass::OptIn
        );
    }

    const URL: &str = "https://example.com/twilio/sms";
    const TOKEN: &str = "token";

    fn handler(policy: OptOutPolicy) -> (InboundHandler, Arc<sms_core::InMemoryOptOutStore>) {
        let store = Arc::new(sms_core::InMemoryOptOutStore::new());
        let handler = InboundHandler::new(SignatureValidator::new(TOKEN), store.clone())
            .with_replies(ReplyConfig {
                stop_confirmation: Some("You are unsubscribed.".into()),
                start_confirmation: Some("You are subscribed again.".into()),
            })
            .with_opt_out_policy(policy);
        (handler, store)
    }

    async fn reply(
        handler: &InboundHandler,
        sid: &str,
        from: &str,
        body: &str,
    ) -> Result<InboundOutcome, WebhookError> {
        let fields = crate::form_fields(&[
            ("MessageSid", sid),
            ("From", from),
            ("To", "+15005550006"),
            ("Body", body),
        ]);
        let signature = crate::compute_signature(TOKEN, URL, &fields);
        handler
            .handle(
                URL,
                &fields,
                Some(&signature),
                Timestamp::from_unix_ms(1_000),
            )
            .await
    }

    #[tokio::test]
    async fn help_is_returned_and_records_nothing_not_even_a_confirmation() {
        let (handler, store) = handler(OptOutPolicy::Fcc);
        for (i, body) in ["HELP", "help?", "Info", "ＨＥＬＰ"]
            .into_iter()
            .enumerate()
        {
            let outcome = reply(&handler, &format!("SM{i}"), "+14155552671", body)
                .await
                .expect("valid");
            assert_eq!(outcome.classification.class, KeywordClass::Help, "{body}");
            assert_eq!(outcome.change, None);
            assert_eq!(outcome.reply, None);
            assert_eq!(outcome.response_body(), EMPTY_TWIML);
        }
        assert!(store.snapshot().await.expect("read").is_empty());
        let number = PhoneNumber::from_e164("+14155552671").expect("valid");
        assert!(store.history(number).await.expect("read").is_empty());
    }

    #[tokio::test]
    async fn a_short_sentence_is_recorded_for_review_under_the_fcc_policy_only() {
        let number = PhoneNumber::from_e164("+14155552671").expect("valid");
        let (fcc, store) = handler(OptOutPolicy::Fcc);
        let outcome = reply(&fcc, "SM1", "+14155552671", "please stop")
            .await
            .expect("valid");
        let change = outcome.change.as_ref().expect("recorded");
        assert_eq!(change.action, OptOutAction::Stop);
        assert_eq!(change.source, ChangeSource::NaturalLanguage);
        assert!(outcome.classification.needs_review);
        // One confirmation, as configured.
        assert_eq!(outcome.reply.as_deref(), Some("You are unsubscribed."));
        assert_eq!(outcome.response_body().matches("<Message>").count(), 1);
        assert!(matches!(
            store.state(number).await.expect("read"),
            sms_core::OptOutState::OptedOut { .. }
        ));

        let (strict, store) = handler(OptOutPolicy::KeywordsOnly);
        let outcome = reply(&strict, "SM1", "+14155552671", "please stop")
            .await
            .expect("valid");
        assert_eq!(outcome.change, None);
        assert!(outcome.classification.likely_revocation);
        assert_eq!(outcome.response_body(), EMPTY_TWIML);
        assert!(store.snapshot().await.expect("read").is_empty());

        // "opt out" is a keyword under both policies, recorded as an ordinary reply.
        let outcome = reply(&strict, "SM2", "+14155552671", "Opt-out")
            .await
            .expect("valid");
        let change = outcome.change.expect("recorded");
        assert_eq!(change.source, ChangeSource::Inbound);
        assert_eq!(outcome.classification.keyword.as_deref(), Some("OPTOUT"));
    }

    /// A STOP from a number today's metadata calls invalid (555 is no area code) is recorded,
    /// so a metadata update that makes the number valid cannot make it textable.
    #[tokio::test]
    async fn a_stop_from_an_e164_shaped_number_the_metadata_rejects_is_recorded() {
        let (handler, store) = handler(OptOutPolicy::Fcc);
        assert!(PhoneNumber::from_e164("+15551234567").is_err());
        let outcome = reply(&handler, "SM1", "+15551234567", "STOP")
            .await
            .expect("recorded, not refused");
        let change = outcome.change.expect("recorded");
        assert_eq!(change.number.to_string(), "+15551234567");
        assert_eq!(store.snapshot().await.expect("read").len(), 1);
        // Not E.164-shaped at all: still refused as a bad field.
        assert!(matches!(
            reply(&handler, "SM2", "2125550123", "STOP").await,
            Err(WebhookError::InvalidField { name: "From", .. })
        ));
    }

    #[test]
    fn twiml_escapes_text() {
        assert_eq!(
            twiml_message("You're out <3 & done"),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>You&apos;re out &lt;3 &amp; done</Message></Response>"#
        );
    }
}
