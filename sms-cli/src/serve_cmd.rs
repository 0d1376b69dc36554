//! `sms serve`: the always-on service. It receives Twilio's webhooks (inbound replies, delivery
//! statuses) over HTTP, checks their signatures against the public URL Twilio was given,
//! records what they say in the same SQLite file the other commands use, answers health
//! probes, and stops cleanly on SIGTERM or Ctrl-C.
//!
//! Periodic work plugs in as a [`PeriodicTask`] returned by [`periodic_tasks`]; each runs on
//! its own timer and sees the same stop signal as the HTTP server, and the service waits for
//! it to finish before exiting. The alert scheduler is one: every `--alerts-every` seconds it
//! sends the alerts due now ([`AlertScheduler`]), exactly as `sms alerts run` does. The other
//! finishes campaigns whose records quiet hours held, once the hours open
//! ([`HeldCampaigns`], every `--resume-held-every` seconds), exactly as `sms resume` does.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sms_core::alerts::{AlertConfig, AlertRunReport, AlertRunner};
use sms_core::dispatch::{Clock, Dispatcher};
use sms_core::journal::{CampaignId, CampaignSettings, DeliveryUpdate, Journal, RecordState};
use sms_core::{CancellationToken, DispatchError, JournalError, OptOutStore, Provider, Timestamp};

use crate::store::Store;
use sms_twilio::{
    EMPTY_TWIML, ENV_AUTH_TOKEN, InboundHandler, ReplyConfig, SIGNATURE_HEADER, SignatureValidator,
    WebhookError, handle_status_callback, parse_form,
};

use crate::alerts_cmd::ConfigArgs;
use crate::edges::{DbArgs, SendingArgs};
use crate::inbound_cmd::PolicyArg;

/// Largest request body accepted. Twilio's webhook forms are a few hundred bytes (an SMS body
/// is at most 1,600 characters, a few KiB once encoded); anything larger is refused with 413
/// before it is read further.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest a request may take, body included: a client that trickles its body is answered 408
/// instead of holding a connection (and the shutdown) open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// After SIGTERM, longest the service waits for requests in flight before it exits anyway (under
/// the 30 s most supervisors allow before SIGKILL).
const DRAIN_LIMIT: Duration = Duration::from_secs(25);

/// The paths Twilio is pointed at.
const INBOUND_PATH: &str = "/twilio/inbound";
const STATUS_PATH: &str = "/twilio/status";

/// A log line on standard error, stamped with the time. Never holds a secret: no token, no
/// signature, no message body.
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("{} sms serve: {}", Timestamp::now(), format_args!($($arg)*))
    };
}

/// Arguments of `sms serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (`127.0.0.1:8080`; port 0 picks a free one, printed at
    /// start).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The URL Twilio reaches this service at, without the path (`https://sms.example.org`, or
    /// `https://example.org/sms` behind a proxy that strips `/sms`). Signatures are checked
    /// against this URL plus the request's path: behind a proxy or tunnel the URL Twilio signed
    /// is not the one this socket sees. Default: `http://` and the --listen address.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub sending: SendingArgs,
    /// How a reply that is not exactly a keyword is read (as `sms inbound`).
    #[arg(long, value_enum, default_value_t = PolicyArg::Fcc)]
    pub opt_out_policy: PolicyArg,
    /// Text answered to a STOP when Twilio has not answered it already (default: none; Twilio
    /// answers keywords itself on long codes, toll-free numbers and Messaging Services).
    #[arg(long, value_name = "TEXT")]
    pub stop_confirmation: Option<String>,
    /// Text answered to a START when Twilio has not answered it already (default: none).
    #[arg(long, value_name = "TEXT")]
    pub start_confirmation: Option<String>,
    /// Seconds between two runs of the alert scheduler (send the alerts due now, as `sms
    /// alerts run`); 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub alerts_every: u64,
    /// How alerts are timed and capped (the same flags as `sms alerts run`).
    #[command(flatten)]
    pub alerts: ConfigArgs,
    /// Seconds between two looks for campaigns whose records quiet hours held and whose hours
    /// have opened since (those are resumed, as `sms resume` would); 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub resume_held_every: u64,
    /// Also log each request when it arrives (not only when it is answered).
    #[arg(long, short)]
    pub verbose: bool,
}

