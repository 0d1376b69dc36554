//! `SmsClient`: one object, blocking methods, its own tokio runtime.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sms_core::dispatch::FleetOptions;
use sms_core::dispatch::{DispatchOptions, Dispatcher};
use sms_core::journal::{Campaign, CampaignId, CampaignSettings, RateLimit, load_report};
use sms_core::quiet::{QuietHours, QuietRule};
use sms_core::{
    CancellationToken, Journal as _, Money, OptOutPolicy, OptOutState, Org, PhoneNumber,
    PreviewSettings, ProgramYear, ProgramYears, Provider, Purpose, Region, SimulatedProvider,
    Template, Timestamp,
};
use sms_store::{DbTarget, Store as Db};
use sms_twilio::{InboundHandler, SignatureValidator, StatusUpdate};

use crate::error::SmsError;
use crate::host::{self, Busy, ChannelProgress, Event, HostOptOuts, OptOutStore, ProgressListener};
use crate::types::{
    CampaignReport, InboundResult, OptOutAction, OptOutChange, OptOutStatus, Preview,
    ProviderConfig, Recipient, SmsConfig, system_time,
};

use sms_twilio::{MIN_RECONCILE_WAIT_S, is_local_stand_in};

/// Stops a `send` or `resume` after the texts in flight; a later `resume` finishes the
/// campaign and texts nobody twice. Cancel from any thread.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelHandle {
    token: CancellationToken,
}

