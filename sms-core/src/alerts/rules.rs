//! The alert rules: scheduling an event, and deciding at `now` what to do with each pending
//! alert. Pure functions of their inputs.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::templates::check_for_event;
use super::{
    AlertConfig, AlertEvent, AlertReason, AlertTemplates, EventError, EventId, ScheduledAlert,
    SubscriptionBook, SubscriptionState,
};
use crate::consent::{self, AlertKind, BlockReason, Consent, ProgramYears, Purpose};
use crate::optout::OptOutSnapshot;
use crate::phone::{PhoneNumber, Region};
use crate::preview::MAX_BODY_CHARACTERS;
use crate::quiet::local::{
    at_local, format_local, local_date, next_allowed, resolve_time_zone, zone,
};
use crate::recipient::{Recipient, RecipientKind};
use crate::segment::{self, Encoding, SegmentOptions};
use crate::template::{Template, TemplateError};
use crate::time::Timestamp;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Schedules `event`: one alert per record of `roster` (a record listed twice is scheduled
/// once), each with the instant it falls due and the instant it stops making sense.
///
/// `course_start` falls due the day before the section's start (its local date in the alert's
/// time zone) at `config.course_start_send_at`; every other kind when the event arrived. The
/// kind's template is checked against the event and the roster's columns, so a wording that
/// could never be filled is refused here rather than skipped record by record.
pub fn plan_event(
    event: &AlertEvent,
    roster: &[Recipient],
    config: &AlertConfig,
    templates: &AlertTemplates,
) -> Result<Vec<ScheduledAlert>, EventError> {
    let kind = event.kind;
    let missing = |what| EventError::Missing { kind, what };
    match kind {
        AlertKind::CourseStart if event.starts_at.is_none() => {
            return Err(missing("the section's start (--starts-at)"));
        }
        AlertKind::WaitlistSlotOpen => {
            if event.hold_until.is_none() {
                return Err(missing("the hold-until time (--hold-until)"));
            }
            if roster.len() != 1 {
                return Err(EventError::NotOneRecord {
                    records: roster.len(),
                });
            }
        }
        AlertKind::ScheduleChanged if event.old.is_none() || event.new.is_none() => {
            return Err(missing("the old and new values (--old and --new)"));
        }
        _ => {}
    }
    if let Some(name) = &event.section_time_zone
        && zone(name).is_none()
    {
        return Err(EventError::UnknownTimeZone(name.clone()));
    }
    if zone(&config.org_time_zone).is_none() {
        return Err(EventError::UnknownTimeZone(config.org_time_zone.clone()));
    }
    let template = templates.parsed(kind)?;
    let mut columns: Vec<&str> = Vec::new();
    for recipient in roster {
        for name in recipient.fields.keys() {
            if !columns.contains(&name.as_str()) {
                columns.push(name);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut alerts = Vec::with_capacity(roster.len());
    // The rendered values differ only by time zone: one map per distinct set, shared.
    let mut shared: Vec<std::sync::Arc<BTreeMap<String, String>>> = Vec::new();
    for recipient in roster {
        if !seen.insert(&recipient.record_id) {
            continue;
        }
        let (tz_name, tz) = resolve_time_zone(
            event.section_time_zone.as_deref(),
            recipient.time_zone.as_deref(),
            &config.org_time_zone,
        )
        .ok_or_else(|| EventError::UnknownTimeZone(config.org_time_zone.clone()))?;
        let due_at = match (kind, event.starts_at) {
            (AlertKind::CourseStart, Some(starts_at)) => {
                let day_before = local_date(starts_at, &tz)
                    .yesterday()
                    .map_err(|e| EventError::OutOfRange(e.to_string()))?;
                at_local(day_before, config.course_start_send_at, &tz).ok_or_else(|| {
                    EventError::OutOfRange(format!("{day_before} {}", config.course_start_send_at))
                })?
            }
            _ => event.received_at,
        };
        let stale = Timestamp::from_unix_ms(
            due_at
                .unix_ms()
                .saturating_add(i64::from(config.stale_after_hours) * HOUR_MS),
        );
        let expires_at = match kind {
            AlertKind::WaitlistSlotOpen => event.hold_until.unwrap_or(stale),
            AlertKind::CourseStart | AlertKind::ClassCancelled => event.starts_at.unwrap_or(stale),
            _ => stale,
        };
        let mut fields = BTreeMap::new();
        let mut put = |name: &str, value: Option<String>| {
            if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
                fields.insert(name.to_owned(), value);
            }
        };
        put("org_name", Some(config.org_name.clone()));
        put("section", Some(event.section.clone()));
        put("course_title", Some(event.section.clone()));
        put(
            "start_date",
            event.starts_at.map(|t| format_local(t, &tz, "%a %b %-d")),
        );
        put(
            "start_time",
            event.starts_at.map(|t| format_local(t, &tz, "%-I:%M %p")),
        );
        put("old", event.old.clone());
        put("new", event.new.clone());
        put(
            "hold_until",
            event
                .hold_until
                .map(|t| format_local(t, &tz, "%b %-d %-I:%M %p")),
        );
        put("reason", event.reason.clone());
        if alerts.is_empty() {
            check_for_event(kind, &template, &fields, &columns)?;
        }
        let fields = match shared.iter().find(|f| ***f == fields) {
            Some(same) => same.clone(),
            None => {
                let fields = std::sync::Arc::new(fields);
                shared.push(fields.clone());
                fields
            }
        };
        alerts.push(ScheduledAlert {
            event_id: event.id.clone(),
            kind,
            section: event.section.clone(),
            recipient: recipient.clone(),
            time_zone: tz_name.to_owned(),
            due_at,
            expires_at,
            starts_at: event.starts_at,
            program_year: event.program_year.clone(),
            fields,
            received_at: event.received_at,
        });
    }
    Ok(alerts)
}

/// An alert sent (or being sent) to a number: what the cap counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentSend {
    /// The number.
    pub number: PhoneNumber,
    /// The event it announced: alerts of one event to one number (a family phone) count once.
    pub event_id: EventId,
    /// When it was sent (the rule time of the run that sent it).
    pub at: Timestamp,
}

/// What later events say about a section: cancellations and schedule changes, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct SectionFacts {
    /// Per section, its cancellations: (arrival, event, start of the meeting cancelled: `None`
    /// for the whole section).
    cancelled: HashMap<String, Vec<(Timestamp, EventId, Option<Timestamp>)>>,
    /// Per section, the latest schedule change: (arrival, event, new value).
    latest_change: HashMap<String, (Timestamp, EventId, String)>,
}

impl SectionFacts {
    /// The facts in `events` (any order; arrival times order them).
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a AlertEvent>) -> Self {
        let mut facts = SectionFacts::default();
        for event in events {
            match event.kind {
                AlertKind::ClassCancelled => facts
                    .cancelled
                    .entry(event.section.clone())
                    .or_default()
                    .push((event.received_at, event.id.clone(), event.starts_at)),
                AlertKind::ScheduleChanged => {
                    if let Some(new) = &event.new {
                        let entry = (event.received_at, event.id.clone(), new.clone());
                        facts
                            .latest_change
                            .entry(event.section.clone())
                            .and_modify(|current| {
                                if (entry.0, &entry.1) >= (current.0, &current.1) {
                                    *current = entry.clone();
                                }
                            })
                            .or_insert(entry);
                    }
                }
                _ => {}
            }
        }
        facts
    }

    /// A cancellation of `section` that arrived after `since` and cancels the course's first
    /// day (starting at `first_day`): one without a meeting's start (the whole section), or of a
    /// meeting starting at or before it. A later meeting cancelled (weather next week) leaves
    /// the first day's reminder standing.
    fn cancelled_after(
        &self,
        section: &str,
        since: Timestamp,
        first_day: Option<Timestamp>,
    ) -> Option<&EventId> {
        self.cancelled
            .get(section)?
            .iter()
            .filter(|(at, _, meeting)| {
                *at > since
                    && match (meeting, first_day) {
                        (Some(meeting), Some(first_day)) => *meeting <= first_day,
                        _ => true,
                    }
            })
            .min_by_key(|(at, _, _)| *at)
            .map(|(_, id, _)| id)
    }
}

