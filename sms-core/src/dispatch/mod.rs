//! The dispatcher: executes a stored campaign, exactly once per record, at the sender's pace.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use sms_core::dispatch::{CancellationToken, Dispatcher};
//! use sms_core::journal::{Campaign, CampaignId, CampaignSettings, InMemoryJournal, Journal, RateLimit};
//! use sms_core::*;
//!
//! let journal = Arc::new(InMemoryJournal::new());
//! let id = CampaignId::new("fall").unwrap();
//! let item = PreviewItem {
//!     record_id: RecordId::new("C-1"),
//!     kind: sms_core::RecordKind::Client,
//!     name: "Ada Lovelace".into(),
//!     mobile: "(212) 555-0123".into(),
//!     time_zone: None,
//!     outcome: PreviewOutcome::Eligible {
//!         number: PhoneNumber::from_e164("+12125550123").unwrap(),
//!         body: "Class moved to Room 4".into(),
//!         encoding: Encoding::Gsm7,
//!         segments: 1,
//!     },
//! };
//! let campaign = Campaign {
//!     id: id.clone(),
//!     name: "Room change".into(),
//!     created_at: Timestamp::now(),
//!     template: "Class moved to Room 4".into(),
//!     settings: CampaignSettings { rate: RateLimit::Unlimited, ..Default::default() },
//!     items: vec![item],
//! };
//! journal.create_campaign(campaign).await.unwrap();
//!
//! let dispatcher = Dispatcher::new(
//!     Arc::new(SimulatedProvider::new()),
//!     Arc::new(InMemoryOptOutStore::new()),
//!     journal,
//! );
//! let summary = dispatcher.run(id, CancellationToken::new()).await.unwrap();
//! assert!(summary.report.is_complete());
//! assert_eq!(summary.report.totals.accepted, 1);
//! # });
//! ```
//!
//! How a record is sent, and why it cannot be sent twice:
//! 1. check the campaign's quiet hours in the recipient's zone (before and after waiting for a
//!    slot): outside them the record is journaled `held` until they open, never sent now;
//! 2. wait for a slot of the rate limiter (shared by all `concurrency` senders);
//! 3. re-read the number's opt-out state: a STOP that arrived a second ago wins;
//! 4. journal `sending` durably, then call the provider;
//! 5. journal the answer: accepted, failed, deferred (slow down / try later, retried with
//!    backoff), or unknown.
//!
//! A run starts by reconciling every record left `sending` (a crash) or `unknown` through
//! [`Provider::lookup_sent`] (see `reconcile`), and the journal
//! itself refuses to mark an accepted record `sending` again.

mod fleet;
mod options;
mod outcome;
mod plan;
mod progress;
mod rate;
mod reconcile;
mod resolve;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::consent::BlockReason;
use crate::journal::{
    Campaign, CampaignId, CampaignSettings, FleetJournal, Journal, JournalError, RateLimit,
    RecordEntry, RecordState, SendFailure, Transition, WorkerId, load_report,
};
use crate::optout::{ChangeSource, OptOutAction, OptOutChange, OptOutState, OptOutStore};
use crate::provider::{OutboundSms, Provider, SendError};
use crate::quiet::ZoneCache;

pub use fleet::FleetOptions;
pub use options::{Clock, DispatchOptions, SystemClock};
pub use outcome::{DispatchError, DispatchSummary, RunStats};
pub use plan::{DispatchWarning, Estimate};
pub use progress::{NoProgress, Progress, ProgressSnapshot};
pub use rate::book_slot;
pub use resolve::{Resolution, estimate_campaign};
pub use tokio_util::sync::CancellationToken;

use plan::{Job, changed, check_budget, check_job, hold_jobs, pending_jobs, queue_warning};
use progress::Counts;
use rate::{Limiter, sleep_or_cancel};

