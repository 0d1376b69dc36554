//! The edges every sending command shares: the store (a SQLite file or a PostgreSQL URL) and
//! the organisation, the provider, the rate, the progress bar.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sms_core::dispatch::{DispatchWarning, Progress, ProgressSnapshot};
use sms_core::journal::RateLimit;
use sms_core::{Org, Provider, SimulatedProvider};

/// `--org NAME`: the organisation whose rows a command reads and writes. Every command that
/// opens the database takes it (through [`DbArgs`], or on its own where the database is only
/// read: `sms preview`); a name that is not an organisation's is refused by the parser, as any
/// bad flag value.
#[derive(clap::Args, Debug, Clone)]
pub struct OrgArgs {
    /// The organisation whose opt-outs, campaigns, replies and alerts are read and written: one
    /// database may hold many, each seeing only its own (1 to 64 letters, digits, '-', '_' or
    /// '.').
    #[arg(long, value_name = "NAME", default_value = Org::DEFAULT)]
    pub org: Org,
}

impl OrgArgs {
    /// ` --org NAME` when the organisation is not `default`, else nothing: appended to the
    /// commands a hint prints, so the command typed next reaches the same rows.
    pub fn flag(&self) -> String {
        if self.org.as_str() == Org::DEFAULT {
            String::new()
        } else {
            format!(" --org {}", self.org)
        }
    }
}

pub use sms_store::{DbTarget, Store};

/// `--db PATH|URL` and `--org NAME`: where opt-outs and campaigns are kept, and whose.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// The SQLite file with opt-outs and campaigns (created when missing), or a PostgreSQL
    /// database shared by several servers: `postgres://USER@HOST:PORT/DATABASE` (the password
    /// from the URL, PGPASSWORD or ~/.pgpass; never printed).
    #[arg(long, value_name = "PATH|URL", default_value = "./sms.db", value_parser = parse_db)]
    pub db: DbTarget,
    #[command(flatten)]
    pub org: OrgArgs,
}

/// `--db`'s parser (any text is a path or a URL).
pub fn parse_db(value: &str) -> Result<DbTarget, String> {
    DbTarget::parse(value)
}

impl DbArgs {
    /// The organisation named by `--org`.
    pub fn org(&self) -> &Org {
        &self.org.org
    }

    /// `--db PATH|URL`, and ` --org NAME` when it is not `default`: what a printed hint
    /// repeats (a URL without its password).
    pub fn flags(&self) -> String {
        format!("--db {}{}", self.db.flag_value(), self.org.flag())
    }

    /// The file or database and, when it is not `default`, the organisation: for messages and
    /// logs (a URL's password shown as `***`).
    pub fn describe(&self) -> String {
        if self.org().as_str() == Org::DEFAULT {
            self.db.shown()
        } else {
            format!("{} (organisation {})", self.db.shown(), self.org())
        }
    }

    /// Opens an existing store: commands that read or resume must not start from an empty file
    /// made by a typo in `--db` (it would hold no opt-outs and no campaigns). A PostgreSQL
    /// database is opened as it is (its tables are made when missing).
    pub async fn open_existing(&self) -> Result<Arc<Store>, String> {
        self.db.open(self.org(), true).await
    }

    /// Opens (or creates) the store, for the organisation of `--org`.
    pub async fn open(&self) -> Result<Arc<Store>, String> {
        self.db.open(self.org(), false).await
    }
}

/// Which provider carries the texts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The deterministic simulator (Twilio test-credential behaviour); nothing leaves the machine.
    Simulator,
    /// Twilio, configured from TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and
    /// TWILIO_API_SECRET), TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID.
    Twilio,
}