/// Everything [`evaluate`] reads besides the alerts and `now`.
#[derive(Debug, Clone, Copy)]
pub struct DueInputs<'a> {
    /// Timing and caps.
    pub config: &'a AlertConfig,
    /// The wordings.
    pub templates: &'a AlertTemplates,
    /// Who is signed up to what.
    pub subscriptions: &'a SubscriptionBook,
    /// The numbers opted out now.
    pub opt_outs: &'a OptOutSnapshot,
    /// Alerts sent (or in flight) lately, for the cap: at least the last 24 hours.
    pub recent: &'a [RecentSend],
    /// Cancellations and schedule changes.
    pub sections: &'a SectionFacts,
    /// Region for numbers typed without a country code.
    pub region: Region,
}

/// What to do with an alert now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Send it now.
    Send {
        /// To this number.
        number: PhoneNumber,
        /// This text.
        body: String,
        /// Its encoding.
        encoding: Encoding,
        /// Its segments.
        segments: u32,
    },
    /// Not now: it may still go (the reason says until when).
    Wait {
        /// Why, and until when.
        reason: AlertReason,
    },
    /// Never: the reason says why.
    Never {
        /// Why.
        reason: AlertReason,
    },
}

impl Decision {
    /// `send`, `wait` or `never`.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Send { .. } => "send",
            Decision::Wait { .. } => "wait",
            Decision::Never { .. } => "never",
        }
    }

    /// The reason, when it is not a send.
    pub fn reason(&self) -> Option<&AlertReason> {
        match self {
            Decision::Send { .. } => None,
            Decision::Wait { reason } | Decision::Never { reason } => Some(reason),
        }
    }
}

