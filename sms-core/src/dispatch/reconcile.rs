//! Reconciliation: deciding, through the provider's history, what became of calls whose answer
//! was lost (a crash while `sending`, or an `Unknown` outcome).
//!
//! The rule is conservative, because resending a text that did go out is the one mistake this
//! library must not make:
//! - a message to the number since the attempt, with the same body (or a redacted one), not
//!   already logged against another record: it was sent, the record is accepted;
//! - no message at all to the number since the attempt: the provider proves it was not sent,
//!   the record is planned again;
//! - anything else (messages that do not match, the history unavailable): a person decides.

use std::collections::{BTreeMap, HashSet};

use super::plan::eligible;
use crate::journal::{Campaign, Journal, RecordEntry, RecordState, Transition};
use crate::phone::PhoneNumber;
use crate::provider::{Provider, SentMessage};
use crate::time::Timestamp;

/// A call whose outcome is not known: one record, or a `once_per_number` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leftover {
    pub(crate) seqs: Vec<u32>,
    pub(crate) number: PhoneNumber,
    pub(crate) body: String,
    pub(crate) segments: u32,
    pub(crate) since: Timestamp,
}

/// What the history says about one leftover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Sent {
        provider_id: String,
        segments: Option<u32>,
    },
    NotSent,
    CannotTell(String),
}

/// The leftovers of a campaign, by number.
pub(crate) fn leftovers(
    campaign: &Campaign,
    entries: &[RecordEntry],
) -> BTreeMap<PhoneNumber, Vec<Leftover>> {
    let mut by_number: BTreeMap<PhoneNumber, Vec<Leftover>> = BTreeMap::new();
    for entry in entries {
        let since = match entry.state {
            RecordState::Sending { at, .. } => at,
            RecordState::Unknown { sent_at, .. } => sent_at,
            _ => continue,
        };
        let Some((number, body, segments)) = eligible(campaign, entry.seq) else {
            continue;
        };
        let list = by_number.entry(number).or_default();
        // Under once_per_number one call carried every record with this body.
        if campaign.settings.once_per_number
            && let Some(group) = list.iter_mut().find(|l| l.body == body)
        {
            group.seqs.push(entry.seq);
            group.since = group.since.min(since);
            continue;
        }
        list.push(Leftover {
            seqs: vec![entry.seq],
            number,
            body: body.to_owned(),
            segments,
            since,
        });
    }
    by_number
}

/// Matches the leftovers of one number against its history.
pub(crate) fn match_history(
    leftovers: &[Leftover],
    found: &[SentMessage],
    known_ids: &HashSet<&str>,
    skew_ms: i64,
) -> Vec<Verdict> {
    let in_window = |m: &SentMessage, since: Timestamp| {
        m.created_at
            .is_none_or(|at| at.unix_ms() >= since.unix_ms() - skew_ms)
    };
    let mut taken: Vec<bool> = found
        .iter()
        .map(|m| known_ids.contains(m.provider_id.as_str()))
        .collect();
    let mut verdicts: Vec<Option<Verdict>> = vec![None; leftovers.len()];
    // The latest attempt chooses first: every message in its window is also in the windows of
    // earlier attempts, so an earlier attempt can never be left without the older message it
    // made because a later one took it (which would resend it).
    let mut order: Vec<usize> = (0..leftovers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(leftovers[i].since));
    // Exact body matches first, then redacted bodies, so a redacted message cannot steal the
    // match of a record whose body is visible.
    for exact in [true, false] {
        for &index in &order {
            let (leftover, verdict) = (&leftovers[index], &mut verdicts[index]);
            if verdict.is_some() {
                continue;
            }
            let hit = found.iter().enumerate().find(|(i, m)| {
                !taken[*i]
                    && in_window(m, leftover.since)
                    && match &m.body {
                        Some(body) => exact && *body == leftover.body,
                        None => !exact,
                    }
            });
            if let Some((i, m)) = hit {
                taken[i] = true;
                *verdict = Some(Verdict::Sent {
                    provider_id: m.provider_id.clone(),
                    segments: m.segments,
                });
            }
        }
    }
    verdicts
        .into_iter()
        .zip(leftovers)
        .map(|(verdict, leftover)| {
            verdict.unwrap_or_else(|| {
                let others = found
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| !taken[*i] && in_window(m, leftover.since))
                    .count();
                if others == 0 {
                    Verdict::NotSent
                } else {
                    Verdict::CannotTell(format!(
                        "the provider holds {others} other message(s) to this number since the \
                         attempt that do not match its body"
                    ))
                }
            })
        })
        .collect()
}

/// Counts of a reconciliation pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reconciled {
    pub(crate) found: u64,
    pub(crate) not_sent: u64,
    pub(crate) undecided: u64,
}