/// Work the service runs on a timer beside the webhooks (the alert scheduler plugs in here).
///
/// The service calls [`PeriodicTask::run_due`] every [`PeriodicTask::every`], one call at a
/// time per task. On SIGTERM or Ctrl-C, `stop` is cancelled: a run in progress should finish
/// or journal the text in flight and return (as the dispatcher does with its cancellation
/// token); the service waits for it before exiting. No new run starts after `stop`.
#[async_trait]
pub trait PeriodicTask: Send + Sync {
    /// Its name in the log.
    fn name(&self) -> &str;
    /// Time between the start of one run and the next.
    fn every(&self) -> Duration;
    /// Does what is due at `now`; `Err` is logged and the next run goes on.
    async fn run_due(&self, now: Timestamp, stop: CancellationToken) -> Result<(), String>;
}

/// What periodic tasks may use: the store and the provider the service was started with.
pub struct ServiceContext {
    /// The store (opt-outs, journal, replies, alerts): the SQLite file or PostgreSQL.
    pub store: Arc<Store>,
    /// The provider `--provider` names, for tasks that send.
    pub provider: Arc<dyn Provider>,
    /// The options `--rate` and `--reconcile-wait` ask for, for tasks that send.
    pub options: sms_core::DispatchOptions,
    /// The alerts' timing and caps (the `sms alerts` configuration flags).
    pub alerts: AlertConfig,
    /// Time between two runs of the alert scheduler; `None` (`--alerts-every 0`): no scheduler.
    pub alerts_every: Option<Duration>,
    /// Time between two looks for held campaigns whose quiet hours are over; `None`
    /// (`--resume-held-every 0`): none.
    pub resume_held_every: Option<Duration>,
}

/// The periodic tasks of the service: the alert scheduler, unless `--alerts-every 0`, and the
/// resumption of held campaigns, unless `--resume-held-every 0`.
fn periodic_tasks(context: &ServiceContext) -> Vec<Arc<dyn PeriodicTask>> {
    let mut tasks: Vec<Arc<dyn PeriodicTask>> = Vec::new();
    if let Some(every) = context.alerts_every {
        tasks.push(Arc::new(AlertScheduler::new(context, every)));
    }
    if let Some(every) = context.resume_held_every {
        tasks.push(Arc::new(HeldCampaigns::new(context, every)));
    }
    tasks
}

/// The wall clock of one run of a periodic task: the `now` it was given, moving on from there
/// (in the service `now` is the system clock's reading, so this is the system clock; a test
/// gives another `now`).
struct RunClock {
    at: Timestamp,
    started: Instant,
}

impl Clock for RunClock {
    fn now(&self) -> Timestamp {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_unix_ms(self.at.unix_ms().saturating_add(elapsed))
    }
}

/// Finishes the campaigns `sms send` (or a host) started whose records quiet hours held: once
/// a held record's opening has passed, its campaign is resumed exactly as `sms resume` does
/// (the journal's claim keeps it from running twice at once, leftovers are reconciled first,
/// records still in quiet hours stay held). Only campaigns with a record held and due are
/// touched: one stopped with Ctrl-C waits for a person's `sms resume`, and campaigns older
/// than the dispatcher's age limit (24 h) are not looked at.
pub struct HeldCampaigns {
    store: Arc<Store>,
    provider: Arc<dyn Provider>,
    options: sms_core::DispatchOptions,
    every: Duration,
    /// Campaigns this service cannot run (another provider or account): said once, not every
    /// run.
    refused: Mutex<HashSet<CampaignId>>,
}