/// One alert's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Its position in the alerts given to [`evaluate`].
    pub index: usize,
    /// What to do.
    pub decision: Decision,
}

/// Decides, at `now`, for every alert: send, wait (until when) or never (why).
///
/// In order: relevance (a schedule change reverted since, a `course_start` whose section was
/// cancelled since, past its expiry), due time, eligibility (staff never; subscribed to the
/// kind with the same number; then the consent of a manual send: program year, number,
/// `Text`/`Alerts` permission, STOP), the text, quiet hours (deferred to the next opening, or
/// expired when that is too late), and the cap per number (alerts are taken by due time, so
/// the earliest get the slots). Returns one [`Evaluation`] per alert, in the order given.
pub fn evaluate(
    alerts: &[ScheduledAlert],
    inputs: &DueInputs<'_>,
    now: Timestamp,
) -> Vec<Evaluation> {
    let config = inputs.config;
    let reverted = reverted_changes(alerts, inputs.sections);
    let templates: Vec<Result<Template, TemplateError>> = AlertKind::ALL
        .iter()
        .map(|kind| {
            inputs.templates.parsed(*kind).map_err(|e| match e {
                super::TemplateCheckError::Parse { error, .. } => error,
                other => TemplateError::MissingValue {
                    name: other.to_string(),
                },
            })
        })
        .collect();
    // The cap's window: sends after `now - 24 h`, per number, one entry per event.
    let window_start = now.unix_ms().saturating_sub(DAY_MS);
    let mut sent: HashMap<PhoneNumber, Vec<(Timestamp, EventId)>, rustc_hash::FxBuildHasher> =
        HashMap::default();
    for send in inputs.recent {
        if send.at.unix_ms() > window_start && send.at <= now {
            note_send(&mut sent, send.number, &send.event_id, send.at);
        }
    }
    let mut order: Vec<usize> = (0..alerts.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&alerts[a], &alerts[b]);
        (a.due_at, a.received_at, &a.event_id, a.record_id()).cmp(&(
            b.due_at,
            b.received_at,
            &b.event_id,
            b.record_id(),
        ))
    });
    let mut decisions: Vec<Option<Decision>> = vec![None; alerts.len()];
    let mut body = String::new();
    // Time zones by name, looked up once: a database lookup per alert is most of the time of
    // a 100,000-alert evaluation otherwise.
    let mut zones: HashMap<&str, Option<jiff::tz::TimeZone>> = HashMap::new();
    for index in order {
        let alert = &alerts[index];
        let tz = zones
            .entry(alert.time_zone.as_str())
            .or_insert_with(|| zone(&alert.time_zone))
            .as_ref();
        let decision = decide(
            alert,
            tz,
            inputs,
            now,
            reverted.get(&index),
            templates
                .get(
                    AlertKind::ALL
                        .iter()
                        .position(|k| *k == alert.kind)
                        .unwrap_or(0),
                )
                .and_then(|t| t.as_ref().ok()),
            &mut sent,
            &mut body,
            config,
        );
        decisions[index] = Some(decision);
    }
    decisions
        .into_iter()
        .enumerate()
        .map(|(index, decision)| Evaluation {
            index,
            decision: decision.unwrap_or(Decision::Wait {
                reason: AlertReason::NotYetDue {
                    due_at: alerts[index].due_at,
                },
            }),
        })
        .collect()
}

