//! Reconciliation: deciding, through the provider's history, what became of calls whose answer
//! was lost (a crash while `sending`, or an `Unknown` outcome).
//!
//! The rule is conservative, because resending a text that did go out is the one mistake this
//! library must not make. The history is read from well before the attempt (the campaign's
//! creation or the attempt, whichever is earlier, minus `reconcile_lookback_ms`), and messages
//! already logged against a record of any campaign are set aside:
//! - a message to the number with the same body (or a redacted one), dated since the attempt
//!   minus the clock allowance (`reconcile_skew_ms`, after correcting by the provider's clock
//!   offset when it tells its time): it was sent, the record is accepted; the latest attempt
//!   chooses first;
//! - such a message dated earlier than the allowance: "cannot tell" (the provider's clock may be
//!   behind ours by more than the allowance), a person decides;
//! - other messages to the number since the attempt: "cannot tell";
//! - nothing at all with that body in the whole window, and the silence has lasted
//!   `reconcile_settle_ms` on the monotonic clock: not sent, the record is planned again.

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

/// Matches the leftovers of one number against its history. `offset_ms` is how far the
/// provider's clock is ahead of ours (negative when behind), when measured.
pub(crate) fn match_history(
    leftovers: &[Leftover],
    found: &[SentMessage],
    known_ids: &HashSet<&str>,
    skew_ms: i64,
    offset_ms: Option<i64>,
) -> Vec<Verdict> {
    // The message's creation on our clock, when the provider's offset is known.
    let ours = |m: &SentMessage| {
        m.created_at
            .map(|at| at.unix_ms().saturating_sub(offset_ms.unwrap_or(0)))
    };
    let in_window = |m: &SentMessage, since: Timestamp| {
        ours(m).is_none_or(|at| at >= since.unix_ms().saturating_sub(skew_ms))
    };
    let same_body =
        |m: &SentMessage, leftover: &Leftover| body_of(m).is_none_or(|body| body == leftover.body);
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
        if !exact {
            // A redacted message could be any of the texts still unmatched: when they differ
            // (a family phone sent two different texts), taking it for one could call the
            // other "not sent" when it was the one sent. Then a person decides.
            let unmatched: HashSet<&str> = leftovers
                .iter()
                .zip(&verdicts)
                .filter(|(_, verdict)| verdict.is_none())
                .map(|(leftover, _)| leftover.body.as_str())
                .collect();
            if unmatched.len() > 1 {
                break;
            }
        }
        for &index in &order {
            let (leftover, verdict) = (&leftovers[index], &mut verdicts[index]);
            if verdict.is_some() {
                continue;
            }
            let hit = found.iter().enumerate().find(|(i, m)| {
                !taken[*i]
                    && in_window(m, leftover.since)
                    && match body_of(m) {
                        Some(body) => exact && body == leftover.body,
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
            if let Some(verdict) = verdict {
                return verdict;
            }
            let free = || {
                found
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !taken[*i])
                    .map(|(_, m)| m)
            };
            // Older than the allowance, but the provider's clock may be behind ours by more:
            // never "not sent" while such a message exists.
            if let Some(m) = free().find(|m| same_body(m, leftover)) {
                let dated = m
                    .created_at
                    .map_or_else(|| "undated".to_owned(), |at| format!("dated {at}"));
                let which = if body_of(m).is_some() {
                    "with this body"
                } else {
                    "whose body is hidden (redacted)"
                };
                return Verdict::CannotTell(format!(
                    "the provider holds message {} to this number {which} ({dated}) that \
                     cannot be matched to this attempt at {} for certain: check it and \
                     resolve",
                    m.provider_id, leftover.since,
                ));
            }
            // Any other message the history holds (it was read from well before the
            // attempt) may be this text as the provider rewrote it (a trial account's prefix,
            // its own smart encoding) under a clock that is off: only a history with nothing
            // unexplained in it proves the text was not sent.
            let others = free().count();
            if others == 0 {
                Verdict::NotSent
            } else {
                Verdict::CannotTell(format!(
                    "the provider holds {others} other message(s) to this number, from around \
                     the attempt or before it, that do not match its body and are logged \
                     against no record: check them and resolve"
                ))
            }
        })
        .collect()
}

/// The message's visible body: an empty one is redacted too (a provider may write `""` where
/// Twilio writes null).
fn body_of(m: &SentMessage) -> Option<&str> {
    m.body.as_deref().filter(|body| !body.is_empty())
}

/// How far the provider's clock is ahead of ours (negative: behind), when its answer says.
fn offset_of(
    lookup: &Result<crate::provider::History, crate::provider::SendError>,
    clock: &dyn super::Clock,
) -> Option<i64> {
    let theirs = lookup.as_ref().ok()?.provider_now?;
    Some(theirs.unix_ms().saturating_sub(clock.now().unix_ms()))
}

/// Counts of a reconciliation pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reconciled {
    pub(crate) found: u64,
    pub(crate) not_sent: u64,
    pub(crate) undecided: u64,
    /// Leftovers the provider is silent about, but not for long enough yet.
    pub(crate) waiting: u64,
    /// How long until the first of those has been silent long enough.
    pub(crate) next_check: Option<std::time::Duration>,
}

/// How reconciliation reads the provider's history and judges silence.
pub(crate) struct Window<'a> {
    /// The clock allowance, in milliseconds.
    pub(crate) skew_ms: i64,
    /// How far before the attempt (or the campaign's creation) the history is read.
    pub(crate) lookback_ms: i64,
    /// Whether silence about this leftover has lasted long enough (`None`), or how long
    /// remains: measured by the dispatcher on the monotonic clock.
    pub(crate) silence: &'a mut (dyn FnMut(&Leftover) -> Option<std::time::Duration> + Send),
    /// Our wall clock, read right after each lookup to measure the provider's offset.
    pub(crate) clock: &'a dyn super::Clock,
}

