//! Sending what is due, exactly once, through the campaigns' journaled dispatcher.
//!
//! One run ([`AlertRunner::run_due`]):
//! 1. finishes every batch an earlier run left open (a crash, a stop, an unknown outcome):
//!    its campaign is created in the journal if the crash came before that, then run; the
//!    dispatcher reconciles records left in doubt with the provider, never a blind resend;
//! 2. evaluates the pending alerts at `now` ([`super::evaluate`]); those that will never go are
//!    finished with their reason, those that wait stay pending;
//! 3. claims the alerts to send, atomically, into a new batch bound to a campaign id (stored
//!    with the rendered texts), creates that campaign, runs it, and settles each alert from
//!    its journal record (accepted, blocked at send time by a STOP, failed). A record not
//!    final yet keeps its alert claimed: the next run resumes the batch.
//!
//! A crash between any two steps leaves either pending alerts (not claimed: evaluated again)
//! or a claimed batch (sent through its campaign, whose journal says what went out): never a
//! second claim of one alert, so never a second text, and never a lost one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::store::AlertOutcome;
use super::{
    AlertBatch, AlertConfig, AlertReason, AlertStore, AlertStoreError, AlertTemplates, Decision,
    DueInputs, SectionFacts, SubscriptionBook, evaluate,
};
use crate::consent::AlertKind;
use crate::dispatch::{
    CancellationToken, Clock, DispatchError, DispatchOptions, Dispatcher, NoProgress, Progress,
    SystemClock,
};
use crate::journal::{Campaign, CampaignId, CampaignSettings, Journal, JournalError, RecordState};
use crate::optout::{OptOutStore, StoreError};
use crate::phone::Region;
use crate::preview::{PreviewItem, PreviewOutcome};
use crate::recipient::RecordId;
use crate::time::Timestamp;

