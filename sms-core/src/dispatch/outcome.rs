//! What a run returns: its summary, or why it did not start or stopped.

use serde::{Deserialize, Serialize};

use super::plan::DispatchWarning;
use crate::journal::{CampaignReport, JournalError};
use crate::optout::StoreError;
use crate::preview::Money;
use crate::provider::SendError;

/// Why a run did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The journal failed; records in flight are reconciled on the next run.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The opt-out store failed; nothing was sent to a number whose state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The campaign needs more units than the configured budget. Nothing was sent.
    #[error(
        "this campaign needs {needed_units} message units but the configured budget is {budget_units}"
    )]
    OverBudget {
        /// Units the remaining texts use.
        needed_units: u64,
        /// The budget.
        budget_units: u64,
    },
    /// The campaign costs more than the provider's balance. Nothing was sent.
    #[error(
        "this campaign needs {needed_units} message units ({needed_cost}) but the provider \
         balance is {balance} (enough for {affordable_units} units)"
    )]
    OverBalance {
        /// Units the remaining texts use.
        needed_units: u64,
        /// What they cost.
        needed_cost: Money,
        /// The balance.
        balance: Money,
        /// Units the balance pays for.
        affordable_units: u64,
    },
    /// The provider refused the account or the request (credentials, sender): fix the
    /// configuration. The record being sent stays planned.
    #[error("the provider refused the configuration: {0}")]
    Provider(SendError),
    /// The campaign was created longer ago than `DispatchOptions::max_campaign_age_ms`. A run
    /// re-checks STOPs only; the host's filter (program year, permissions) decided long ago.
    #[error(
        "campaign {campaign} was created {age_hours} h ago, longer ago than the {max_hours} h a \
         campaign may be run: a resume re-checks only STOPs, not the program year and \
         permissions the host's filter decided, which may have changed since; preview it again \
         as a new campaign, or allow an older campaign explicitly"
    )]
    TooOld {
        /// The campaign.
        campaign: crate::journal::CampaignId,
        /// Its age in whole hours.
        age_hours: u64,
        /// The limit in whole hours.
        max_hours: u64,
    },
    /// The settings cannot work (a rate of zero).
    #[error("invalid dispatch settings: {0}")]
    InvalidSettings(String),
}

/// What one run did, besides the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Provider `send` calls made.
    pub provider_calls: u64,
    /// Records found sent by reconciliation.
    pub reconciled_sent: u64,
    /// Records proven not sent by reconciliation (planned again).
    pub reconciled_not_sent: u64,
    /// Records reconciliation could not decide (left for a person).
    pub reconciled_undecided: u64,
    /// Reconcile-and-send rounds made.
    pub rounds: u32,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchSummary {
    /// The campaign's report after the run.
    pub report: CampaignReport,
    /// Whether the run stopped because it was cancelled.
    pub cancelled: bool,
    /// Warnings given during the run.
    pub warnings: Vec<DispatchWarning>,
    /// What the run did.
    pub stats: RunStats,
}