impl HeldCampaigns {
    /// The task over the service's store and provider, with its dispatch options (`--rate`,
    /// `--reconcile-wait`).
    pub fn new(context: &ServiceContext, every: Duration) -> HeldCampaigns {
        HeldCampaigns {
            store: context.store.clone(),
            provider: context.provider.clone(),
            options: context.options.clone(),
            every,
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// The campaigns with a record held by quiet hours whose opening is at or before `now`.
    async fn due(&self, now: Timestamp) -> Result<Vec<CampaignId>, JournalError> {
        let max_age = self
            .options
            .max_campaign_age_ms
            .and_then(|ms| i64::try_from(ms).ok())
            .unwrap_or(i64::MAX);
        let mut due = Vec::new();
        for campaign in self.store.campaigns().await? {
            if now.unix_ms().saturating_sub(campaign.created_at.unix_ms()) > max_age {
                continue;
            }
            let records = self.store.records(campaign.id.clone()).await?;
            let ready = records
                .iter()
                .any(|r| matches!(r.state, RecordState::Held { until, .. } if until <= now));
            if ready {
                due.push(campaign.id);
            }
        }
        Ok(due)
    }
}

#[async_trait]
impl PeriodicTask for HeldCampaigns {
    fn name(&self) -> &str {
        "held campaigns"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_due(&self, now: Timestamp, stop: CancellationToken) -> Result<(), String> {
        let due = self
            .due(now)
            .await
            .map_err(|e| format!("cannot read the campaigns: {e}"))?;
        for id in due {
            if stop.is_cancelled() {
                break;
            }
            let refused = self
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&id);
            if refused {
                continue;
            }
            let dispatcher = Dispatcher::new(
                self.provider.clone(),
                self.store.clone(),
                self.store.clone(),
            )
            .with_clock(Arc::new(RunClock {
                at: now,
                started: Instant::now(),
            }))
            .with_options(self.options.clone());
            log!("campaign {id}: quiet hours are over for held records; resuming it");
            match dispatcher.run(id.clone(), stop.clone()).await {
                Ok(summary) => {
                    let t = &summary.report.totals;
                    let still = summary
                        .report
                        .held
                        .as_ref()
                        .map(|h| format!(", {} still held {}", h.records, h.until_text()))
                        .unwrap_or_default();
                    log!(
                        "campaign {id}: {} sent in all, {} failed, {} in doubt{still}{}",
                        t.accepted,
                        t.failed,
                        t.unknown,
                        if summary.cancelled {
                            "; stopped by the shutdown: the next start finishes it"
                        } else {
                            ""
                        }
                    );
                }
                Err(DispatchError::Journal(JournalError::CampaignBusy(_))) => {
                    log!("campaign {id} is being sent by another run: left to it");
                }
                Err(error @ (DispatchError::InvalidSettings(_) | DispatchError::TooOld { .. })) => {
                    log!(
                        "campaign {id} cannot be resumed here: {error}; resume it with `sms resume`"
                    );
                    self.refused
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(id);
                }
                Err(error) => {
                    log!("campaign {id}: the run stopped: {error}; the next look resumes it");
                }
            }
        }
        Ok(())
    }
}

/// The alert scheduler: each run is one `sms alerts run` at the time of the run. It finishes
/// the batches an earlier run left open (a crash, a stop), then sends what is due through the
/// journaled dispatcher: exactly once, whatever stops the service and when.
pub struct AlertScheduler {
    runner: AlertRunner<dyn Provider, Store, Store, Store>,
    every: Duration,
}

impl AlertScheduler {
    /// A scheduler over the service's store and provider, sending at `--rate`.
    pub fn new(context: &ServiceContext, every: Duration) -> AlertScheduler {
        let store = &context.store;
        let runner = AlertRunner::new(
            context.provider.clone(),
            store.clone(),
            store.clone(),
            store.clone(),
        )
        .with_config(context.alerts.clone())
        .with_settings(CampaignSettings {
            rate: context.options.rate.unwrap_or_default(),
            ..CampaignSettings::default()
        })
        .with_options(context.options.clone());
        AlertScheduler { runner, every }
    }
}

#[async_trait]
impl PeriodicTask for AlertScheduler {
    fn name(&self) -> &str {
        "alerts"
    }

    fn every(&self) -> Duration {
        self.every
    }

    async fn run_due(&self, now: Timestamp, stop: CancellationToken) -> Result<(), String> {
        let report = self
            .runner
            .run_due(now, stop)
            .await
            .map_err(|e| format!("the run stopped: {e}; the next run resumes it"))?;
        log_alert_run(&report);
        Ok(())
    }
}

/// Logs what an alert run did: one line per alert sent, failed or dropped (ids, kind, record
/// and the reason; never a body), then the totals. A run that only found alerts still
/// waiting logs nothing, so an idle service is quiet.
fn log_alert_run(report: &AlertRunReport) {
    for line in report.lines.iter().filter(|l| l.action != "wait") {
        log!(
            "alert {} ({}, event {}, record {}): {} [{}] {}",
            line.alert_id,
            line.kind.as_str(),
            line.event_id,
            line.record_id,
            line.action,
            line.code,
            line.detail
        );
    }
    for id in &report.busy {
        log!("alerts: campaign {id} is being sent by another run: left to it");
    }
    for (id, why) in &report.stuck {
        log!("alerts: campaign {id} cannot be run: {why}");
    }
    if let Some(why) = &report.claim_conflict {
        log!("alerts: another run is sending some of these alerts ({why})");
    }
    let acted = report.sent + report.failed + report.never_total() + report.in_doubt > 0;
    if acted || !report.batches.is_empty() || report.cancelled {
        log!(
            "alerts run: {}{}{}",
            report.counts(),
            if report.batches.is_empty() {
                String::new()
            } else {
                format!(" (campaigns {})", report.batch_list())
            },
            if report.cancelled {
                "; stopped by the shutdown: what was claimed is journaled, the next run finishes it"
            } else {
                ""
            }
        );
    }
}

/// What the request handlers share.
struct Service {
    store: Arc<Store>,
    inbound: InboundHandler,
    validator: SignatureValidator,
    /// `--public-url` without a trailing slash.
    public_base: String,
    verbose: bool,
}

/// Runs `sms serve`.
pub async fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let public_base = public_base(&args)?;
    // Webhooks are signed with the account's auth token, never with an API key's secret: it is
    // needed even when the texts go out with an API key.
    let token = std::env::var(ENV_AUTH_TOKEN)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            format!(
                "{ENV_AUTH_TOKEN} is not set: Twilio signs every webhook with the account's auth \
                 token (Console, Account Info; not an API key secret), and without it no request \
                 can be told from a forgery. Set {ENV_AUTH_TOKEN} in this service's environment, \
                 as for `sms send --provider twilio`"
            )
        })?;
    let provider = args.sending.provider()?;
    let options = args.sending.options()?;
    let alerts = args.alerts.config()?;
    let alerts_every = (args.alerts_every > 0).then(|| Duration::from_secs(args.alerts_every));
    let resume_held_every =
        (args.resume_held_every > 0).then(|| Duration::from_secs(args.resume_held_every));
    let store = args.db.open().await?;
    store
        .check()
        .await
        .map_err(|e| format!("the database {} is not usable: {e}", args.db.describe()))?;
    let validator = SignatureValidator::new(token);
    let opt_outs: Arc<dyn OptOutStore> = store.clone();
    let inbound = InboundHandler::new(validator.clone(), opt_outs)
        .with_opt_out_policy(args.opt_out_policy.into())
        .with_replies(ReplyConfig {
            stop_confirmation: args.stop_confirmation.clone(),
            start_confirmation: args.start_confirmation.clone(),
        });
    let context = ServiceContext {
        store,
        provider,
        options,
        alerts,
        alerts_every,
        resume_held_every,
    };
    let tasks = periodic_tasks(&context);
    let service = Arc::new(Service {
        store: context.store.clone(),
        inbound,
        validator,
        public_base,
        verbose: args.verbose,
    });

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let stop = CancellationToken::new();
    let signals = shutdown_signals()?;
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let name = signals.await;
            log!(
                "{name}: stopping; no new connections, finishing the requests in flight \
                 (at most {} s)",
                DRAIN_LIMIT.as_secs()
            );
            stop.cancel();
        });
    }
    log!("listening on {local}");
    log!(
        "point Twilio at {0}{INBOUND_PATH} (\"A message comes in\", HTTP POST) and \
         {0}{STATUS_PATH} (status callback); signatures are checked against these URLs",
        service.public_base
    );
    log!(
        "database {}, provider {}",
        args.db.describe(),
        context.provider.identity()
    );
    match context.alerts_every {
        Some(every) => log!(
            "sending the alerts due every {} s (texts go {} local; org time zone {})",
            every.as_secs(),
            args.alerts.quiet_hours,
            context.alerts.org_time_zone
        ),
        None => log!("alert scheduler off (--alerts-every 0)"),
    }
    match context.resume_held_every {
        Some(every) => log!(
            "resuming campaigns held by quiet hours once they open, looking every {} s",
            every.as_secs()
        ),
        None => log!("held campaigns are not resumed here (--resume-held-every 0)"),
    }
    let workers: Vec<_> = tasks
        .into_iter()
        .map(|task| tokio::spawn(run_periodic(task, stop.clone())))
        .collect();

    let server = axum::serve(listener, router(service))
        .with_graceful_shutdown(stop.clone().cancelled_owned());
    let drain_limit = async {
        stop.cancelled().await;
        tokio::time::sleep(DRAIN_LIMIT).await;
    };
    tokio::select! {
        served = server => served.map_err(|e| format!("the HTTP server failed: {e}"))?,
        () = drain_limit => log!(
            "requests still in flight after {} s; exiting without them (Twilio gets no answer \
             and nothing was recorded for them)",
            DRAIN_LIMIT.as_secs()
        ),
    }
    for worker in workers {
        let _ = worker.await;
    }
    log!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `--public-url` checked, without a trailing slash; `http://ADDR` when absent.