/// Executes campaigns stored in a journal.
pub struct Dispatcher<P: ?Sized, S: ?Sized, J: ?Sized> {
    provider: Arc<P>,
    store: Arc<S>,
    journal: Arc<J>,
    clock: Arc<dyn Clock>,
    progress: Arc<dyn Progress>,
    options: DispatchOptions,
    /// Since when (monotonic) the provider's history has been silent about an attempt in
    /// doubt, by (record, attempt time): the attempt itself when this dispatcher made it,
    /// otherwise the first lookup that found nothing. Never the wall clock, which may jump.
    silence: Mutex<HashMap<(u32, i64), Instant>>,
}

impl<P: ?Sized, S: ?Sized, J: ?Sized> std::fmt::Debug for Dispatcher<P, S, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The shared state of one round of sending.
struct Round<'a> {
    campaign: &'a Campaign,
    settings: &'a CampaignSettings,
    limiter: &'a Limiter,
    stop: &'a CancellationToken,
    started: Instant,
    queue: Mutex<VecDeque<Job>>,
    counts: Mutex<Counts>,
    last_progress: Mutex<Instant>,
    calls: AtomicU64,
    unknown_seen: AtomicBool,
    fatal: Mutex<Option<SendError>>,
    zones: Mutex<ZoneCache>,
    /// In a fleet run: the journal's leases and this worker (the `sending` write checks the
    /// lease; the rate is booked in the journal, shared by every worker).
    fleet: Option<(&'a dyn FleetJournal, &'a WorkerId)>,
}

/// Which records a run works on.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// The whole campaign (one run at a time, under the journal's claim).
    Whole,
    /// The numbers this worker of a fleet run holds leases on.
    Leased(&'a dyn FleetJournal, &'a WorkerId),
}

/// What one run (or one fleet worker) carries across its rounds and batches.
struct RunState<'a> {
    campaign: &'a Campaign,
    settings: &'a CampaignSettings,
    limiter: Limiter,
    stop: CancellationToken,
    started: Instant,
    stats: RunStats,
    warnings: Vec<DispatchWarning>,
    /// Time zones looked up for quiet hours, kept across rounds and batches.
    zones: ZoneCache,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held, so a poisoned one still guards sound data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<P, S, J> Dispatcher<P, S, J>
