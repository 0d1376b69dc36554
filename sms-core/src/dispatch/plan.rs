//! What a run has to do, decided from the campaign and its journal entries: the jobs to send,
//! the estimate staff see, and the checks that refuse a run up front. Pure functions.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::DispatchError;
use crate::consent::BlockReason;
use crate::journal::{Campaign, CampaignSettings, RateLimit, RecordEntry, RecordState, Transition};
use crate::phone::PhoneNumber;
use crate::preview::{Money, PreviewOutcome};
use crate::provider::Balance;
use crate::quiet::{HeldSummary, Hold, UnknownTimeZone, ZoneCache};
use crate::time::Timestamp;

/// One provider call to make: one record, or under `once_per_number` every pending record with
/// this number and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) seqs: Vec<u32>,
    pub(crate) number: PhoneNumber,
    pub(crate) body: String,
    pub(crate) segments: u32,
}

/// The jobs still to send, and (under `once_per_number`) transitions that log pending records
/// against a text their number already received with the same body.
pub(crate) fn pending_jobs(
    campaign: &Campaign,
    entries: &[RecordEntry],
    include_deferred: bool,
    now: Timestamp,
) -> (Vec<Job>, Vec<Transition>) {
    let once = campaign.settings.once_per_number;
    let mut jobs: Vec<Job> = Vec::new();
    let mut by_key: HashMap<(PhoneNumber, &str), usize> = HashMap::new();
    let mut sent: HashMap<(PhoneNumber, &str), (&str, u32)> = HashMap::new();
    if once {
        for entry in entries {
            if let (
                RecordState::Accepted {
                    provider_id,
                    segments,
                    ..
                },
                Some((number, body, _)),
            ) = (&entry.state, eligible(campaign, entry.seq))
            {
                sent.insert((number, body), (provider_id, *segments));
            }
        }
    }
    let mut logged = Vec::new();
    for entry in entries {
        let pending = match entry.state {
            // A held record is known not sent: whether it may go now is for `hold_jobs`.
            RecordState::Planned | RecordState::Held { .. } => true,
            RecordState::Deferred { .. } => include_deferred,
            _ => false,
        };
        let Some((number, body, segments)) = eligible(campaign, entry.seq).filter(|_| pending)
        else {
            continue;
        };
        if once {
            if let Some((provider_id, segments)) = sent.get(&(number, body)) {
                logged.push(Transition {
                    seq: entry.seq,
                    state: RecordState::Accepted {
                        provider_id: (*provider_id).to_owned(),
                        segments: *segments,
                        at: now,
                    },
                });
                continue;
            }
            if let Some(&index) = by_key.get(&(number, body)) {
                jobs[index].seqs.push(entry.seq);
                continue;
            }
            by_key.insert((number, body), jobs.len());
        }
        jobs.push(Job {
            seqs: vec![entry.seq],
            number,
            body: body.to_owned(),
            segments,
        });
    }
    (jobs, logged)
}

/// Splits `jobs` by the campaign's quiet hours at `now`: the jobs that may go, and the
/// transitions holding the others ([`RecordState::Held`], or blocked when a record's zone is
/// unknown). A campaign without quiet hours sends everything.
pub(crate) fn hold_jobs(
    campaign: &Campaign,
    jobs: Vec<Job>,
    now: Timestamp,
    zones: &mut ZoneCache,
) -> (Vec<Job>, Vec<Transition>) {
    if campaign.settings.quiet_hours.is_none() {
        return (jobs, Vec::new());
    }
    let mut go = Vec::with_capacity(jobs.len());
    let mut holds = Vec::new();
    for job in jobs {
        let (left, transitions) = check_job(campaign, job, now, zones);
        go.extend(left);
        holds.extend(transitions);
    }
    (go, holds)
}

/// `transitions` without those that would only rewrite a hold already journaled (same
/// opening, same zone): a resume before the opening writes nothing.
pub(crate) fn changed(entries: &[RecordEntry], transitions: &[Transition]) -> Vec<Transition> {
    transitions
        .iter()
        .filter(|t| {
            let current = entry_index(entries, t.seq).map(|i| &entries[i].state);
            !same_hold(current, &t.state)
        })
        .cloned()
        .collect()
}

/// Where the record `seq` is in `entries`: a whole campaign's entries are indexed by seq, but a
/// fleet worker's are only the records of the numbers it leased (a subset, by seq), so the
/// position is looked up, never assumed.
pub(crate) fn entry_index(entries: &[RecordEntry], seq: u32) -> Option<usize> {
    match entries.get(seq as usize) {
        Some(entry) if entry.seq == seq => Some(seq as usize),
        _ => entries
            .binary_search_by_key(&seq, |e| e.seq)
            .ok()
            .or_else(|| entries.iter().position(|e| e.seq == seq)),
    }
}