/// Asks the provider about every leftover and returns the transitions that settle them.
pub(crate) async fn reconcile<P: Provider + ?Sized, J: Journal + ?Sized>(
    provider: &P,
    journal: &J,
    campaign: &Campaign,
    entries: &[RecordEntry],
    now: Timestamp,
    skew_ms: i64,
    settle_ms: i64,
) -> (Vec<Transition>, Reconciled) {
    let known_ids: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.state.provider_id())
        .collect();
    let mut transitions = Vec::new();
    let mut counts = Reconciled::default();
    for (number, list) in leftovers(campaign, entries) {
        let since = list.iter().map(|l| l.since).min().unwrap_or(now);
        let verdicts = match provider
            .lookup_sent(number, Timestamp::from_unix_ms(since.unix_ms() - skew_ms))
            .await
        {
            Ok(found) => {
                // A message already logged against a record of any campaign (the same text
                // sent by another campaign, say) is no evidence that this attempt went out.
                let candidates: Vec<String> = found
                    .iter()
                    .map(|m| m.provider_id.clone())
                    .filter(|id| !known_ids.contains(id.as_str()))
                    .collect();
                match journal.logged_provider_ids(candidates).await {
                    Ok(elsewhere) => {
                        let mut known = known_ids.clone();
                        known.extend(elsewhere.iter().map(String::as_str));
                        match_history(&list, &found, &known, skew_ms)
                    }
                    Err(error) => {
                        vec![
                            Verdict::CannotTell(format!("the journal could not be read: {error}"));
                            list.len()
                        ]
                    }
                }
            }
            Err(error) => vec![
                Verdict::CannotTell(format!(
                    "the provider's history could not be read: {error}"
                ));
                list.len()
            ],
        };
        for (leftover, verdict) in list.iter().zip(verdicts) {
            // Silence proves nothing until the attempt is old enough for the provider to have
            // finished creating and listing what it accepted.
            let age_ms = now.unix_ms().saturating_sub(leftover.since.unix_ms());
            let verdict = match verdict {
                Verdict::NotSent if age_ms < settle_ms => Verdict::CannotTell(format!(
                    "the provider lists no message yet, but the attempt is only {} s old; \
                     run again after {} s to settle it",
                    age_ms / 1000,
                    settle_ms / 1000
                )),
                other => other,
            };
            let state = match verdict {
                Verdict::Sent {
                    provider_id,
                    segments,
                } => {
                    counts.found += 1;
                    RecordState::Accepted {
                        provider_id,
                        segments: segments.unwrap_or(leftover.segments),
                        at: now,
                    }
                }
                Verdict::NotSent => {
                    counts.not_sent += 1;
                    RecordState::Planned
                }
                Verdict::CannotTell(message) => {
                    counts.undecided += 1;
                    RecordState::Unknown {
                        message,
                        sent_at: leftover.since,
                        at: now,
                    }
                }
            };
            transitions.extend(leftover.seqs.iter().map(|&seq| Transition {
                seq,
                state: state.clone(),
            }));
        }
    }
    (transitions, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::DeliveryStatus;

    fn number() -> PhoneNumber {
        PhoneNumber::from_e164("+12125550123").expect("valid")
    }

    fn leftover(seq: u32, body: &str, since: i64) -> Leftover {
        Leftover {
            seqs: vec![seq],
            number: number(),
            body: body.into(),
            segments: 1,
            since: Timestamp::from_unix_ms(since),
        }
    }

    fn message(id: &str, body: Option<&str>, at: i64) -> SentMessage {
        SentMessage {
            provider_id: id.into(),
            to: number(),
            body: body.map(str::to_owned),
            status: DeliveryStatus::Queued,
            created_at: Some(Timestamp::from_unix_ms(at)),
            segments: Some(1),
        }
    }

    #[test]
    fn two_records_on_one_number_get_one_message_each_at_most() {
        let list = [leftover(0, "hi A", 1_000), leftover(1, "hi B", 1_000)];
        let found = [message("SM2", Some("hi B"), 1_100)];
        let verdicts = match_history(&list, &found, &HashSet::new(), 0);
        assert_eq!(verdicts[0], Verdict::NotSent);
        assert!(matches!(&verdicts[1], Verdict::Sent { provider_id, .. } if provider_id == "SM2"));
    }

    #[test]
    fn unmatched_messages_leave_the_decision_to_a_person() {
        let list = [leftover(0, "hi A", 1_000)];
        let found = [message("SM9", Some("something else"), 1_100)];
        assert!(matches!(
            match_history(&list, &found, &HashSet::new(), 0)[0],
            Verdict::CannotTell(_)
        ));
        let known: HashSet<&str> = ["SM9"].into();
        assert_eq!(
            match_history(&list, &found, &known, 0)[0],
            Verdict::NotSent,
            "a message already logged against another record is no evidence"
        );
        let old = [message("SM1", Some("hi A"), 10)];
        assert_eq!(
            match_history(&list, &old, &HashSet::new(), 0)[0],
            Verdict::NotSent
        );
    }

    #[test]
    fn a_redacted_body_matches_only_by_number_and_time() {
        let list = [leftover(0, "hi A", 1_000), leftover(1, "hi A", 1_000)];
        let found = [message("SM3", None, 1_200)];
        let verdicts = match_history(&list, &found, &HashSet::new(), 0);
        assert!(matches!(verdicts[0], Verdict::Sent { .. }));
        assert_eq!(verdicts[1], Verdict::NotSent);
    }

    #[test]
    fn the_latest_attempt_chooses_first_so_an_earlier_one_keeps_its_older_message() {
        // Record 0 tried at 1 s and record 1 at 200 s, same number and body, both really sent;
        // the history lists newest first. Were record 0 to take the newer message, record 1's
        // window would hold nothing and it would be sent again.
        let list = [leftover(0, "hi", 1_000), leftover(1, "hi", 200_000)];
        let found = [
            message("SM-new", Some("hi"), 200_100),
            message("SM-old", Some("hi"), 1_100),
        ];
        let verdicts = match_history(&list, &found, &HashSet::new(), 0);
        assert!(
            matches!(&verdicts[0], Verdict::Sent { provider_id, .. } if provider_id == "SM-old")
        );
        assert!(
            matches!(&verdicts[1], Verdict::Sent { provider_id, .. } if provider_id == "SM-new")
        );
    }
}