where
    P: Provider + ?Sized,
    S: OptOutStore + ?Sized,
    J: Journal + ?Sized,
{
    /// A dispatcher over these edges, with the system clock and default options.
    pub fn new(provider: Arc<P>, store: Arc<S>, journal: Arc<J>) -> Self {
        Self {
            provider,
            store,
            journal,
            clock: Arc::new(SystemClock),
            progress: Arc::new(NoProgress),
            options: DispatchOptions::default(),
            silence: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `clock` for journal timestamps.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Uses these options.
    pub fn with_options(mut self, options: DispatchOptions) -> Self {
        self.options = options;
        self
    }

    /// Stores a new campaign (its records planned or blocked as the preview decided).
    pub async fn create(&self, campaign: Campaign) -> Result<CampaignId, DispatchError> {
        let id = campaign.id.clone();
        self.journal.create_campaign(campaign).await?;
        Ok(id)
    }

    /// What is left to send and the warnings a run would give (no provider call).
    pub async fn estimate(
        &self,
        id: CampaignId,
    ) -> Result<(Estimate, Vec<DispatchWarning>), DispatchError> {
        let campaign = self.journal.campaign(id.clone()).await?;
        let settings = self.settings_for(&campaign)?;
        let entries = self.journal.records(id).await?;
        let now = self.clock.now();
        let (jobs, _) = pending_jobs(&campaign, &entries, true, now);
        let (jobs, holds) = hold_jobs(&campaign, jobs, now, &mut ZoneCache::new());
        let estimate = Estimate::of(&jobs, &settings).with_holds(&holds);
        let warnings = queue_warning(&estimate, self.options.queue_window_seconds)
            .into_iter()
            .collect();
        Ok((estimate, warnings))
    }

    /// The campaign's settings with this dispatcher's overrides, checked.
    pub fn settings_for(&self, campaign: &Campaign) -> Result<CampaignSettings, DispatchError> {
        let mut settings = campaign.settings.clone();
        if let Some(started_with) = &settings.provider
            && started_with != self.provider.name()
        {
            return Err(DispatchError::InvalidSettings(format!(
                "campaign {} was started with the provider '{started_with}', not '{}': \
                 reconciling through another provider would misreport what was sent",
                campaign.id,
                self.provider.name()
            )));
        }
        if let Some(started_with) = &settings.provider_identity {
            let identity = self.provider.identity();
            if *started_with != identity {
                return Err(DispatchError::InvalidSettings(format!(
                    "campaign {} was started with the provider account {started_with}, not \
                     {identity}: the texts it sent are in the first account's history, so \
                     reconciling through this one would find nothing and send them again; \
                     resume it with the account it was started with",
                    campaign.id
                )));
            }
        }
        if let Some(max_ms) = self.options.max_campaign_age_ms {
            let age_ms = self
                .clock
                .now()
                .unix_ms()
                .saturating_sub(campaign.created_at.unix_ms());
            if age_ms > i64::try_from(max_ms).unwrap_or(i64::MAX) {
                return Err(DispatchError::TooOld {
                    campaign: campaign.id.clone(),
                    age_hours: u64::try_from(age_ms / 3_600_000).unwrap_or(0),
                    max_hours: max_ms / 3_600_000,
                });
            }
        }
        if let Some(rate) = self.options.rate {
            settings.rate = rate;
        }
        if let Some(concurrency) = self.options.concurrency {
            settings.concurrency = concurrency;
        }
        if let Some(budget) = self.options.budget_units {
            settings.budget_units = Some(budget);
        }
        if let RateLimit::MessagesPerSecond { per_second }
        | RateLimit::SegmentsPerSecond { per_second } = settings.rate
            && !(per_second.is_finite() && per_second > 0.0)
        {
            return Err(DispatchError::InvalidSettings(format!(
                "the rate must be a positive number of texts per second, not {per_second}"
            )));
        }
        if settings.concurrency == 0 {
            return Err(DispatchError::InvalidSettings(
                "concurrency must be at least 1".to_owned(),
            ));
        }
        Ok(settings)
    }

    /// Runs (or resumes) a campaign until every record is settled, the run is cancelled, or a
    /// store or the provider's configuration fails. Running a finished campaign sends nothing.
    ///
    /// Everything needed is read from the journal: a resume after a crash needs only the
    /// journal and the campaign id.
    pub async fn run(
        &self,
        id: CampaignId,
        cancel: CancellationToken,
    ) -> Result<DispatchSummary, DispatchError> {
        let campaign = self.journal.campaign(id.clone()).await?;
        let settings = self.settings_for(&campaign)?;
        // Held to the end of the run (or until the future is dropped).
        let _claim = self.journal.claim(id.clone()).await?;
        tracing::info!(
            campaign = id.as_str(),
            provider = self.provider.name(),
            "run started"
        );
        let mut run = RunState {
            campaign: &campaign,
            settings: &settings,
            limiter: Limiter::new(settings.rate),
            stop: cancel.child_token(),
            started: Instant::now(),
            stats: RunStats::default(),
            warnings: Vec::new(),
            zones: ZoneCache::new(),
        };
        let waiting = self.rounds(&mut run, Scope::Whole, true).await?;
        // Still silent, but not for long enough: left unknown for a later run.
        run.stats.reconciled_undecided += waiting;
        let (stats, warnings) = (run.stats, run.warnings);
        self.finish(id, &cancel, stats, warnings).await
    }

    /// The report at the end of a run, logged.
    async fn finish(
        &self,
        id: CampaignId,
        cancel: &CancellationToken,
        stats: RunStats,
        warnings: Vec<DispatchWarning>,
    ) -> Result<DispatchSummary, DispatchError> {
        let report = load_report(&*self.journal, id).await?;
        tracing::info!(
            campaign = report.campaign_id.as_str(),
            provider_calls = stats.provider_calls,
            reconciled_sent = stats.reconciled_sent,
            reconciled_not_sent = stats.reconciled_not_sent,
            undecided = stats.reconciled_undecided,
            cancelled = cancel.is_cancelled(),
            "run ended"
        );
        Ok(DispatchSummary {
            report,
            cancelled: cancel.is_cancelled(),
            warnings,
            stats,
        })
    }

    /// The current entries of the records in `scope`.
    async fn entries(
        &self,
        id: &CampaignId,
        scope: Scope<'_>,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        match scope {
            Scope::Whole => self.journal.records(id.clone()).await,
            Scope::Leased(fleet, worker) => fleet.leased_records(id, worker).await,
        }
    }

    /// Rounds over the records in `scope` until each is settled or left in doubt: reconcile
    /// the ones in doubt, send the pending ones, again while a send's outcome was lost. With
    /// `checks`, the first round warns about the queue and checks the budget. Returns how many
    /// leftovers are still silent but not for long enough to call them not sent.
    async fn rounds(
        &self,
        run: &mut RunState<'_>,
        scope: Scope<'_>,
        checks: bool,
    ) -> Result<u64, DispatchError> {
        let (campaign, settings) = (run.campaign, run.settings);
        let id = campaign.id.clone();
        let skew_ms = i64::try_from(self.options.reconcile_skew_ms).unwrap_or(i64::MAX);
        let lookback_ms = i64::try_from(self.options.reconcile_lookback_ms).unwrap_or(i64::MAX);
        let settle = Duration::from_millis(self.options.reconcile_settle_ms);
        // Leftovers whose silence has not lasted long enough yet, and when the first will have.
        let (mut waiting, mut next_check) = (0, None::<Duration>);
        for round in 1..=self.options.max_rounds.max(1) {
            run.stats.rounds = run.stats.rounds.max(round);
            if round > 1 {
                let delay = Duration::from_millis(self.options.reconcile_delay_ms)
                    .max(next_check.unwrap_or_default());
                if !sleep_or_cancel(delay, &run.stop).await {
                    break;
                }
            }
            let mut entries = self.entries(&id, scope).await?;
            let now = self.clock.now();
            let looked_at = Instant::now();
            let mut silence = |leftover: &reconcile::Leftover| {
                self.silence_remaining(leftover, looked_at, settle)
            };
            let (settled, counts) = reconcile::reconcile(
                &*self.provider,
                &*self.journal,
                campaign,
                &entries,
                now,
                reconcile::Window {
                    skew_ms,
                    lookback_ms,
                    silence: &mut silence,
                    clock: &*self.clock,
                },
            )
            .await;
            run.stats.reconciled_sent += counts.found;
            run.stats.reconciled_not_sent += counts.not_sent;
            run.stats.reconciled_undecided += counts.undecided;
            (waiting, next_check) = (counts.waiting, counts.next_check);
            self.apply(&id, &mut entries, settled).await?;

            let (jobs, logged) = pending_jobs(campaign, &entries, round == 1, now);
            self.apply(&id, &mut entries, logged).await?;
            // Quiet hours, before anything is estimated or sent: what may not go now is held.
            let (jobs, holds) = hold_jobs(campaign, jobs, now, &mut run.zones);
            let holds = changed(&entries, &holds);
            self.apply(&id, &mut entries, holds).await?;
            if round == 1 && checks {
                self.check_before_sending(run, &jobs).await?;
            }
            if jobs.is_empty() {
                if waiting > 0 {
                    continue; // look again once the silence has lasted long enough
                }
                break;
            }
            let fleet = match scope {
                Scope::Whole => None,
                Scope::Leased(fleet, worker) => Some((fleet, worker)),
            };
            // The round's own stop: the run's, and a fleet worker's lost lease, which ends this
            // batch (its numbers are another worker's now) but not the worker, which leases on.
            let round_stop = run.stop.child_token();
            let state = Round {
                campaign,
                settings,
                limiter: &run.limiter,
                stop: &round_stop,
                started: run.started,
                counts: Mutex::new(Counts::new(&entries, &jobs)),
                queue: Mutex::new(jobs.into()),
                last_progress: Mutex::new(run.started),
                calls: AtomicU64::new(0),
                unknown_seen: AtomicBool::new(false),
                fatal: Mutex::new(None),
                zones: Mutex::new(std::mem::take(&mut run.zones)),
                fleet,
            };
            self.emit(&state, true);
            let workers = (settings.concurrency as usize).min(lock(&state.queue).len());
            let results =
                futures_util::future::join_all((0..workers).map(|_| self.worker(&state))).await;
            self.emit(&state, true);
            run.zones = std::mem::take(&mut *lock(&state.zones));
            run.stats.provider_calls += state.calls.load(Ordering::Relaxed);
            results.into_iter().collect::<Result<(), DispatchError>>()?;
            if let Some(error) = lock(&state.fatal).take() {
                return Err(DispatchError::Provider(error));
            }
            if round_stop.is_cancelled()
                || (!state.unknown_seen.load(Ordering::Relaxed) && waiting == 0)
            {
                break;
            }
        }
        Ok(waiting)
    }

    /// Before the first send: the queue warning and the budget check (which may refuse the run).
    async fn check_before_sending(
        &self,
        run: &mut RunState<'_>,
        jobs: &[Job],
    ) -> Result<(), DispatchError> {
        let estimate = Estimate::of(jobs, run.settings);
        let mut found = Vec::new();
        found.extend(queue_warning(&estimate, self.options.queue_window_seconds));
        if !jobs.is_empty() {
            let balance = self.provider.balance().await.map_err(|e| e.to_string());
            found.extend(check_budget(&estimate, run.settings, balance)?);
        }
        for warning in found {
            self.progress.on_warning(warning.clone());
            run.warnings.push(warning);
        }
        Ok(())
    }

    async fn apply(
        &self,
        id: &CampaignId,
        entries: &mut [RecordEntry],
        transitions: Vec<Transition>,
    ) -> Result<(), DispatchError> {
        if transitions.is_empty() {
            return Ok(());
        }
        for t in &transitions {
            // By seq, not by position: a fleet worker's entries are a subset of the records.
            if let Some(i) = plan::entry_index(entries, t.seq) {
                entries[i].state = t.state.clone();
            }
        }
        self.journal.apply(id.clone(), transitions).await?;
        Ok(())
    }

    async fn worker(&self, round: &Round<'_>) -> Result<(), DispatchError> {
        loop {
            if round.stop.is_cancelled() {
                return Ok(());
            }
            let Some(job) = lock(&round.queue).pop_front() else {
                return Ok(());
            };
            if let Err(error) = self.send_job(round, job).await {
                round.stop.cancel();
                return Err(error);
            }
        }
    }

    /// Waits for this send's slot: the process's own schedule (and any pause the provider asked
    /// for), and in a fleet the campaign's schedule booked in the journal. False when cancelled.
    async fn acquire(&self, round: &Round<'_>, cost: u32) -> Result<bool, DispatchError> {
        if !round.limiter.acquire(cost, round.stop).await {
            return Ok(false);
        }
        if let (Some((fleet, _)), RateLimit::MessagesPerSecond { .. })
        | (Some((fleet, _)), RateLimit::SegmentsPerSecond { .. }) =
            (round.fleet, round.settings.rate)
        {
            let wait = fleet
                .book(&round.campaign.id, round.settings.rate, cost)
                .await?;
            if !wait.is_zero() && !sleep_or_cancel(wait, round.stop).await {
                return Ok(false);
            }
        }
        Ok(!round.stop.is_cancelled())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(
            self.options
                .backoff_base_ms
                .saturating_mul(factor)
                .min(self.options.backoff_max_ms),
        )
    }

    /// The quiet-hours check of a job about to be sent: journals what may not go now (held, or
    /// blocked for an unknown zone) and returns what may.
    async fn quiet_check(&self, round: &Round<'_>, job: Job) -> Result<Option<Job>, DispatchError> {
        if round.campaign.settings.quiet_hours.is_none() {
            return Ok(Some(job));
        }
        let now = self.clock.now();
        let (left, transitions) = check_job(round.campaign, job, now, &mut lock(&round.zones));
        if !transitions.is_empty() {
            self.journal
                .apply(round.campaign.id.clone(), transitions.clone())
                .await?;
            {
                let mut counts = lock(&round.counts);
                for t in &transitions {
                    counts.settle(&t.state, 1);
                }
            }
            self.emit(round, false);
        }
        Ok(left)
    }

    async fn send_job(&self, round: &Round<'_>, job: Job) -> Result<(), DispatchError> {
        let id = &round.campaign.id;
        let cost = match round.settings.rate {
            RateLimit::SegmentsPerSecond { .. } => job.segments,
            _ => 1,
        };
        let mut job = job;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Quiet hours are read when the text is about to go: before waiting for a slot (a
            // run reaching 21:00 holds the rest at once, not one per slot) and after it.
            let Some(ready) = self.quiet_check(round, job).await? else {
                return Ok(());
            };
            if !self.acquire(round, cost).await? {
                return Ok(()); // cancelled: the record stays planned (or deferred)
            }
            let Some(ready) = self.quiet_check(round, ready).await? else {
                return Ok(());
            };
            job = ready;
            if let OptOutState::OptedOut { since } = self.store.state(job.number).await? {
                let reason = BlockReason::OptedOut {
                    number: job.number,
                    since,
                };
                return self
                    .settle(round, &job, RecordState::Blocked { reason })
                    .await;
            }
            let at = self.clock.now();
            let sending = RecordState::Sending { attempt, at };
            match round.fleet {
                None => {
                    self.journal
                        .apply(id.clone(), job.transitions(&sending))
                        .await?
                }
                Some((fleet, worker)) => {
                    match fleet
                        .begin_sending(id, worker, job.transitions(&sending))
                        .await
                    {
                        Ok(()) => {}
                        Err(JournalError::LeaseLost { seq, .. }) => {
                            // Another worker may hold the number now: it sends, not this one.
                            // The batch ends here (its leases expired together); the worker
                            // releases what it still holds and leases again.
                            tracing::warn!(
                                campaign = id.as_str(),
                                seq,
                                worker = worker.as_str(),
                                "lease lost before sending: left to the worker holding it"
                            );
                            round.stop.cancel();
                            return Ok(());
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            }
            round.calls.fetch_add(1, Ordering::Relaxed);
            let sms = OutboundSms::new(job.number, job.body.clone());
            let result = self.provider.send(&sms).await;
            let now = self.clock.now();
            let error = match result {
                Ok(accepted) => {
                    let state = RecordState::Accepted {
                        provider_id: accepted.provider_id,
                        segments: accepted.segments.unwrap_or(job.segments),
                        at: now,
                    };
                    return self.settle(round, &job, state).await;
                }
                Err(error) => error,
            };
            let failure = SendFailure::from(&error);
            tracing::debug!(
                campaign = id.as_str(),
                seq = job.seqs.first().copied().unwrap_or_default(),
                attempt,
                error = %error,
                "send refused or lost"
            );
            match &error {
                SendError::SlowDown { .. } | SendError::TryLater { .. } => {
                    let deferred = RecordState::Deferred { failure, at: now };
                    if attempt >= self.options.max_attempts {
                        return self.settle(round, &job, deferred).await;
                    }
                    // Known not sent: say so durably before waiting, so a cancel or a crash
                    // during the wait leaves a record a resume simply retries.
                    self.journal
                        .apply(id.clone(), job.transitions(&deferred))
                        .await?;
                    // A provider's Retry-After is honoured up to the longest backoff: a huge
                    // value must not stall every sender of the run.
                    let longest = Duration::from_millis(self.options.backoff_max_ms);
                    let wait = error
                        .retry_after()
                        .map(|asked| asked.min(longest))
                        .unwrap_or_else(|| self.backoff(attempt));
                    if matches!(error, SendError::SlowDown { .. }) {
                        round.limiter.pause(wait);
                    } else if !sleep_or_cancel(wait, round.stop).await {
                        return Ok(());
                    }
                }
                SendError::OptedOut { .. } => {
                    self.store
                        .record(OptOutChange {
                            number: job.number,
                            action: OptOutAction::Stop,
                            at: now,
                            source: ChangeSource::Provider,
                            message_sid: None,
                            body: None,
                        })
                        .await?;
                    let state = RecordState::Failed { failure, at: now };
                    return self.settle(round, &job, state).await;
                }
                SendError::BadRecipient { .. } => {
                    let state = RecordState::Failed { failure, at: now };
                    return self.settle(round, &job, state).await;
                }
                SendError::Unknown { message } => {
                    tracing::warn!(
                        campaign = id.as_str(),
                        seq = job.seqs.first().copied().unwrap_or_default(),
                        "send in doubt: the provider's answer was lost; reconciled before any resend"
                    );
                    round.unknown_seen.store(true, Ordering::Relaxed);
                    // The provider's silence about this call is measured from when its answer
                    // was lost, not from when the call began: a call that hung for the whole
                    // timeout may have created the message at its very end.
                    {
                        let answer_lost = Instant::now();
                        let mut silence = lock(&self.silence);
                        for &seq in &job.seqs {
                            silence.insert((seq, at.unix_ms()), answer_lost);
                        }
                    }
                    let state = RecordState::Unknown {
                        message: message.clone(),
                        sent_at: at,
                        at: now,
                    };
                    return self.settle(round, &job, state).await;
                }
                SendError::Configuration { .. } | SendError::Unsupported { .. } => {
                    // Refused up front, so not sent: the record goes back to planned and the
                    // whole run stops, since every other record would fail the same way.
                    self.journal
                        .apply(id.clone(), job.transitions(&RecordState::Planned))
                        .await?;
                    lock(&round.fatal).get_or_insert(error);
                    round.stop.cancel();
                    return Ok(());
                }
            }
        }
    }

    /// How much longer the provider must stay silent about `leftover` before its silence
    /// proves the text was not sent (`None`: long enough). Measured on the monotonic clock from
    /// the attempt (when this dispatcher made it) or from the first silent lookup, so neither a
    /// jump of the wall clock nor a crash and restart can shorten it.
    fn silence_remaining(
        &self,
        leftover: &reconcile::Leftover,
        now: Instant,
        settle: Duration,
    ) -> Option<Duration> {
        if settle.is_zero() {
            return None;
        }
        let keys: Vec<(u32, i64)> = leftover
            .seqs
            .iter()
            .map(|&seq| (seq, leftover.since.unix_ms()))
            .collect();
        let mut seen = lock(&self.silence);
        let since = keys.iter().filter_map(|k| seen.get(k).copied()).min();
        let since = since.unwrap_or_else(|| {
            for key in &keys {
                seen.insert(*key, now);
            }
            now
        });
        let silent_for = now.saturating_duration_since(since);
        if silent_for >= settle {
            for key in &keys {
                seen.remove(key);
            }
            None
        } else {
            Some(settle - silent_for)
        }
    }

    async fn settle(
        &self,
        round: &Round<'_>,
        job: &Job,
        state: RecordState,
    ) -> Result<(), DispatchError> {
        self.journal
            .apply(round.campaign.id.clone(), job.transitions(&state))
            .await?;
        lock(&round.counts).settle(&state, job.seqs.len() as u64);
        self.emit(round, false);
        Ok(())
    }

    fn emit(&self, round: &Round<'_>, force: bool) {
        let now = Instant::now();
        {
            let mut last = lock(&round.last_progress);
            let every = Duration::from_millis(self.options.progress_every_ms);
            if !force && now.duration_since(*last) < every {
                return;
            }
            *last = now;
        }
        let configured = match round.settings.rate {
            RateLimit::MessagesPerSecond { per_second } => Some(per_second),
            _ => None,
        };
        let elapsed =
            u64::try_from(now.duration_since(round.started).as_millis()).unwrap_or(u64::MAX);
        let snapshot = lock(&round.counts).snapshot(&round.campaign.id, elapsed, configured);
        self.progress.on_progress(snapshot);
    }
}

impl Job {
    fn transitions(&self, state: &RecordState) -> Vec<Transition> {
        self.seqs
            .iter()
            .map(|&seq| Transition {
                seq,
                state: state.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod quiet_tests;
#[cfg(test)]
mod tests;