fn note_send(
    sent: &mut HashMap<PhoneNumber, Vec<(Timestamp, EventId)>, rustc_hash::FxBuildHasher>,
    number: PhoneNumber,
    event: &EventId,
    at: Timestamp,
) {
    let events = sent.entry(number).or_default();
    match events.iter_mut().find(|(_, id)| id == event) {
        // One event counts once; it stays in the window until its latest send leaves it.
        Some(entry) => entry.0 = entry.0.max(at),
        None => events.push((at, event.clone())),
    }
}

/// Schedule changes undone before they were sent: per section and record, the pending changes
/// go from the first one's old value to the section's latest new value; when those are the
/// same, every one of them is dropped.
fn reverted_changes(alerts: &[ScheduledAlert], sections: &SectionFacts) -> HashMap<usize, EventId> {
    let mut groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (index, alert) in alerts.iter().enumerate() {
        if alert.kind == AlertKind::ScheduleChanged {
            groups
                .entry((alert.section.as_str(), alert.record_id().as_str()))
                .or_default()
                .push(index);
        }
    }
    let mut reverted = HashMap::new();
    for ((section, _), mut members) in groups {
        let Some((_, latest_id, latest_new)) = sections.latest_change.get(section) else {
            continue;
        };
        members.sort_by_key(|&i| (alerts[i].received_at, alerts[i].event_id.clone()));
        let first_old = members
            .first()
            .and_then(|&i| alerts[i].fields.get("old"))
            .map(|s| s.trim().to_lowercase());
        if first_old.as_deref() == Some(latest_new.trim().to_lowercase().as_str()) {
            for i in members {
                reverted.insert(i, latest_id.clone());
            }
        }
    }
    reverted
}