/// Whether `current` is already the hold `next` would write (only the time of holding differs).
fn same_hold(current: Option<&RecordState>, next: &RecordState) -> bool {
    match (current, next) {
        (
            Some(RecordState::Held {
                until, time_zone, ..
            }),
            RecordState::Held {
                until: next_until,
                time_zone: next_zone,
                ..
            },
        ) => until == next_until && time_zone == next_zone,
        _ => false,
    }
}

/// The quiet-hours check of one job, made when it is about to be sent: the job left to send
/// (`None` when nothing of it may go now) and the transitions for the rest. A record whose zone
/// is unknown is blocked (never texted in another zone's hours); when any record of the job
/// is in quiet hours the whole job waits (under `once_per_number` one text serves them all),
/// until the latest of their openings.
pub(crate) fn check_job(
    campaign: &Campaign,
    mut job: Job,
    now: Timestamp,
    zones: &mut ZoneCache,
) -> (Option<Job>, Vec<Transition>) {
    let Some(rule) = &campaign.settings.quiet_hours else {
        return (Some(job), Vec::new());
    };
    let mut transitions = Vec::new();
    let mut hold: Option<Hold> = None;
    job.seqs.retain(|&seq| {
        let zone = campaign
            .items
            .get(seq as usize)
            .and_then(|item| item.time_zone.as_deref());
        match zones.hold(rule, zone, now) {
            Ok(None) => true,
            Ok(Some(h)) => {
                if hold.as_ref().is_none_or(|held| h.until > held.until) {
                    hold = Some(h);
                }
                true
            }
            Err(UnknownTimeZone(time_zone)) => {
                transitions.push(Transition {
                    seq,
                    state: RecordState::Blocked {
                        reason: BlockReason::UnknownTimeZone { time_zone },
                    },
                });
                false
            }
        }
    });
    match hold {
        Some(Hold { until, time_zone }) => {
            transitions.extend(job.seqs.iter().map(|&seq| Transition {
                seq,
                state: RecordState::Held {
                    until,
                    time_zone: time_zone.clone(),
                    at: now,
                },
            }));
            (None, transitions)
        }
        None if job.seqs.is_empty() => (None, transitions),
        None => (Some(job), transitions),
    }
}

/// The number, body and segments of an eligible record.
pub(crate) fn eligible(campaign: &Campaign, seq: u32) -> Option<(PhoneNumber, &str, u32)> {
    match &campaign.items.get(seq as usize)?.outcome {
        PreviewOutcome::Eligible {
            number,
            body,
            segments,
            ..
        } => Some((*number, body.as_str(), *segments)),
        PreviewOutcome::Blocked { .. } => None,
    }
}

/// What is left to send, before a run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Records still to send.
    pub records: u64,
    /// Provider calls still to make (fewer than `records` under `once_per_number`).
    pub texts: u64,
    /// Message units (segments) they use.
    pub units: u64,
    /// Their cost, when a price per segment is configured.
    pub cost: Option<Money>,
    /// How long they take at the configured rate, in seconds (`None` when unlimited).
    pub duration_seconds: Option<f64>,
    /// Records quiet hours hold now (not counted above), and when they may go.
    #[serde(default)]
    pub held: Option<HeldSummary>,
}

impl Estimate {
    /// The estimate for `jobs` under `settings`.
    pub(crate) fn of(jobs: &[Job], settings: &CampaignSettings) -> Estimate {
        let texts = jobs.len() as u64;
        let units: u64 = jobs.iter().map(|j| u64::from(j.segments)).sum();
        let duration_seconds = match settings.rate {
            RateLimit::Unlimited => None,
            RateLimit::MessagesPerSecond { per_second } => Some(texts as f64 / per_second),
            RateLimit::SegmentsPerSecond { per_second } => Some(units as f64 / per_second),
        };
        Estimate {
            records: jobs.iter().map(|j| j.seqs.len() as u64).sum(),
            texts,
            units,
            cost: settings.price_per_segment.as_ref().map(|p| p.times(units)),
            duration_seconds,
            held: None,
        }
    }

    /// Adds the records `holds` (transitions from [`hold_jobs`]) hold.
    pub(crate) fn with_holds(mut self, holds: &[Transition]) -> Estimate {
        self.held = HeldSummary::of(holds.iter().filter_map(|t| match &t.state {
            RecordState::Held {
                until, time_zone, ..
            } => Some((*until, time_zone.as_str())),
            _ => None,
        }));
        self
    }
}