#[uniffi::export]
impl CancelHandle {
    /// A handle not cancelled yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Asks the run to stop after the texts in flight.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

type Store = dyn sms_core::OptOutStore;

/// The SMS library for a host: previews, sends, resumes, reports, replies and webhooks.
///
/// Every method blocks the calling thread until done, and may be called from several threads
/// at once. Callbacks (progress, a host's opt-out store, the log writer) are never called
/// while the library holds a lock; calling the client from inside one is refused with
/// `SmsError.Reentrant`.
#[derive(uniffi::Object)]
pub struct SmsClient {
    runtime: tokio::runtime::Runtime,
    /// Campaigns (and opt-outs, unless the host keeps them): a SQLite file, or PostgreSQL
    /// shared with other servers (sends then run as fleet workers).
    journal: Arc<Db>,
    opt_outs: Arc<Store>,
    provider: Arc<dyn Provider>,
    preview_settings: PreviewSettings,
    dispatch: DispatchOptions,
    campaign_settings: CampaignSettings,
    webhook_token: Option<String>,
    policy: OptOutPolicy,
    inbound_seq: AtomicU64,
}

impl std::fmt::Debug for SmsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsClient")
            .field("journal", &self.journal)
            .field("provider", &self.provider.name())
            .field("webhook_token", &self.webhook_token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

fn config_error(e: impl std::fmt::Display) -> SmsError {
    SmsError::Configuration(e.to_string())
}

fn settings(config: &SmsConfig) -> Result<PreviewSettings, SmsError> {
    let region = Region::parse(&config.region).ok_or_else(|| {
        config_error(format!(
            "region {:?} is not a known region code such as US",
            config.region
        ))
    })?;
    let price = config.price_per_segment.as_deref().unwrap_or("0.0083");
    let price_per_segment = Money::parse(price, &config.currency)
        .filter(|m| m.micros >= 0)
        .ok_or_else(|| {
            config_error(format!(
                "price_per_segment {price:?} is not a non-negative amount such as 0.0083"
            ))
        })?;
    let program_years = match (&config.program_year, &config.current_program_year) {
        (None, None) => {
            let year = ProgramYear::new("current").expect("not blank");
            ProgramYears {
                database: year.clone(),
                current: year,
            }
        }
        (Some(database), Some(current)) => ProgramYears {
            database: ProgramYear::new(database)
                .ok_or_else(|| config_error("program_year cannot be blank"))?,
            current: ProgramYear::new(current)
                .ok_or_else(|| config_error("current_program_year cannot be blank"))?,
        },
        _ => {
            return Err(config_error(
                "give both program_year and current_program_year (only the current program \
                 year may send)",
            ));
        }
    };
    Ok(PreviewSettings {
        region,
        smart_encoding: config.smart_encoding,
        price_per_segment,
        program_years,
        purpose: Purpose::Manual,
        quiet_hours: quiet_rule(config)?,
    })
}

/// The quiet hours `config` asks for; `None` when it ignores them.
fn quiet_rule(config: &SmsConfig) -> Result<Option<QuietRule>, SmsError> {
    if config.ignore_quiet_hours {
        return Ok(None);
    }
    let hours = QuietHours::parse(&config.quiet_hours).ok_or_else(|| {
        config_error(format!(
            "quiet_hours {:?}: give HH:MM-HH:MM, such as 08:00-21:00",
            config.quiet_hours
        ))
    })?;
    if sms_core::quiet::zone(&config.org_time_zone).is_none() {
        return Err(config_error(format!(
            "org_time_zone {:?}: unknown time zone (an IANA name such as America/New_York)",
            config.org_time_zone
        )));
    }
    Ok(Some(QuietRule {
        hours,
        org_time_zone: config.org_time_zone.trim().to_owned(),
    }))
}

fn provider(config: &ProviderConfig) -> Result<Arc<dyn Provider>, SmsError> {
    match config {
        // Seeded with the time so ids stay unique across clients sharing one database.
        ProviderConfig::Simulator => Ok(Arc::new(
            SimulatedProvider::new()
                .with_id_seed(u64::try_from(Timestamp::now().unix_ms()).unwrap_or_default()),
        )),
        ProviderConfig::Twilio {
            account_sid,
            auth_token,
            from_number,
            messaging_service_sid,
            base_url,
        } => {
            let mut builder =
                sms_twilio::TwilioBuilder::new(account_sid.clone()).auth_token(auth_token.clone());
            if let Some(from) = from_number {
                builder = builder.from_number(from.clone());
            }
            if let Some(sid) = messaging_service_sid {
                builder = builder.messaging_service_sid(sid.clone());
            }
            if let Some(url) = base_url {
                builder = builder.base_url(url.clone());
            }
            let provider = builder
                .build()
                .map_err(|e| config_error(format!("Twilio configuration: {e}")))?;
            Ok(Arc::new(provider))
        }
    }
}

fn campaign_id(name: &str) -> Result<CampaignId, SmsError> {
    CampaignId::new(name).ok_or_else(|| {
        SmsError::InvalidInput(format!(
            "campaign {name:?}: use letters, digits, '-' and '_' only"
        ))
    })
}

impl SmsClient {
    fn build(
        config: SmsConfig,
        host_store: Option<Arc<dyn OptOutStore>>,
    ) -> Result<Self, SmsError> {
        let preview_settings = settings(&config)?;
        if !(1..=256).contains(&config.concurrency) {
            return Err(config_error(format!(
                "concurrency {}: give 1 to 256",
                config.concurrency
            )));
        }
        let stand_in = matches!(
            &config.provider,
            ProviderConfig::Twilio { base_url: Some(url), .. } if is_local_stand_in(url)
        );
        if config.reconcile_wait_seconds < MIN_RECONCILE_WAIT_S && !stand_in {
            return Err(config_error(format!(
                "reconcile_wait_seconds {}: give at least {MIN_RECONCILE_WAIT_S}. A provider may \
                 list a message some seconds after accepting it, so a shorter silence does not \
                 prove a send in doubt failed, and resending it would text the person twice \
                 (shorter waits are allowed only with a Twilio base_url on 127.0.0.1)",
                config.reconcile_wait_seconds
            )));
        }
        let rate = match config.rate_per_second {
            None => RateLimit::default(),
            Some(0.0) => RateLimit::Unlimited,
            Some(r) if r.is_finite() && r >= 0.001 => {
                RateLimit::MessagesPerSecond { per_second: r }
            }
            Some(r) => {
                return Err(config_error(format!(
                    "rate_per_second {r}: give at least 0.001, or 0 for no limit"
                )));
            }
        };
        if config.database.trim().is_empty() {
            return Err(config_error(
                "database: give the path of the SQLite file, or a postgres:// URL",
            ));
        }
        let target = DbTarget::parse(&config.database).map_err(config_error)?;
        let lower = config.database.to_ascii_lowercase();
        if matches!(target, DbTarget::File(_))
            && (lower == ":memory:"
                || lower.contains("mode=memory")
                || lower.starts_with("file::memory:"))
        {
            return Err(config_error(format!(
                "database {:?}: an in-memory SQLite database is not shared between the \
                 library's connections and keeps nothing after a crash; give a file path (a \
                 temporary file in tests)",
                config.database
            )));
        }
        let org = Org::new(config.organisation.as_str()).map_err(config_error)?;
        let provider = provider(&config.provider)?;
        let webhook_token = config
            .webhook_auth_token
            .clone()
            .or(match &config.provider {
                ProviderConfig::Twilio { auth_token, .. } => Some(auth_token.clone()),
                ProviderConfig::Simulator => None,
            });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sms-runtime")
            .enable_all()
            .build()
            .map_err(|e| config_error(format!("cannot start the runtime: {e}")))?;
        // The driver's and the server's errors never hold the password; `shown` drops it.
        let journal = runtime
            .block_on(target.open(&org, false))
            .map_err(|e| SmsError::Store(format!("cannot open {}: {e}", target.shown())))?;
        let opt_outs: Arc<Store> = match host_store {
            Some(host) => Arc::new(HostOptOuts { host }),
            None => journal.clone(),
        };
        let wait_ms = config.reconcile_wait_seconds.saturating_mul(1_000);
        let dispatch = DispatchOptions {
            rate: Some(rate),
            concurrency: Some(config.concurrency),
            reconcile_settle_ms: wait_ms,
            reconcile_delay_ms: wait_ms,
            max_campaign_age_ms: Some(config.max_campaign_age_hours.saturating_mul(3_600_000)),
            ..DispatchOptions::default()
        };
        let campaign_settings = CampaignSettings {
            provider: Some(provider.name().to_owned()),
            provider_identity: Some(provider.identity()),
            rate,
            concurrency: config.concurrency,
            once_per_number: config.once_per_number,
            budget_units: None,
            price_per_segment: Some(preview_settings.price_per_segment.clone()),
            // Campaign::from_preview takes the preview's.
            quiet_hours: None,
        };
        tracing::info!(
            database = %target.shown(),
            shared = journal.is_shared(),
            organisation = %config.organisation,
            provider = provider.name(),
            "SMS client ready"
        );
        Ok(SmsClient {
            runtime,
            journal,
            opt_outs,
            provider,
            preview_settings,
            dispatch,
            campaign_settings,
            webhook_token,
            policy: if config.opt_out_keywords_only {
                OptOutPolicy::KeywordsOnly
            } else {
                OptOutPolicy::Fcc
            },
            inbound_seq: AtomicU64::new(0),
        })
    }

    /// Runs one client call: refuses re-entry, turns a panic into an error.
    fn call<T>(&self, f: impl FnOnce() -> Result<T, SmsError>) -> Result<T, SmsError> {
        let _busy = Busy::enter_call()?;
        caught(f)
    }

    fn make_preview(
        &self,
        recipients: Vec<Recipient>,
        body: &str,
    ) -> Result<sms_core::Preview, SmsError> {
        self.make_core_preview(recipients.into_iter().map(sms_core::Recipient::from), body)
    }

    /// [`Self::make_preview`] of the core's recipients, taken one at a time.
    fn make_core_preview(
        &self,
        recipients: impl IntoIterator<Item = sms_core::Recipient>,
        body: &str,
    ) -> Result<sms_core::Preview, SmsError> {
        let template = Template::parse(body).map_err(|e| SmsError::Template(e.to_string()))?;
        let snapshot = self.runtime.block_on(self.opt_outs.snapshot())?;
        sms_core::preview::preview(recipients, &template, &snapshot, &self.preview_settings)
            .map_err(|e| SmsError::Template(e.to_string()))
    }

    /// Runs a campaign on the runtime while this thread hands progress to the listener.
    fn run(
        &self,
        id: CampaignId,
        options: DispatchOptions,
        cancel: Option<Arc<CancelHandle>>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<CampaignReport, SmsError> {
        let (tx, rx) = std::sync::mpsc::channel::<Event>();
        // On a shared store this run is one worker of a fleet: other servers (or threads) may
        // send the same campaign at once, each number by one worker, at the rate in total. A
        // number left in doubt waits as long as a silence must last before another look.
        let fleet = self.journal.is_shared().then(|| FleetOptions {
            hold_in_doubt: std::time::Duration::from_millis(options.reconcile_settle_ms),
            ..FleetOptions::default()
        });
        let dispatcher = Dispatcher::new(
            self.provider.clone(),
            self.opt_outs.clone(),
            self.journal.clone(),
        )
        .with_options(options)
        .with_progress(Arc::new(ChannelProgress { tx }));
        // A child of the host's token: a failing listener stops this run without cancelling the
        // host's own handle (which it may pass to a resume).
        let token = cancel.map(|c| c.token.child_token()).unwrap_or_default();
        let run_token = token.clone();
        let task = self.runtime.spawn(async move {
            let result = match fleet {
                None => dispatcher.run(id, run_token).await,
                Some(fleet) => {
                    let worker = sms_store::worker_id();
                    tracing::info!(worker = worker.as_str(), "sending as a fleet worker");
                    dispatcher.run_fleet(id, worker, fleet, run_token).await
                }
            };
            drop(dispatcher); // closes the channel: the loop below ends.
            result
        });
        let mut host_failure = None;
        // The dispatcher's progress arrives here, on the host's own thread, with no lock held.
        for event in rx {
            let Some(listener) = progress.as_ref().filter(|_| host_failure.is_none()) else {
                continue;
            };
            let result = match event {
                Event::Progress(p) => {
                    host::callback("progress listener", || listener.on_progress(p))
                }
                Event::Warning(w) => host::callback("progress listener", || listener.on_warning(w)),
            };
            if let Err(e) = result {
                // The host's code is broken: stop after the texts in flight (a resume
                // finishes), and say why.
                tracing::warn!(error = %e, "progress listener failed; stopping the run");
                token.cancel();
                host_failure = Some(e);
            }
        }
        let summary = self
            .runtime
            .block_on(task)
            .map_err(|e| SmsError::Internal(format!("the send task failed: {e}")))??;
        if let Some(e) = host_failure {
            let report = &summary.report;
            if !report.is_complete() {
                let t = &report.totals;
                return Err(SmsError::HostCallbackFailed(format!(
                    "{e}; the run stopped after the texts in flight: {} sent, {} not final (resume \
                     campaign {} to finish; nobody is texted twice)",
                    t.accepted,
                    t.planned + t.sending + t.deferred + t.unknown + t.held,
                    report.campaign_id
                )));
            }
            // Every record is final: the report is what the host needs, whatever its
            // listener did (an error here could read as "not sent" and be sent again).
            tracing::warn!(error = %e, "progress listener failed after the last text");
        }
        tracing::info!(
            campaign = summary.report.campaign_id.as_str(),
            sent = summary.report.totals.accepted,
            cancelled = summary.cancelled,
            "run ended"
        );
        Ok(CampaignReport::from_core(summary.report, summary.cancelled))
    }

    fn number(&self, text: &str) -> Result<PhoneNumber, SmsError> {
        PhoneNumber::parse(text, self.preview_settings.region)
            .or_else(|e| PhoneNumber::from_e164_shape(text.trim()).map_err(|_| e))
            .map_err(|e| SmsError::InvalidInput(format!("{text:?}: {e}")))
    }

    fn inbound_handler(&self, token: &str) -> InboundHandler {
        InboundHandler::new(SignatureValidator::new(token), self.opt_outs.clone())
            .with_opt_out_policy(self.policy)
    }

    fn webhook_token(&self) -> Result<&str, SmsError> {
        self.webhook_token.as_deref().ok_or_else(|| {
            SmsError::Configuration(
                "no webhook token: give webhook_auth_token in SmsConfig (the Twilio auth token \
                 the webhooks are signed with)"
                    .to_owned(),
            )
        })
    }
}

/// Runs `f`, turning a panic (a bug) into `SmsError::Internal` rather than letting uniffi
/// raise its generic internal error.
fn caught<T>(f: impl FnOnce() -> Result<T, SmsError>) -> Result<T, SmsError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(SmsError::Internal(format!(
            "a bug in the SMS library (please report it): {what}"
        )))
    })
}