/// Options of the commands that send.
#[derive(clap::Args, Debug, Clone)]
pub struct SendingArgs {
    /// Who carries the texts.
    #[arg(long, value_enum, default_value = "simulator")]
    pub provider: ProviderKind,
    /// Twilio's API address, for a local stand-in (http only to 127.0.0.1/localhost).
    #[arg(long, value_name = "URL")]
    pub twilio_base_url: Option<String>,
    /// Texts per second (a US long code sends 1 per second); 0 means no limit.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Seconds the provider must stay silent about an interrupted or timed-out send before
    /// its silence counts as "not sent" (measured on the monotonic clock; until then the record
    /// waits, or stays unknown until a later resume). At least 10.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub reconcile_wait: u64,
}

pub use sms_twilio::MIN_RECONCILE_WAIT_S;

impl SendingArgs {
    /// The provider these options name.
    pub fn provider(&self) -> Result<Arc<dyn Provider>, String> {
        match self.provider {
            // Seeded with the time so ids stay unique across runs sharing one SQLite file.
            ProviderKind::Simulator => Ok(Arc::new(SimulatedProvider::new().with_id_seed(
                u64::try_from(sms_core::Timestamp::now().unix_ms()).unwrap_or_default(),
            ))),
            ProviderKind::Twilio => {
                let mut builder = sms_twilio::TwilioBuilder::from_env(|k| std::env::var(k).ok())
                    .map_err(|e| format!("Twilio configuration: {e}"))?;
                if let Some(url) = &self.twilio_base_url {
                    builder = builder.base_url(url.clone());
                }
                let provider = builder
                    .build()
                    .map_err(|e| format!("Twilio configuration: {e}"))?;
                Ok(Arc::new(provider))
            }
        }
    }

    /// Whether the texts go to a Twilio stand-in on this machine (`--twilio-base-url
    /// http://127.0.0.1:PORT`): nobody can be texted twice, so shorter waits are allowed.
    fn local_stand_in(&self) -> bool {
        let Some(url) = self
            .twilio_base_url
            .as_deref()
            .filter(|_| self.provider == ProviderKind::Twilio)
        else {
            return false;
        };
        sms_twilio::is_local_stand_in(url)
    }

    /// Whether texts would reach real people: Twilio, not a stand-in on this machine.
    pub fn reaches_people(&self) -> bool {
        self.provider == ProviderKind::Twilio && !self.local_stand_in()
    }

    /// The dispatch options these flags ask for.
    pub fn options(&self) -> Result<sms_core::DispatchOptions, String> {
        if self.reconcile_wait < MIN_RECONCILE_WAIT_S && !self.local_stand_in() {
            return Err(format!(
                "--reconcile-wait {}: give at least {MIN_RECONCILE_WAIT_S} seconds. A provider \
                 may list a message some seconds after accepting it, so a shorter silence does \
                 not prove a send in doubt failed, and resending it would text the person twice \
                 (shorter waits are allowed only with --twilio-base-url on this machine, a \
                 stand-in)",
                self.reconcile_wait
            ));
        }
        let wait_ms = self.reconcile_wait.saturating_mul(1_000);
        Ok(sms_core::DispatchOptions {
            rate: self.rate()?,
            reconcile_settle_ms: wait_ms,
            reconcile_delay_ms: wait_ms,
            ..sms_core::DispatchOptions::default()
        })
    }

    /// The rate limit `--rate` asks for, if any.
    pub fn rate(&self) -> Result<Option<RateLimit>, String> {
        match self.rate {
            None => Ok(None),
            Some(0.0) => Ok(Some(RateLimit::Unlimited)),
            Some(r) if r.is_finite() && r >= 0.001 => {
                Ok(Some(RateLimit::MessagesPerSecond { per_second: r }))
            }
            Some(r) => Err(format!(
                "--rate {r}: give at least 0.001 texts per second, or 0 for no limit"
            )),
        }
    }
}