#[allow(clippy::too_many_arguments)]
fn decide(
    alert: &ScheduledAlert,
    tz: Option<&jiff::tz::TimeZone>,
    inputs: &DueInputs<'_>,
    now: Timestamp,
    reverted_by: Option<&EventId>,
    template: Option<&Template>,
    sent: &mut HashMap<PhoneNumber, Vec<(Timestamp, EventId)>, rustc_hash::FxBuildHasher>,
    body: &mut String,
    config: &AlertConfig,
) -> Decision {
    let never = |reason| Decision::Never { reason };
    let wait = |reason| Decision::Wait { reason };
    // Relevance first: what no longer makes sense is said so even before it falls due.
    if let Some(event_id) = reverted_by {
        return never(AlertReason::Reverted {
            event_id: event_id.clone(),
        });
    }
    if alert.kind == AlertKind::CourseStart
        && let Some(event_id) =
            inputs
                .sections
                .cancelled_after(&alert.section, alert.received_at, alert.starts_at)
    {
        return never(AlertReason::SectionCancelled {
            event_id: event_id.clone(),
        });
    }
    if now >= alert.expires_at {
        return never(AlertReason::Expired {
            expires_at: alert.expires_at,
            earliest: None,
        });
    }
    if now < alert.due_at {
        return wait(AlertReason::NotYetDue {
            due_at: alert.due_at,
        });
    }

    // Eligibility: the consent of a manual send, plus the sign-up; staff never.
    let recipient = &alert.recipient;
    if matches!(recipient.kind, RecipientKind::Staff { .. }) {
        return never(AlertReason::StaffNeverAlerted);
    }
    let subscribed_number = match inputs.subscriptions.state(&recipient.record_id, alert.kind) {
        SubscriptionState::Never => return never(AlertReason::NotSubscribed { kind: alert.kind }),
        SubscriptionState::Unsubscribed { at } => {
            return never(AlertReason::Unsubscribed {
                kind: alert.kind,
                at: *at,
            });
        }
        SubscriptionState::Subscribed { number, .. } => *number,
    };
    let number = match eligible(recipient, alert, inputs) {
        Ok(number) => number,
        Err(reason) => return never(AlertReason::Blocked { reason }),
    };
    if let Some(subscribed) = subscribed_number
        && subscribed != number
    {
        return never(AlertReason::SubscribedNumberDiffers { subscribed });
    }

    // The text.
    let Some(template) = template else {
        return never(AlertReason::Blocked {
            reason: BlockReason::EmptyMessage,
        });
    };
    let rendered = template.render_into(
        |name| {
            recipient
                .field(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| alert.fields.get(name).map(String::as_str))
        },
        body,
    );
    if let Err(error) = rendered {
        let field = match error {
            TemplateError::MissingValue { name } => name,
            other => other.to_string(),
        };
        return never(AlertReason::Blocked {
            reason: BlockReason::MissingMergeField { field },
        });
    }
    if body.trim().is_empty() {
        return never(AlertReason::Blocked {
            reason: BlockReason::EmptyMessage,
        });
    }
    let characters = body.encode_utf16().count();
    if characters > MAX_BODY_CHARACTERS {
        return never(AlertReason::Blocked {
            reason: BlockReason::TooLong {
                characters: characters as u64,
                limit: MAX_BODY_CHARACTERS as u64,
            },
        });
    }

    // Quiet hours: deferred to the next opening, never dropped (unless that is too late).
    let urgent = alert.kind == AlertKind::ClassCancelled
        && config.urgent_cancellations_in_quiet_hours
        && alert.starts_at.is_some_and(|starts| {
            starts > now
                && starts.unix_ms() - now.unix_ms()
                    <= i64::from(config.urgent_cancellation_window_minutes) * 60_000
        });
    if !urgent && let Some(tz) = tz {
        let opening = next_allowed(now, tz, config.quiet_hours_for(alert.kind));
        if opening > now {
            if opening >= alert.expires_at {
                return never(AlertReason::Expired {
                    expires_at: alert.expires_at,
                    earliest: Some(opening),
                });
            }
            return wait(AlertReason::QuietHours {
                until: opening,
                time_zone: alert.time_zone.clone(),
            });
        }
    }

    // The cap, per number; alerts of one event to one number count once.
    let events = sent.get(&number).map(Vec::as_slice).unwrap_or_default();
    let same_event = events.iter().any(|(_, id)| *id == alert.event_id);
    let cap = config.cap_per_24h as usize;
    if !same_event && events.len() >= cap {
        let mut times: Vec<Timestamp> = events.iter().map(|(at, _)| *at).collect();
        times.sort();
        // A slot frees when enough of the sends leave the 24-hour window.
        let freeing = times
            .get(events.len() - cap)
            .map_or(now, |at| Timestamp::from_unix_ms(at.unix_ms() + DAY_MS));
        let until = freeing.max(now);
        if until >= alert.expires_at {
            return never(AlertReason::Expired {
                expires_at: alert.expires_at,
                earliest: Some(until),
            });
        }
        return wait(AlertReason::OverCap {
            number,
            cap: config.cap_per_24h,
            until,
        });
    }
    note_send(sent, number, &alert.event_id, now);
    let count = segment::count(body, SegmentOptions::default());
    Decision::Send {
        number,
        body: body.clone(),
        encoding: count.encoding,
        segments: count.segments,
    }
}

/// The consent of a manual send, for this alert: program year, number, permission, STOP.
fn eligible(
    recipient: &Recipient,
    alert: &ScheduledAlert,
    inputs: &DueInputs<'_>,
) -> Result<PhoneNumber, BlockReason> {
    let current = inputs
        .config
        .current_program_year
        .clone()
        .or_else(|| alert.program_year.clone());
    let years = match (alert.program_year.clone(), current) {
        (Some(database), Some(current)) => ProgramYears { database, current },
        // Without both years there is nothing to compare: the host sends only current rosters.
        _ => ProgramYears::current(crate::consent::ProgramYear::unnamed()),
    };
    let mobile = PhoneNumber::parse(&recipient.mobile, inputs.region);
    let opt_out = match &mobile {
        Ok(number) => inputs.opt_outs.state(*number),
        Err(_) => Default::default(),
    };
    match consent::decide(
        recipient,
        &mobile,
        opt_out,
        &years,
        Purpose::Alert(alert.kind),
    ) {
        Consent::Eligible { number } => Ok(number),
        Consent::Blocked { reason } => Err(reason),
    }
}