fn public_base(args: &ServeArgs) -> Result<String, String> {
    let Some(url) = &args.public_url else {
        return Ok(format!("http://{}", args.listen));
    };
    let trimmed = url.trim().trim_end_matches('/');
    let scheme_ok = trimmed.starts_with("https://") || trimmed.starts_with("http://");
    let host = trimmed.split_once("://").map_or("", |(_, rest)| rest);
    if !scheme_ok || host.is_empty() || trimmed.contains(['?', '#']) || trimmed.contains(' ') {
        return Err(format!(
            "--public-url {url:?}: give the URL Twilio reaches this service at, without the \
             /twilio/... path, a query or a fragment, e.g. https://sms.example.org"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Resolves with the name of the first of SIGTERM and Ctrl-C (SIGINT) to arrive.
fn shutdown_signals() -> Result<impl Future<Output = &'static str> + Send, String> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    Ok(async move {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    })
}

/// Runs `task` every `task.every()` until `stop`, never two runs at once, and lets a run in
/// progress finish.
async fn run_periodic(task: Arc<dyn PeriodicTask>, stop: CancellationToken) {
    let mut timer = tokio::time::interval(task.every());
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = timer.tick() => {}
        }
        if let Err(error) = task.run_due(Timestamp::now(), stop.clone()).await {
            log!("{}: {error}", task.name());
        }
    }
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route(INBOUND_PATH, post(inbound))
        .route(STATUS_PATH, post(status))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(service.clone(), log_request))
        .with_state(service)
}