fn form(form: HashMap<String, String>) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = form.into_iter().collect();
    fields.sort();
    fields
}

#[uniffi::export]
impl SmsClient {
    /// A client on `config`: opens (or creates) the SQLite file; raises `SmsError` on a
    /// configuration that cannot work.
    #[uniffi::constructor]
    pub fn new(config: SmsConfig) -> Result<Arc<Self>, SmsError> {
        let _busy = Busy::enter_call()?;
        caught(|| Self::build(config, None).map(Arc::new))
    }

    /// A client whose opt-outs live in the host's own database (`store`); campaigns stay in
    /// `config.database`.
    #[uniffi::constructor]
    pub fn with_opt_out_store(
        config: SmsConfig,
        store: Arc<dyn OptOutStore>,
    ) -> Result<Arc<Self>, SmsError> {
        let _busy = Busy::enter_call()?;
        caught(|| Self::build(config, Some(store)).map(Arc::new))
    }

    /// Who would be texted, who not and why, and the cost; and, under quiet hours, how many
    /// texts would be held if sent now and until when. Nothing is stored or sent.
    pub fn preview(&self, recipients: Vec<Recipient>, body: String) -> Result<Preview, SmsError> {
        self.call(|| {
            self.make_preview(recipients, &body)
                .map(|p| Preview::at(p, Timestamp::now()))
        })
    }

