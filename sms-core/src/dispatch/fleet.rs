//! A fleet run: one worker of several sending one campaign through a shared journal
//! ([`FleetJournal`]): it leases a batch of numbers, works them as a run works a campaign
//! (reconcile what is in doubt, send what is pending), releases them, and takes the next batch,
//! until no number of the campaign has work left, whoever held it.

use std::time::Duration;

use super::outcome::RunStats;
use super::rate::{Limiter, sleep_or_cancel};
use super::{
    CancellationToken, DispatchError, DispatchSummary, Dispatcher, RunState, Scope, pending_jobs,
};
use crate::journal::{CampaignId, FleetJournal, Journal, RateLimit, WorkerId};
use crate::optout::OptOutStore;
use crate::provider::Provider;

/// The least a number left with work (in doubt, deferred) waits before it is leased again.
const MIN_HOLD: Duration = Duration::from_secs(1);

/// How a fleet worker leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetOptions {
    /// Numbers leased at a time.
    pub batch_numbers: u32,
    /// How long a lease lives unless renewed. A worker renews its leases every third of it
    /// while it works; a dead worker's numbers are taken over once it has passed. It must be
    /// longer than the longest provider call (so a live worker never loses a number mid-call).
    pub lease: Duration,
    /// How often a worker with nothing to lease looks again while other workers still hold
    /// numbers with work (one of them may die).
    pub poll: Duration,
    /// How long a number released with records still in doubt (or deferred) waits before a
    /// worker leases it again: a second at least, whatever is given.
    pub hold_in_doubt: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            batch_numbers: 50,
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(2),
            hold_in_doubt: Duration::from_secs(60),
        }
    }
}

impl<P, S, J> Dispatcher<P, S, J>
where
    P: Provider + ?Sized,
    S: OptOutStore + ?Sized,
    J: Journal + ?Sized,
{
    /// Works on a campaign as one worker of a fleet: several of these, in several processes or
    /// hosts sharing the journal, send it together, each number by one worker at a time, at the
    /// campaign's rate in total. Returns when no number of the campaign has work left (the
    /// report is the whole campaign's), when cancelled, or on a store or configuration error.
    ///
    /// Needs a journal with fleet operations ([`Journal::fleet`]); one without (SQLite, where
    /// one run at a time holds the file) is refused with [`DispatchError::InvalidSettings`].
    pub async fn run_fleet(
        &self,
        id: CampaignId,
        worker: WorkerId,
        options: FleetOptions,
        cancel: CancellationToken,
    ) -> Result<DispatchSummary, DispatchError> {
        let Some(fleet) = self.journal.fleet() else {
            return Err(DispatchError::InvalidSettings(
                "this store sends a campaign from one run at a time; a fleet needs a shared \
                 store (PostgreSQL)"
                    .to_owned(),
            ));
        };
        let campaign = self.journal.campaign(id.clone()).await?;
        let settings = self.settings_for(&campaign)?;
        tracing::info!(
            campaign = id.as_str(),
            worker = worker.as_str(),
            provider = self.provider.name(),
            "fleet worker started"
        );
        let mut run = RunState {
            campaign: &campaign,
            settings: &settings,
            // The rate is booked in the journal, shared by the fleet; the local limiter only
            // honours a pause the provider asked this worker for.
            limiter: Limiter::new(RateLimit::Unlimited),
            stop: cancel.child_token(),
            started: tokio::time::Instant::now(),
            stats: RunStats::default(),
            warnings: Vec::new(),
            zones: crate::quiet::ZoneCache::new(),
        };
        // The queue warning and the budget, once, over what is pending in the whole campaign.
        let entries = self.journal.records(id.clone()).await?;
        let (jobs, _) = pending_jobs(&campaign, &entries, true, self.clock.now());
        self.check_before_sending(&mut run, &jobs).await?;

        let stop = run.stop.clone();
        {
            let work = self.fleet_batches(fleet, &worker, options, &mut run);
            let renewing = renew_leases(fleet, &id, &worker, options.lease, &stop);
            // Renewal runs beside the work; when it fails (the database is gone) the work stops
            // where it is: records stay `sending`/`planned` and the next worker reconciles them.
            tokio::select! {
                result = work => result?,
                error = renewing => return Err(error),
            }
        }
        let (stats, warnings) = (run.stats, run.warnings);
        self.finish(id, &cancel, stats, warnings).await
    }

    async fn fleet_batches(
        &self,
        fleet: &dyn FleetJournal,
        worker: &WorkerId,
        options: FleetOptions,
        run: &mut RunState<'_>,
    ) -> Result<(), DispatchError> {
        let id = run.campaign.id.clone();
        while !run.stop.is_cancelled() {
            let entries = fleet
                .lease(&id, worker, options.batch_numbers.max(1), options.lease)
                .await?;
            if entries.is_empty() {
                let left = fleet.outstanding(&id).await?;
                if left.active == 0 {
                    break;
                }
                // Others hold what is left: wait, in case one of them dies.
                if !sleep_or_cancel(options.poll, &run.stop).await {
                    break;
                }
                continue;
            }
            let mut numbers: Vec<_> = entries
                .iter()
                .filter_map(|e| super::plan::eligible(run.campaign, e.seq).map(|(n, _, _)| n))
                .collect();
            numbers.sort_unstable();
            numbers.dedup();
            let waiting = self
                .rounds(run, Scope::Leased(fleet, worker), false)
                .await?;
            run.stats.reconciled_undecided += waiting;
            // What is still in doubt (or deferred: the provider said "later" as often as a
            // run tries) waits before another look, at least a second: with no wait at all a
            // worker would lease its own number again at once, never see the campaign without
            // active work, and never end while the provider kept refusing. A cancelled batch's
            // numbers go back at once.
            let hold = if run.stop.is_cancelled() {
                Duration::ZERO
            } else {
                options.hold_in_doubt.max(MIN_HOLD)
            };
            fleet.release(&id, worker, numbers, hold).await?;
        }
        Ok(())
    }
}

/// Renews `worker`'s leases every third of `lease` until cancelled; returns only on an error.
async fn renew_leases(
    fleet: &dyn FleetJournal,
    id: &CampaignId,
    worker: &WorkerId,
    lease: Duration,
    stop: &CancellationToken,
) -> DispatchError {
    let every = (lease / 3).max(Duration::from_millis(10));
    loop {
        if !sleep_or_cancel(every, stop).await {
            // Cancelled: the work ends by itself; wait for it.
            std::future::pending::<()>().await;
        }
        if let Err(error) = fleet.renew(id, worker, lease).await {
            tracing::warn!(
                campaign = id.as_str(),
                worker = worker.as_str(),
                %error,
                "could not renew leases: stopping this worker"
            );
            return error.into();
        }
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