/// Logs each request (method, path, status, time: never the query, a header or the body) and
/// bounds its duration.
async fn log_request(
    State(service): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    if service.verbose {
        log!("{method} {path} received");
    }
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    };
    let quiet = path == "/healthz" && response.status().is_success() && !service.verbose;
    if !quiet {
        log!(
            "{method} {path} {} in {} ms",
            response.status().as_u16(),
            started.elapsed().as_millis()
        );
    }
    response
}

/// The URL Twilio signed: the public base, then the path and query this request carries.
fn signed_url(service: &Service, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    format!("{}{path}", service.public_base)
}

fn signature(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok())
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// The answer to a webhook that was refused; nothing was recorded.
fn refused(path: &str, error: &WebhookError) -> Response {
    let status = match error {
        WebhookError::Signature(_) => StatusCode::FORBIDDEN,
        WebhookError::MissingField(_) | WebhookError::InvalidField { .. } => {
            StatusCode::BAD_REQUEST
        }
        WebhookError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    // The errors name the field or the failed check, never a value, a signature or a token.
    log!("{path} refused: {error}");
    (status, format!("{error}\n")).into_response()
}

/// `POST /twilio/inbound`: a reply. STOP/START are recorded before the answer (as `sms
/// inbound`); every message is kept with its units in the replies table.
async fn inbound(
    State(service): State<Arc<Service>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Timestamp::now();
    let url = signed_url(&service, &uri);
    let outcome = match service
        .inbound
        .handle_form_body(&url, &body, signature(&headers), received_at)
        .await
    {
        Ok(outcome) => outcome,
        Err(error) => return refused(INBOUND_PATH, &error),
    };
    let reply = outcome.stored_reply(received_at);
    let review = reply.review;
    if let Err(error) = service.store.record_reply(reply).await {
        // Any STOP/START is recorded already; Twilio's redelivery records it once.
        return refused(INBOUND_PATH, &WebhookError::Store(error.to_string()));
    }
    let recorded = outcome
        .change
        .as_ref()
        .map(|c| format!(", recorded {:?} for {}", c.action, c.number))
        .unwrap_or_default();
    log!(
        "reply {} from {}: {:?}, {} unit(s){recorded}{}",
        outcome.message.message_sid,
        outcome.message.from,
        outcome.classification.class,
        outcome.segments,
        if review {
            ", for a person to review"
        } else {
            ""
        }
    );
    twiml(outcome.response_body().to_owned())
}

/// `POST /twilio/status`: a delivery status, journaled against the record sent with that
/// message id (a status for a message of no campaign here is kept and answered 200 too).
async fn status(
    State(service): State<Arc<Service>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = signed_url(&service, &uri);
    let fields = parse_form(&body);
    let update =
        match handle_status_callback(&service.validator, &url, &fields, signature(&headers)) {
            Ok(update) => update,
            Err(error) => return refused(STATUS_PATH, &error),
        };
    // Units billed, when the callback carries them: they replace the estimate in the report.
    let segments = fields
        .iter()
        .find(|(name, _)| name == "NumSegments")
        .and_then(|(_, value)| value.trim().parse().ok());
    let journaled = service
        .store
        .record_delivery(DeliveryUpdate {
            provider_id: update.message_sid.clone(),
            status: update.status.clone(),
            error_code: update.error_code,
            segments,
            at: Timestamp::now(),
        })
        .await;
    match journaled {
        Ok(ours) => {
            log!(
                "status {} {}{}{}",
                update.message_sid,
                update.raw_status,
                update
                    .error_code
                    .map(|c| format!(" (error {c})"))
                    .unwrap_or_default(),
                if ours {
                    ""
                } else {
                    " (no record here carries it)"
                }
            );
            twiml(EMPTY_TWIML.to_owned())
        }
        Err(error) => refused(STATUS_PATH, &WebhookError::Store(error.to_string())),
    }
}

/// `GET /healthz`: 200 when the store answers a read and its writer a (no-op) write, 503
/// otherwise.
async fn healthz(State(service): State<Arc<Service>>) -> Response {
    match service.store.check().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(error) => {
            log!("health check failed: {error}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("store unavailable: {error}\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting {
        runs: AtomicU32,
        in_run: AtomicU32,
        finished: AtomicU32,
    }

    #[async_trait]
    impl PeriodicTask for Arc<Counting> {
        fn name(&self) -> &str {
            "counting"
        }
        fn every(&self) -> Duration {
            Duration::from_millis(1)
        }
        async fn run_due(&self, _now: Timestamp, stop: CancellationToken) -> Result<(), String> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.runs.load(Ordering::SeqCst) == 3 {
                // A run in progress when the stop comes: it must be let finish.
                self.in_run.store(1, Ordering::SeqCst);
                stop.cancelled().await;
                tokio::task::yield_now().await;
                self.finished.store(1, Ordering::SeqCst);
            }
            Err("logged, and the next run goes on".into())
        }
    }

    #[tokio::test]
    async fn a_periodic_task_runs_until_stop_and_its_run_in_progress_finishes() {
        let task = Arc::new(Counting {
            runs: AtomicU32::new(0),
            in_run: AtomicU32::new(0),
            finished: AtomicU32::new(0),
        });
        let stop = CancellationToken::new();
        let worker = tokio::spawn(run_periodic(Arc::new(task.clone()), stop.clone()));
        while task.in_run.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        stop.cancel();
        worker.await.expect("the loop ends");
        assert_eq!(task.finished.load(Ordering::SeqCst), 1);
        assert_eq!(task.runs.load(Ordering::SeqCst), 3, "no run after the stop");
    }

    /// A campaign of `n` records in New York, under the default quiet hours.
    fn campaign(id: &str, n: u64, created_at: Timestamp) -> sms_core::Campaign {
        let items = (0..n)
            .map(|i| {
                let number = sms_core::PhoneNumber::from_e164(&format!("+1212555{:04}", 100 + i))
                    .expect("valid");
                sms_core::PreviewItem {
                    record_id: sms_core::RecordId::new(format!("C{i}")),
                    kind: sms_core::RecordKind::Client,
                    name: "Pat Doe".into(),
                    mobile: number.to_string(),
                    time_zone: None,
                    outcome: sms_core::PreviewOutcome::Eligible {
                        number,
                        body: format!("Hello {i}"),
                        encoding: sms_core::Encoding::Gsm7,
                        segments: 1,
                    },
                }
            })
            .collect();
        sms_core::Campaign {
            id: CampaignId::new(id).expect("valid"),
            name: id.into(),
            created_at,
            template: "Hello".into(),
            settings: CampaignSettings {
                rate: sms_core::RateLimit::Unlimited,
                quiet_hours: Some(sms_core::quiet::QuietRule::default()),
                ..CampaignSettings::default()
            },
            items,
        }
    }

    fn t(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("valid")
    }

    #[tokio::test]
    async fn held_campaigns_are_resumed_once_their_quiet_hours_are_over_and_no_other() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::Sqlite(
            sms_sqlite::SqliteStore::open(dir.path().join("sms.db")).expect("open"),
        ));
        let provider = Arc::new(sms_core::SimulatedProvider::new());
        // 03:00 in New York: a send started then holds everyone until 08:00 EDT (12:00 UTC).
        let night = t("2026-07-02T07:00:00Z");
        let dispatcher = |at: Timestamp| {
            Dispatcher::new(provider.clone(), store.clone(), store.clone()).with_clock(Arc::new(
                RunClock {
                    at,
                    started: Instant::now(),
                },
            ))
        };
        for (id, created) in [("tonight", night), ("last-week", t("2026-06-25T07:00:00Z"))] {
            store
                .create_campaign(campaign(id, 3, created))
                .await
                .expect("stored");
            dispatcher(created)
                .run(
                    CampaignId::new(id).expect("valid"),
                    CancellationToken::new(),
                )
                .await
                .expect("runs");
        }
        // Stopped before it started (a Ctrl-C): planned, not held; a person resumes it.
        store
            .create_campaign(campaign("stopped", 2, night))
            .await
            .expect("stored");
        assert!(provider.sent().is_empty(), "nothing goes at 03:00");

        let context = ServiceContext {
            store: store.clone(),
            provider: provider.clone(),
            options: sms_core::DispatchOptions::default(),
            alerts: AlertConfig::default(),
            alerts_every: None,
            resume_held_every: None,
        };
        let task = HeldCampaigns::new(&context, Duration::from_secs(60));
        let report = |id: &str| {
            let store = store.clone();
            let id = CampaignId::new(id).expect("valid");
            async move {
                sms_core::journal::load_report(&*store, id)
                    .await
                    .expect("report")
            }
        };

        // 07:59 EDT: not yet.
        task.run_due(t("2026-07-02T11:59:00Z"), CancellationToken::new())
            .await
            .expect("runs");
        assert!(provider.sent().is_empty());
        assert_eq!(report("tonight").await.totals.held, 3);

        // 08:00 EDT: tonight's three go, once each; last week's stays (too old to resume
        // without a person), the stopped one stays planned.
        for _ in 0..2 {
            task.run_due(t("2026-07-02T12:00:00Z"), CancellationToken::new())
                .await
                .expect("runs");
        }
        assert_eq!(provider.sent().len(), 3);
        assert!(report("tonight").await.is_complete());
        assert_eq!(report("last-week").await.totals.held, 3);
        assert_eq!(report("stopped").await.totals.planned, 2);
    }

    fn args(public_url: Option<&str>) -> ServeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let mut argv = vec!["sms", "--listen", "127.0.0.1:8080"];
        if let Some(url) = public_url {
            argv.extend(["--public-url", url]);
        }
        Wrap::parse_from(argv).serve
    }

    #[test]
    fn the_public_url_is_a_base_without_path_query_or_trailing_slash() {
        assert_eq!(
            public_base(&args(None)).expect("default"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            public_base(&args(Some("https://example.org/sms/"))).expect("a prefix"),
            "https://example.org/sms"
        );
        for bad in [
            "example.org",
            "https://",
            "https://x.org/?a=1",
            "ftp://x.org",
        ] {
            assert!(public_base(&args(Some(bad))).is_err(), "{bad}");
        }
    }
}