    /// `preview` with the recipients and the answer as JSON, for the Python package: uniffi's
    /// generated Python lowers a record field by field (some 17 buffer writes a recipient), JSON
    /// crosses in one piece and Python's C encoder makes it. In: an array of
    /// `[record_id, permitted_marketing_methods (a client) or permitted_sms_text (a staff
    /// member), first_name, last_name, mobile, time_zone or null, fields or null]`. Out:
    /// `{"items": [[record_id, number, body, ucs2, segments] or [record_id, reason_code,
    /// reason]], "totals": {...}, "held": null or {"records", "earliest_ms", "earliest_local",
    /// "latest_ms", "latest_local"}}` in the field names of [`Preview`] (times in milliseconds
    /// since the epoch).
    pub fn preview_json(&self, recipients: Vec<u8>, body: String) -> Result<Vec<u8>, SmsError> {
        self.call(|| {
            let rows: Vec<crate::types::JsonRecipient> = serde_json::from_slice(&recipients)
                .map_err(|e| SmsError::InvalidInput(format!("recipients JSON: {e}")))?;
            let preview =
                self.make_preview(rows.into_iter().map(Recipient::from).collect(), &body)?;
            Ok(crate::types::preview_json(&preview, Timestamp::now()))
        })
    }

    /// `preview` with the recipients and the answer each packed in one string, for the Python
    /// package: it packs the recipients with a few C-level joins and reads the answer's items
    /// only when the host reads them, where JSON cost Python more than the preview costs here.
    /// The layout of both strings is in the documentation of the crate's `packed` module;
    /// recipients that do not follow it are `InvalidInput`.
    pub fn preview_packed(&self, recipients: String, body: String) -> Result<String, SmsError> {
        self.call(|| {
            let recipients =
                crate::packed::recipients(&recipients).map_err(SmsError::InvalidInput)?;
            let preview = self.make_core_preview(recipients, &body)?;
            Ok(crate::packed::answer(&preview, Timestamp::now()))
        })
    }