/// A progress bar on standard error when it is a terminal; plain lines every few seconds
/// otherwise, so logs of unattended runs show progress too.
pub struct ProgressView {
    bar: ProgressBar,
    plain: bool,
    last_plain: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ProgressView {
    /// A view for a run over `total` records.
    pub fn new(total: u64) -> ProgressView {
        let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = if plain {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
        } else {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} records  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        ProgressView {
            bar,
            plain,
            last_plain: std::sync::Mutex::new(None),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn describe(s: &ProgressSnapshot) -> String {
    let eta = s
        .eta_seconds
        .map(|secs| format!(", ETA {}m{:02}s", secs / 60, secs % 60))
        .unwrap_or_default();
    let held = if s.held > 0 {
        format!(", held {} (quiet hours)", s.held)
    } else {
        String::new()
    };
    format!(
        "sent {}, failed {}, skipped {}, unknown {}{held}, remaining {}, {:.1}/s{eta}",
        s.sent, s.failed, s.blocked, s.unknown, s.remaining, s.rate_per_second
    )
}

impl Progress for ProgressView {
    fn on_progress(&self, snapshot: ProgressSnapshot) {
        // Records of the campaign with an outcome, over the records of the campaign (skipped
        // ones included, as the counts beside it): one thing counted, never more than all.
        let done = snapshot.total.saturating_sub(snapshot.remaining);
        self.bar.set_length(snapshot.total);
        self.bar.set_position(done);
        let text = describe(&snapshot);
        if self.plain {
            let mut last = self
                .last_plain
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
            if due || snapshot.remaining == 0 {
                eprintln!("progress: {done}/{} records, {text}", snapshot.total);
                *last = Some(std::time::Instant::now());
            }
        } else {
            self.bar.set_message(text);
        }
    }

    fn on_warning(&self, warning: DispatchWarning) {
        self.bar.suspend(|| eprintln!("warning: {warning}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(provider: ProviderKind, url: Option<&str>, wait: u64) -> SendingArgs {
        SendingArgs {
            provider,
            twilio_base_url: url.map(str::to_owned),
            rate: None,
            reconcile_wait: wait,
        }
    }

    #[test]
    fn the_bar_counts_records_of_the_campaign_never_more_than_all() {
        // examples/recipients.csv: 17 records, 9 to text; 14 settled, 3 remaining.
        let view = ProgressView::new(9);
        view.on_progress(ProgressSnapshot {
            campaign_id: sms_core::journal::CampaignId::new("c").expect("valid"),
            total: 17,
            sent: 6,
            failed: 1,
            blocked: 7,
            unknown: 0,
            held: 0,
            remaining: 3,
            rate_per_second: 1.0,
            eta_seconds: Some(3),
            elapsed_ms: 1_000,
        });
        assert_eq!(
            (view.bar.position(), view.bar.length()),
            (14, Some(17)),
            "14/17 records, not 14/9"
        );
        view.finish();
    }

    #[test]
    fn a_short_reconcile_wait_is_refused_except_for_a_local_stand_in() {
        let err = args(ProviderKind::Simulator, None, 0)
            .options()
            .expect_err("0 s");
        assert!(err.contains("at least 10 seconds"), "{err}");
        assert!(args(ProviderKind::Twilio, None, 9).options().is_err());
        assert!(
            args(ProviderKind::Twilio, Some("https://api.twilio.com"), 0)
                .options()
                .is_err()
        );
        for tricky in [
            "http://127.0.0.2:8080",
            "http://127.0.0.1:80\\@example.com",
            "http://user@127.0.0.1:8080",
            "http://127.0.0.1.example.com:80",
        ] {
            assert!(
                args(ProviderKind::Twilio, Some(tricky), 0)
                    .options()
                    .is_err(),
                "{tricky}"
            );
        }
        let local = args(ProviderKind::Twilio, Some("http://127.0.0.1:4010"), 0)
            .options()
            .expect("a stand-in on this machine");
        assert_eq!(local.reconcile_settle_ms, 0);
        assert_eq!(
            args(ProviderKind::Simulator, None, 10)
                .options()
                .expect("the floor")
                .reconcile_settle_ms,
            10_000
        );
    }
}