/// Something staff should know before or during a run; the run goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum DispatchWarning {
    /// At the configured rate the campaign takes longer than Twilio keeps a message queued.
    QueueWindowExceeded {
        /// Texts to send.
        texts: u64,
        /// Estimated duration in seconds.
        estimated_seconds: u64,
        /// The window in seconds.
        window_seconds: u64,
    },
    /// The cost could not be compared with the provider's balance.
    BalanceNotChecked {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for DispatchWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchWarning::QueueWindowExceeded {
                texts,
                estimated_seconds,
                window_seconds,
            } => write!(
                f,
                "{texts} texts at the configured rate take about {:.1} hours, longer than the \
                 {:.0}-hour window Twilio keeps a message queued: raise the rate (more senders) \
                 or split the campaign",
                *estimated_seconds as f64 / 3600.0,
                *window_seconds as f64 / 3600.0
            ),
            DispatchWarning::BalanceNotChecked { reason } => {
                write!(f, "the balance was not checked: {reason}")
            }
        }
    }
}

/// The warnings for an estimate: the queue window.
pub(crate) fn queue_warning(estimate: &Estimate, window_seconds: u64) -> Option<DispatchWarning> {
    let seconds = estimate.duration_seconds?;
    (seconds > window_seconds as f64).then(|| DispatchWarning::QueueWindowExceeded {
        texts: estimate.texts,
        estimated_seconds: seconds.ceil() as u64,
        window_seconds,
    })
}

/// Refuses a run whose units exceed the configured budget or the provider's balance. Returns a
/// warning when the balance could not be compared.
pub(crate) fn check_budget(
    estimate: &Estimate,
    settings: &CampaignSettings,
    balance: Result<Option<Balance>, String>,
) -> Result<Option<DispatchWarning>, DispatchError> {
    if let Some(budget) = settings.budget_units
        && estimate.units > budget
    {
        return Err(DispatchError::OverBudget {
            needed_units: estimate.units,
            budget_units: budget,
        });
    }
    let not_checked = |reason: String| Ok(Some(DispatchWarning::BalanceNotChecked { reason }));
    let balance = match balance {
        Ok(Some(balance)) => balance,
        Ok(None) => return Ok(None),
        Err(reason) => return not_checked(format!("the provider did not say ({reason})")),
    };
    let (Some(price), Some(cost)) = (&settings.price_per_segment, &estimate.cost) else {
        return not_checked("no price per segment is configured".to_owned());
    };
    let Some(available) = Money::parse(&balance.amount, &balance.currency) else {
        return not_checked(format!("unreadable balance {:?}", balance.amount));
    };
    if available.currency != price.currency {
        return not_checked(format!(
            "the balance is in {} and the price in {}",
            available.currency, price.currency
        ));
    }
    if cost.micros > available.micros {
        let affordable = if price.micros > 0 {
            (available.micros.max(0) / price.micros) as u64
        } else {
            u64::MAX
        };
        return Err(DispatchError::OverBalance {
            needed_units: estimate.units,
            needed_cost: cost.clone(),
            balance: available,
            affordable_units: affordable,
        });
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(units: u64) -> Estimate {
        Estimate {
            records: units,
            texts: units,
            units,
            cost: Money::parse("0.0083", "USD").map(|p| p.times(units)),
            duration_seconds: Some(units as f64),
            held: None,
        }
    }

    fn settings() -> CampaignSettings {
        CampaignSettings {
            provider: None,
            price_per_segment: Money::parse("0.0083", "USD"),
            ..CampaignSettings::default()
        }
    }

    #[test]
    fn refuses_with_the_numbers_when_the_balance_is_short() {
        let balance = Balance {
            amount: "1.00".into(),
            currency: "USD".into(),
        };
        let err = check_budget(&estimate(200), &settings(), Ok(Some(balance.clone())))
            .expect_err("200 units cost 1.66 USD");
        assert_eq!(
            err.to_string(),
            "this campaign needs 200 message units (1.66 USD) but the provider balance is \
             1.00 USD (enough for 120 units)"
        );
        assert_eq!(
            check_budget(&estimate(100), &settings(), Ok(Some(balance))).expect("affordable"),
            None
        );
        let budget = CampaignSettings {
            provider: None,
            budget_units: Some(50),
            ..settings()
        };
        assert_eq!(
            check_budget(&estimate(51), &budget, Ok(None))
                .expect_err("over budget")
                .to_string(),
            "this campaign needs 51 message units but the configured budget is 50"
        );
    }

    #[test]
    fn warns_past_the_ten_hour_queue_window() {
        let warning = queue_warning(&estimate(40_000), 36_000).expect("11.1 hours");
        assert!(warning.to_string().starts_with("40000 texts"), "{warning}");
        assert_eq!(queue_warning(&estimate(100), 36_000), None);
    }
}