    /// Previews, stores the campaign, sends: exactly `sms send --yes`. Blocks until every
    /// record is final or held by quiet hours (status `HELD`, `held` says until when: `resume`
    /// after that sends them), or the run stops (cancelled: `cancelled` is set, resume to
    /// finish).
    #[uniffi::method(default(cancel = None, progress = None))]
    pub fn send(
        &self,
        campaign: String,
        recipients: Vec<Recipient>,
        body: String,
        cancel: Option<Arc<CancelHandle>>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<CampaignReport, SmsError> {
        self.call(|| {
            let id = campaign_id(&campaign)?;
            if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                return Err(SmsError::Cancelled(format!(
                    "campaign {campaign}: cancelled before it was stored; nothing was sent"
                )));
            }
            let preview = self.make_preview(recipients, &body)?;
            let dispatcher = Dispatcher::new(
                self.provider.clone(),
                self.opt_outs.clone(),
                self.journal.clone(),
            );
            let texts = preview.totals.texts;
            let stored = Campaign::from_preview(
                id.clone(),
                body.clone(),
                preview,
                self.campaign_settings.clone(),
                Timestamp::now(),
            );
            self.runtime.block_on(dispatcher.create(stored))?;
            tracing::info!(campaign = id.as_str(), texts, "campaign stored");
            self.run(id, self.dispatch.clone(), cancel, progress)
        })
    }