/// Asks the provider about every leftover and returns the transitions that settle them.
pub(crate) async fn reconcile<P: Provider + ?Sized, J: Journal + ?Sized>(
    provider: &P,
    journal: &J,
    campaign: &Campaign,
    entries: &[RecordEntry],
    now: Timestamp,
    window: Window<'_>,
) -> (Vec<Transition>, Reconciled) {
    let known_ids: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.state.provider_id())
        .collect();
    let mut transitions = Vec::new();
    let mut counts = Reconciled::default();
    for (number, list) in leftovers(campaign, entries) {
        let earliest = list
            .iter()
            .map(|l| l.since)
            .min()
            .unwrap_or(now)
            .min(campaign.created_at)
            // Never later than our own clock: the attempt may have been stamped by another
            // host (a fleet worker that died) whose clock ran fast; its text was made before
            // now by any clock, and a window starting after it would miss it and read silence.
            .min(now);
        let from = Timestamp::from_unix_ms(
            earliest
                .unix_ms()
                .saturating_sub(window.lookback_ms.max(window.skew_ms)),
        );
        let mut lookup = provider.lookup_history(number, from).await;
        let mut offset_ms = offset_of(&lookup, window.clock);
        // The provider lists by its own clock: when that is behind ours by more than the
        // allowance, the window asked for on our clock starts too late on its clock, so ask
        // again from as far back on its clock.
        if let Some(offset) = offset_ms.filter(|offset| *offset < -window.skew_ms) {
            lookup = provider
                .lookup_history(
                    number,
                    Timestamp::from_unix_ms(from.unix_ms().saturating_add(offset)),
                )
                .await;
            offset_ms = offset_of(&lookup, window.clock).or(offset_ms);
        }
        let verdicts = match lookup {
            Ok(history) => {
                let found = history.messages;
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
                        match_history(&list, &found, &known, window.skew_ms, offset_ms)
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
            // Silence proves nothing until it has lasted long enough for the provider to have
            // finished creating and listing what it accepted.
            let verdict = match verdict {
                Verdict::NotSent => match (window.silence)(leftover) {
                    None => Verdict::NotSent,
                    Some(remaining) => {
                        counts.waiting += 1;
                        counts.next_check = Some(
                            counts
                                .next_check
                                .map_or(remaining, |next| next.min(remaining)),
                        );
                        Verdict::CannotTell(format!(
                            "the provider lists no message yet; its silence counts as \
                             \"not sent\" once it has lasted {} s more (a later round or \
                             `resume` settles it)",
                            remaining.as_secs().max(1)
                        ))
                    }
                },
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
    counts.undecided -= counts.waiting;
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
        let verdicts = match_history(&list, &found, &HashSet::new(), 0, None);
        assert_eq!(verdicts[0], Verdict::NotSent);
        assert!(matches!(&verdicts[1], Verdict::Sent { provider_id, .. } if provider_id == "SM2"));
    }

    #[test]
    fn unmatched_messages_leave_the_decision_to_a_person() {
        let list = [leftover(0, "hi A", 1_000)];
        let found = [message("SM9", Some("something else"), 1_100)];
        assert!(matches!(
            match_history(&list, &found, &HashSet::new(), 0, None)[0],
            Verdict::CannotTell(_)
        ));
        let known: HashSet<&str> = ["SM9"].into();
        assert_eq!(
            match_history(&list, &found, &known, 0, None)[0],
            Verdict::NotSent,
            "a message already logged against another record is no evidence"
        );
        let other_old = [message("SM1", Some("something else"), 10)];
        assert!(
            matches!(
                match_history(&list, &other_old, &HashSet::new(), 0, None)[0],
                Verdict::CannotTell(_)
            ),
            "another body from before the attempt, logged nowhere: it may be this text as the \
             provider rewrote it, under a clock that is off"
        );
    }

    #[test]
    fn a_redacted_body_matches_only_by_number_and_time() {
        let list = [leftover(0, "hi A", 1_000), leftover(1, "hi A", 1_000)];
        let found = [message("SM3", None, 1_200)];
        let verdicts = match_history(&list, &found, &HashSet::new(), 0, None);
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
        let verdicts = match_history(&list, &found, &HashSet::new(), 0, None);
        assert!(
            matches!(&verdicts[0], Verdict::Sent { provider_id, .. } if provider_id == "SM-old")
        );
        assert!(
            matches!(&verdicts[1], Verdict::Sent { provider_id, .. } if provider_id == "SM-new")
        );
    }

    #[test]
    fn a_message_with_the_body_dated_before_the_allowance_is_never_not_sent() {
        // Our clock is 180 s ahead of the provider's: the message this attempt made is dated
        // 180 s before it, outside a 120 s allowance.
        let list = [leftover(0, "hi", 1_000_000)];
        let found = [message("SM1", Some("hi"), 1_000_000 - 180_000)];
        assert!(matches!(
            &match_history(&list, &found, &HashSet::new(), 120_000, None)[0],
            Verdict::CannotTell(why) if why.contains("SM1")
        ));
        // A redacted body could be it too.
        let redacted = [message("SM2", None, 1_000_000 - 180_000)];
        assert!(matches!(
            match_history(&list, &redacted, &HashSet::new(), 120_000, None)[0],
            Verdict::CannotTell(_)
        ));
        // With the provider's clock measured 180 s behind, it is proof.
        assert!(matches!(
            &match_history(&list, &found, &HashSet::new(), 120_000, Some(-180_000))[0],
            Verdict::Sent { provider_id, .. } if provider_id == "SM1"
        ));
    }
}