/// Why a run stopped before deciding everything.
#[derive(Debug, thiserror::Error)]
pub enum AlertRunError {
    /// The alert store failed.
    #[error(transparent)]
    Store(#[from] AlertStoreError),
    /// The opt-out store failed (nothing was sent).
    #[error(transparent)]
    OptOuts(#[from] StoreError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The dispatcher stopped (the provider's configuration, the journal...).
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
}

/// One alert in a run's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRunLine {
    /// The store's id of the alert.
    pub alert_id: u64,
    /// Its event.
    pub event_id: String,
    /// Its kind.
    pub kind: AlertKind,
    /// Its record.
    pub record_id: RecordId,
    /// `sent`, `failed`, `wait`, `never` or `in_doubt` (claimed, outcome not final yet).
    pub action: String,
    /// The reason's code, the provider id, or the failure class.
    pub code: String,
    /// Readable detail.
    pub detail: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRunReport {
    /// The rule time of the run.
    pub now: Option<Timestamp>,
    /// Campaigns (batches) this run sent or resumed.
    pub batches: Vec<CampaignId>,
    /// Alerts the provider took.
    pub sent: u64,
    /// Alerts the provider refused for good.
    pub failed: u64,
    /// Alerts that wait (not due, quiet hours, cap).
    pub waiting: u64,
    /// Alerts that will never go, by reason code.
    pub never: BTreeMap<String, u64>,
    /// Alerts claimed whose outcome is not final yet (unknown, deferred, stopped): the next run
    /// finishes them.
    pub in_doubt: u64,
    /// Batches another run is sending right now, left to it.
    pub busy: Vec<CampaignId>,
    /// Batches that could not be run (too old for the dispatcher...), with why.
    pub stuck: Vec<(CampaignId, String)>,
    /// Another run claimed some of the alerts this one meant to send (it sends them); why.
    pub claim_conflict: Option<String>,
    /// Whether the run was cancelled.
    pub cancelled: bool,
    /// Each alert decided or settled by this run.
    pub lines: Vec<AlertRunLine>,
}

impl AlertRunReport {
    /// Alerts that will never go, whatever the reason.
    pub fn never_total(&self) -> u64 {
        self.never.values().sum()
    }

    /// The run's counts as one line says them: `sent 3, failed 0, waiting 1, never 2, in
    /// doubt 0` (what `sms alerts run` prints and `sms serve` logs).
    pub fn counts(&self) -> String {
        format!(
            "sent {}, failed {}, waiting {}, never {}, in doubt {}",
            self.sent,
            self.failed,
            self.waiting,
            self.never_total(),
            self.in_doubt
        )
    }

    /// The batches' campaign ids, comma-separated.
    pub fn batch_list(&self) -> String {
        let ids: Vec<&str> = self.batches.iter().map(CampaignId::as_str).collect();
        ids.join(", ")
    }

    /// Whether every alert this run touched has a final outcome or waits for a known reason:
    /// what the CLI's exit status reports (as `sms send`: 0, else 3).
    pub fn is_complete(&self) -> bool {
        self.in_doubt == 0
            && self.busy.is_empty()
            && self.stuck.is_empty()
            && self.claim_conflict.is_none()
            && !self.cancelled
    }
}

/// Sends what is due: the library call behind `sms alerts run` and the service's scheduler.
pub struct AlertRunner<P: ?Sized, O: ?Sized, J: ?Sized, A: ?Sized> {
    provider: Arc<P>,
    opt_outs: Arc<O>,
    journal: Arc<J>,
    alerts: Arc<A>,
    config: AlertConfig,
    region: Region,
    settings: CampaignSettings,
    options: DispatchOptions,
    clock: Arc<dyn Clock>,
    progress: Arc<dyn Progress>,
}

impl<P: ?Sized, O: ?Sized, J: ?Sized, A: ?Sized> std::fmt::Debug for AlertRunner<P, O, J, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertRunner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<P, O, J, A> AlertRunner<P, O, J, A>
where
    P: crate::Provider + ?Sized,
    O: OptOutStore + ?Sized,
    J: Journal + ?Sized,
    A: AlertStore + ?Sized,
{
    /// A runner over these edges, with the default configuration, campaign settings and
    /// dispatch options, and the system clock for the journal's timestamps.
    pub fn new(provider: Arc<P>, opt_outs: Arc<O>, journal: Arc<J>, alerts: Arc<A>) -> Self {
        AlertRunner {
            provider,
            opt_outs,
            journal,
            alerts,
            config: AlertConfig::default(),
            region: Region::default(),
            settings: CampaignSettings::default(),
            options: DispatchOptions::default(),
            clock: Arc::new(SystemClock),
            progress: Arc::new(NoProgress),
        }
    }

    /// Uses this timing and cap configuration.
    pub fn with_config(mut self, config: AlertConfig) -> Self {
        self.config = config;
        self
    }

    /// Reads numbers typed without a country code in `region`.
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Sends batches with these settings (rate, concurrency); the provider's name and identity
    /// are filled in.
    pub fn with_settings(mut self, settings: CampaignSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Runs the dispatcher with these options.
    pub fn with_options(mut self, options: DispatchOptions) -> Self {
        self.options = options;
        self
    }

    /// Uses `clock` for the journal's timestamps (the rules use the `now` of each run).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports the dispatcher's progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Finishes open batches, then decides every pending alert at `now` and sends what is due.
    pub async fn run_due(
        &self,
        now: Timestamp,
        cancel: CancellationToken,
    ) -> Result<AlertRunReport, AlertRunError> {
        let mut report = AlertRunReport {
            now: Some(now),
            ..AlertRunReport::default()
        };
        for batch in self.alerts.open_batches().await? {
            if cancel.is_cancelled() {
                break;
            }
            self.send_batch(&batch, now, &cancel, &mut report).await?;
        }
        if cancel.is_cancelled() {
            report.cancelled = true;
            return Ok(report);
        }

        let pending = self.alerts.pending().await?;
        let scheduled: Vec<_> = pending.iter().map(|s| s.alert.clone()).collect();
        let templates = AlertTemplates::new(self.alerts.templates().await?);
        let subscriptions =
            SubscriptionBook::from_history(&self.alerts.subscription_history(None).await?);
        let opt_outs = self.opt_outs.snapshot().await?;
        let since = Timestamp::from_unix_ms(now.unix_ms().saturating_sub(24 * 3_600_000));
        let recent = self.alerts.recent_sends(since).await?;
        let sections = SectionFacts::from_events(&self.alerts.events().await?);
        let inputs = DueInputs {
            config: &self.config,
            templates: &templates,
            subscriptions: &subscriptions,
            opt_outs: &opt_outs,
            recent: &recent,
            sections: &sections,
            region: self.region,
        };
        let mut finals = Vec::new();
        let mut claims = Vec::new();
        for evaluation in evaluate(&scheduled, &inputs, now) {
            let stored = &pending[evaluation.index];
            let line = |action: &str, code: &str, detail: String| AlertRunLine {
                alert_id: stored.id,
                event_id: stored.alert.event_id.to_string(),
                kind: stored.alert.kind,
                record_id: stored.alert.record_id().clone(),
                action: action.to_owned(),
                code: code.to_owned(),
                detail,
            };
            match evaluation.decision {
                Decision::Send {
                    number,
                    body,
                    encoding,
                    segments,
                } => {
                    let recipient = &stored.alert.recipient;
                    claims.push((
                        stored.id,
                        PreviewItem {
                            record_id: recipient.record_id.clone(),
                            kind: recipient.kind.record_kind(),
                            name: recipient.display_name(),
                            mobile: recipient.mobile.clone(),
                            // The alert rules timed it (quiet hours per kind, urgent
                            // cancellations): its batch has no quiet-hours rule of its own.
                            time_zone: None,
                            outcome: PreviewOutcome::Eligible {
                                number,
                                body,
                                encoding,
                                segments,
                            },
                        },
                    ));
                }
                Decision::Wait { reason } => {
                    report.waiting += 1;
                    report
                        .lines
                        .push(line("wait", reason.code(), reason.to_string()));
                }
                Decision::Never { reason } => {
                    *report.never.entry(reason.code().to_owned()).or_default() += 1;
                    report
                        .lines
                        .push(line("never", reason.code(), reason.to_string()));
                    finals.push((stored.id, AlertOutcome::Never { reason }));
                }
            }
        }
        if !finals.is_empty() {
            self.alerts.finish(finals, now).await?;
        }
        if !claims.is_empty() {
            match self.alerts.claim_batch(now, claims).await {
                Ok(batch) => self.send_batch(&batch, now, &cancel, &mut report).await?,
                // Another run (the service, a second `sms alerts run`) claimed some of them
                // first: nothing of this claim was recorded, and that run sends them.
                Err(AlertStoreError::Conflict(why)) => report.claim_conflict = Some(why),
                Err(error) => return Err(error.into()),
            }
        }
        report.cancelled = cancel.is_cancelled();
        Ok(report)
    }

    /// Creates the batch's campaign when it does not exist yet, runs it, and settles its alerts
    /// from the journal.
    async fn send_batch(
        &self,
        batch: &AlertBatch,
        now: Timestamp,
        cancel: &CancellationToken,
        report: &mut AlertRunReport,
    ) -> Result<(), AlertRunError> {
        let id = batch.campaign_id.clone();
        let campaign = Campaign {
            id: id.clone(),
            name: format!("MyAccount alerts ({} text(s))", batch.items.len()),
            created_at: self.clock.now(),
            template: "MyAccount alerts (one wording per kind)".to_owned(),
            settings: CampaignSettings {
                provider: Some(self.provider.name().to_owned()),
                provider_identity: Some(self.provider.identity()),
                ..self.settings.clone()
            },
            items: batch.items.clone(),
        };
        match self.journal.create_campaign(campaign).await {
            // Created by the run that claimed the batch, before it stopped: resume it.
            Ok(()) | Err(JournalError::CampaignExists(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let dispatcher = Dispatcher::new(
            self.provider.clone(),
            self.opt_outs.clone(),
            self.journal.clone(),
        )
        .with_options(self.options.clone())
        .with_clock(self.clock.clone())
        .with_progress(self.progress.clone());
        match dispatcher.run(id.clone(), cancel.clone()).await {
            Ok(_) => {}
            Err(DispatchError::Journal(JournalError::CampaignBusy(_))) => {
                report.busy.push(id);
                return Ok(());
            }
            Err(error @ DispatchError::TooOld { .. }) => {
                report.stuck.push((id, error.to_string()));
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        report.batches.push(id.clone());
        let entries = self.journal.records(id.clone()).await?;
        let all = self.alerts.all_alerts().await?;
        let mut outcomes = Vec::new();
        for entry in entries {
            let Some(alert_id) = batch.alerts.get(entry.seq as usize).copied() else {
                continue;
            };
            // Only alerts still claimed are this run's to settle and report: a resumed batch
            // holds alerts an earlier run settled already.
            let Some(stored) = all
                .iter()
                .find(|a| a.id == alert_id)
                .filter(|a| matches!(a.status, super::AlertStatus::Claimed { .. }))
            else {
                continue;
            };
            let line = |action: &str, code: &str, detail: String| AlertRunLine {
                alert_id,
                event_id: stored.alert.event_id.to_string(),
                kind: stored.alert.kind,
                record_id: stored.alert.record_id().clone(),
                action: action.to_owned(),
                code: code.to_owned(),
                detail,
            };
            let number = batch
                .items
                .get(entry.seq as usize)
                .and_then(super::store::item_number);
            let outcome = match (&entry.state, number) {
                (RecordState::Accepted { provider_id, .. }, Some(number)) => {
                    report.sent += 1;
                    report
                        .lines
                        .push(line("sent", "sent", format!("to {number} ({provider_id})")));
                    AlertOutcome::Sent {
                        number,
                        provider_id: provider_id.clone(),
                        campaign_id: id.clone(),
                    }
                }
                (RecordState::Blocked { reason }, _) => {
                    let reason = AlertReason::Blocked {
                        reason: reason.clone(),
                    };
                    *report.never.entry(reason.code().to_owned()).or_default() += 1;
                    report
                        .lines
                        .push(line("never", reason.code(), reason.to_string()));
                    AlertOutcome::Never { reason }
                }
                (RecordState::Failed { failure, .. }, _) => {
                    report.failed += 1;
                    report
                        .lines
                        .push(line("failed", &failure.class, failure.message.clone()));
                    AlertOutcome::Failed {
                        failure: failure.clone(),
                    }
                }
                (state, _) => {
                    report.in_doubt += 1;
                    report.lines.push(line(
                        "in_doubt",
                        state.code(),
                        format!(
                            "campaign {id} record #{}: finished by the next run",
                            entry.seq
                        ),
                    ));
                    continue;
                }
            };
            outcomes.push((alert_id, outcome));
        }
        if !outcomes.is_empty() {
            self.alerts.settle(outcomes, now).await?;
        }
        Ok(())
    }
}