    /// Finishes a campaign after a crash or a cancel: texts in doubt are reconciled with the
    /// provider first, never blindly resent. As `sms resume`.
    #[uniffi::method(default(cancel = None, progress = None))]
    pub fn resume(
        &self,
        campaign: String,
        cancel: Option<Arc<CancelHandle>>,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<CampaignReport, SmsError> {
        self.call(|| {
            let id = campaign_id(&campaign)?;
            // The campaign's own rate and concurrency, as it was started.
            let options = DispatchOptions {
                rate: None,
                concurrency: None,
                ..self.dispatch.clone()
            };
            self.run(id, options, cancel, progress)
        })
    }

    /// What happened to each record of a campaign.
    pub fn report(&self, campaign: String) -> Result<CampaignReport, SmsError> {
        self.call(|| {
            let id = campaign_id(&campaign)?;
            let report = self.runtime.block_on(load_report(&*self.journal, id))?;
            Ok(CampaignReport::from_core(report, false))
        })
    }

    /// The campaigns in the database, newest last.
    pub fn campaigns(&self) -> Result<Vec<String>, SmsError> {
        self.call(|| {
            let list = self.runtime.block_on(self.journal.campaigns())?;
            Ok(list.into_iter().map(|c| c.id.as_str().to_owned()).collect())
        })
    }

    /// A reply the host already authenticated (its own webhook endpoint, an SMS gateway):
    /// STOP and START are recorded durably before this returns; the TwiML to answer with.
    pub fn handle_inbound(
        &self,
        from_number: String,
        body: String,
    ) -> Result<InboundResult, SmsError> {
        self.call(|| {
            let from = self.number(&from_number)?;
            let now = Timestamp::now();
            let seq = self.inbound_seq.fetch_add(1, Ordering::Relaxed);
            let sid = format!("SMhost{:019}{:08}", now.unix_ms(), seq % 100_000_000);
            let token = "sms-ffi-authenticated-by-host";
            let url = "https://localhost/sms/inbound";
            let fields = sms_twilio::form_fields(&[
                ("MessageSid", sid.as_str()),
                ("From", &from.e164()),
                ("To", "host"),
                ("Body", body.as_str()),
            ]);
            let signature = sms_twilio::compute_signature(token, url, &fields);
            let outcome = self.runtime.block_on(self.inbound_handler(token).handle(
                url,
                &fields,
                Some(&signature),
                now,
            ))?;
            log_inbound(&outcome);
            Ok(outcome.into())
        })
    }

    /// Twilio's inbound-message webhook as received: `url` exactly as Twilio requested it, the
    /// decoded form fields, and the `X-Twilio-Signature` header. A bad signature raises
    /// `SmsError.WebhookSignature` and records nothing (answer 403). The reply is stored in the
    /// database as `sms serve` stores it (`sms replies` lists it; a redelivery once).
    pub fn handle_inbound_webhook(
        &self,
        url: String,
        form_fields: HashMap<String, String>,
        signature: String,
    ) -> Result<InboundResult, SmsError> {
        self.call(|| {
            let token = self.webhook_token()?;
            let fields = form(form_fields);
            let received_at = Timestamp::now();
            let outcome = self.runtime.block_on(self.inbound_handler(token).handle(
                &url,
                &fields,
                Some(&signature),
                received_at,
            ))?;
            log_inbound(&outcome);
            // Kept as `sms serve` keeps it (`sms replies` lists it; a redelivery of the same
            // MessageSid is stored once). A STOP or START is recorded already: a failure here
            // is an error the host answers with a 5xx, and Twilio's redelivery stores it.
            self.runtime
                .block_on(self.journal.record_reply(outcome.stored_reply(received_at)))?;
            Ok(outcome.into())
        })
    }

    /// Twilio's status callback as received (signed as above): journals the delivery status
    /// against the record sent with that message id. Returns whether a record of this database
    /// carries that message id (`false`: not one of ours; answer 200 anyway). A repeated or
    /// older status is harmless: a final status is never replaced by an earlier one.
    pub fn handle_status_webhook(
        &self,
        url: String,
        form_fields: HashMap<String, String>,
        signature: String,
    ) -> Result<bool, SmsError> {
        self.call(|| {
            let token = self.webhook_token()?;
            let fields = form(form_fields);
            let update: StatusUpdate = sms_twilio::handle_status_callback(
                &SignatureValidator::new(token),
                &url,
                &fields,
                Some(&signature),
            )?;
            let ours = self.runtime.block_on(self.journal.record_delivery(
                sms_core::journal::DeliveryUpdate {
                    provider_id: update.message_sid.clone(),
                    status: update.status.clone(),
                    error_code: update.error_code,
                    segments: None,
                    at: Timestamp::now(),
                },
            ))?;
            tracing::debug!(
                message_sid = %update.message_sid,
                status = %update.raw_status,
                ours,
                "status callback"
            );
            Ok(ours)
        })
    }

    /// Whether `number` is opted out, since when, and its history.
    pub fn opt_out_state(&self, number: String) -> Result<OptOutStatus, SmsError> {
        self.call(|| {
            let number = self.number(&number)?;
            let history = self.runtime.block_on(self.opt_outs.history(number))?;
            let state = OptOutState::from_history(&history);
            Ok(OptOutStatus {
                number: number.e164(),
                opted_out: matches!(state, OptOutState::OptedOut { .. }),
                since: match state {
                    OptOutState::OptedOut { since } => Some(system_time(since)),
                    OptOutState::OptedIn => None,
                },
                history: history.into_iter().map(OptOutChange::from).collect(),
            })
        })
    }

    /// Records a STOP or START that reached the office another way (a phone call, a form),
    /// as staff. It applies to every record carrying the number.
    pub fn record_opt_out(
        &self,
        number: String,
        action: OptOutAction,
        note: Option<String>,
    ) -> Result<OptOutStatus, SmsError> {
        self.call(|| {
            let parsed = self.number(&number)?;
            let change = sms_core::OptOutChange {
                number: parsed,
                action: match action {
                    OptOutAction::Stop => sms_core::OptOutAction::Stop,
                    OptOutAction::Start => sms_core::OptOutAction::Start,
                },
                at: Timestamp::now(),
                source: sms_core::ChangeSource::Staff,
                message_sid: None,
                body: note,
            };
            self.runtime.block_on(self.opt_outs.record(change))?;
            tracing::info!(number = %parsed.e164(), ?action, "staff opt-out change recorded");
            Ok(())
        })?;
        self.opt_out_state(number)
    }
}

fn log_inbound(outcome: &sms_twilio::InboundOutcome) {
    if let Some(change) = &outcome.change {
        tracing::info!(
            number = %change.number.e164(),
            action = ?change.action,
            source = ?change.source,
            "opt-out change recorded"
        );
    }
}
