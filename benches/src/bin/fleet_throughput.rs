//! Durable texts/s and opt-outs/s on PostgreSQL (fleet workers) and SQLite (one run), side by
//! side, in one process: the real `TwilioProvider` sending to the local Twilio stand-in
//! (127.0.0.1), the real dispatcher, every write committed with `synchronous_commit` on
//! (PostgreSQL) or `synchronous=FULL` (SQLite).
//!
//! `cargo build --release -p sms-benches --bin fleet_throughput && target/release/fleet_throughput`
//! `[--url postgres://...] [--records 5000] [--concurrency 256] [--batch-numbers 1250]`
//! `[--workers 1,2,4] [--opt-outs 5000] [--cold-statistics]`
//!
//! The URL is `SMS_TEST_POSTGRES_URL` unless `--url` is given; the bench makes a schema of its
//! own there (dropped at the end) and refuses a server whose `synchronous_commit` is not `on`.
//! Each campaign is followed by an `ANALYZE` of the records and leases, as a server in use has
//! statistics (`--cold-statistics`: not, as in a fresh database's first minute); a first
//! campaign is sent once before the figures (shown as the warm-up row).
//!
//! The defaults: 256 texts in flight per worker (the writer commits what queued during its
//! previous commit, so more in flight makes larger batches, not more commits), and batches of
//! 1,250 numbers (a quarter of the campaign, so that each of 4 workers has a batch; each batch
//! costs a lease, a read of its records and a release, statements that read the campaign).
//!
//! - **texts/s (PostgreSQL)**: one campaign of `--records` records, each to a number of its
//!   own, no rate limit, sent by 1, 2 and 4 fleet workers (`Dispatcher::run_fleet`) running
//!   concurrently in this process, each with a store (a pool and a writer) and a `WorkerId` of
//!   its own, each sending up to `--concurrency` texts at once from batches of
//!   `--batch-numbers` leased numbers; the figure is the records over the wall time from the
//!   first worker's start to the last one's end.
//! - **texts/s (SQLite)**: the same campaign by one `Dispatcher::run` (SQLite has no fleet) at
//!   the same concurrency.
//! - **opt-outs/s**: `--opt-outs` STOPs of distinct numbers recorded by `--concurrency`
//!   concurrent callers (`OptOutStore::record`) on one store.
//!
//! After every send, the stand-in must have created exactly one message per record (none
//! missing, none twice): a bench that sends twice is wrong, and it stops with an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sms_core::dispatch::FleetOptions;
use sms_core::journal::{CampaignSettings, Journal, RateLimit, WorkerId};
use sms_core::{
    CancellationToken, ChangeSource, DispatchOptions, Dispatcher, OptOutAction, OptOutChange,
    OptOutStore, Org, PhoneNumber, Timestamp,
};
use sms_postgres::PgStore;
use sms_postgres::test_support::{TestDatabase, URL_VARIABLE};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::{body, campaign, number};
use sms_tests::fake_twilio::FakeTwilio;
use sms_twilio::TwilioProvider;

/// Campaigns made so far (each a name of its own).
static CAMPAIGNS: AtomicUsize = AtomicUsize::new(0);

struct Args {
    url: Option<String>,
    records: usize,
    concurrency: u32,
    batch_numbers: u32,
    workers: Vec<usize>,
    opt_outs: usize,
    cold_statistics: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        url: None,
        records: 5_000,
        concurrency: 256,
        batch_numbers: 1_250,
        workers: vec![1, 2, 4],
        opt_outs: 5_000,
        cold_statistics: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| {
            text.parse::<usize>()
                .map_err(|e| format!("{flag} {text}: {e}"))
        };
        match flag.as_str() {
            "--url" => args.url = Some(value()?),
            "--cold-statistics" => args.cold_statistics = true,
            "--records" => args.records = number(value()?)?,
            "--concurrency" => {
                args.concurrency = u32::try_from(number(value()?)?).map_err(|e| e.to_string())?
            }
            "--batch-numbers" => {
                args.batch_numbers = u32::try_from(number(value()?)?).map_err(|e| e.to_string())?
            }
            "--opt-outs" => args.opt_outs = number(value()?)?,
            "--workers" => {
                args.workers = value()?
                    .split(',')
                    .map(|w| number(w.trim().to_owned()))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.records == 0 || args.records > 10_000 {
        return Err("--records: 1 to 10,000 (one number per record)".to_owned());
    }
    if args.concurrency == 0 || args.workers.contains(&0) {
        return Err("--concurrency and --workers: at least 1".to_owned());
    }
    Ok(args)
}

fn provider(twilio: &FakeTwilio) -> Arc<TwilioProvider> {
    Arc::new(twilio.single_attempt_provider())
}

fn settings(concurrency: u32) -> CampaignSettings {
    CampaignSettings {
        provider: None,
        rate: RateLimit::Unlimited,
        concurrency,
        ..Default::default()
    }
}

/// Exactly one message per record: every (number, body) of the campaign once, nothing else.
fn check_sent_once(twilio: &FakeTwilio, records: usize) -> Result<(), String> {
    let created = twilio.created_per_recipient();
    let twice = created.values().filter(|&&n| n > 1).count();
    let missing = (0..records)
        .filter(|&i| {
            created
                .get(&(number(i).to_string(), body(i)))
                .is_none_or(|&n| n == 0)
        })
        .count();
    let total: u32 = created.values().sum();
    if twice > 0 || missing > 0 || total as usize != records {
        return Err(format!(
            "the stand-in created {total} messages for {records} records: {twice} recipients \
             got more than one, {missing} records got none"
        ));
    }
    Ok(())
}

struct Row {
    store: &'static str,
    what: String,
    count: usize,
    seconds: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }
}

/// `workers` fleet workers sending one campaign of `records` records together.
async fn postgres_texts(
    db: &TestDatabase,
    args: &Args,
    workers: usize,
    twilio: &FakeTwilio,
) -> Result<Row, String> {
    let provider = provider(twilio);
    let org = Org::default();
    let first = PgStore::connect(db.url(), org.clone())
        .await
        .map_err(|e| e.to_string())?;
    let name = format!(
        "fleet-{workers}-{}",
        CAMPAIGNS.fetch_add(1, Ordering::Relaxed)
    );
    let c = campaign(
        &name,
        args.records,
        args.records,
        settings(args.concurrency),
    );
    let id = c.id.clone();
    first.create_campaign(c).await.map_err(|e| e.to_string())?;
    if !args.cold_statistics {
        // A server in use has statistics of these tables; a fresh schema has none until
        // autovacuum's first pass (within a minute or so), and meanwhile the fleet's lease
        // statements may pick plans that take seconds each (see --cold-statistics).
        db.admin()
            .await
            .batch_execute(&format!(
                "ANALYZE {0}.sms_records, {0}.sms_number_leases",
                db.name()
            ))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut stores = vec![first];
    for _ in 1..workers {
        stores.push(
            PgStore::connect(db.url(), org.clone())
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let options = FleetOptions {
        batch_numbers: args.batch_numbers,
        lease: Duration::from_secs(60),
        poll: Duration::from_millis(200),
        hold_in_doubt: Duration::from_secs(60),
    };
    let started = Instant::now();
    let runs: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(n, store)| {
            let store = Arc::new(store);
            let dispatcher = Dispatcher::new(provider.clone(), store.clone(), store)
                .with_options(DispatchOptions::default());
            let id = id.clone();
            tokio::spawn(async move {
                dispatcher
                    .run_fleet(
                        id,
                        WorkerId::new(format!("bench-{workers}-{n}")),
                        options,
                        CancellationToken::new(),
                    )
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    for run in runs {
        let summary = run
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        accepted = accepted.max(summary.report.totals.accepted);
    }
    let seconds = started.elapsed().as_secs_f64();
    if accepted != args.records as u64 {
        return Err(format!(
            "{accepted} of {} records accepted with {workers} workers",
            args.records
        ));
    }
    check_sent_once(twilio, args.records)?;
    Ok(Row {
        store: "PostgreSQL",
        what: format!(
            "texts, {workers} fleet worker{}",
            if workers == 1 { "" } else { "s" }
        ),
        count: args.records,
        seconds,
    })
}

async fn sqlite_texts(
    store: Arc<SqliteStore>,
    args: &Args,
    twilio: &FakeTwilio,
) -> Result<Row, String> {
    let provider = provider(twilio);
    let c = campaign(
        "sqlite",
        args.records,
        args.records,
        settings(args.concurrency),
    );
    let id = c.id.clone();
    store.create_campaign(c).await.map_err(|e| e.to_string())?;
    let dispatcher =
        Dispatcher::new(provider, store.clone(), store).with_options(DispatchOptions::default());
    let started = Instant::now();
    let summary = tokio::spawn(async move { dispatcher.run(id, CancellationToken::new()).await })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    if summary.report.totals.accepted != args.records as u64 {
        return Err(format!(
            "{} of {} records accepted",
            summary.report.totals.accepted, args.records
        ));
    }
    check_sent_once(twilio, args.records)?;
    Ok(Row {
        store: "SQLite",
        what: "texts, one run".to_owned(),
        count: args.records,
        seconds,
    })
}

/// `count` STOPs of distinct numbers from `callers` concurrent callers; checks each is stored.
async fn opt_outs<S: OptOutStore + 'static>(
    store: Arc<S>,
    name: &'static str,
    count: usize,
    callers: usize,
) -> Result<Row, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let store = store.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<(), String>(());
                    }
                    store
                        .record(OptOutChange {
                            number: opt_out_number(i),
                            action: OptOutAction::Stop,
                            at: Timestamp::now(),
                            source: ChangeSource::Inbound,
                            message_sid: Some(format!("SMstop{i}")),
                            body: Some("STOP".into()),
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let stored = store.snapshot().await.map_err(|e| e.to_string())?.len();
    if stored != count {
        return Err(format!("{stored} of {count} opt-outs stored ({name})"));
    }
    Ok(Row {
        store: name,
        what: format!("opt-outs, {callers} callers"),
        count,
        seconds,
    })
}

/// Numbers of their own for the opt-outs (not the campaigns').
fn opt_out_number(i: usize) -> PhoneNumber {
    PhoneNumber::from_e164(&format!("+1212300{:04}", i % 10_000)).expect("a valid NANP number")
}

/// The server's `synchronous_commit`, refused unless `on`.
async fn check_durable(db: &TestDatabase) -> Result<(), String> {
    let durable: String = db
        .admin()
        .await
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if durable != "on" {
        return Err(format!(
            "the server runs with synchronous_commit={durable}: this bench measures durable \
             writes; set it to on"
        ));
    }
    Ok(())
}

/// Every figure, in the table's order. The stand-ins (each a runtime of its own) are started
/// and dropped outside `runtime`'s tasks.
fn bench(runtime: &tokio::runtime::Runtime, args: &Args) -> Result<Vec<Row>, String> {
    let db = runtime
        .block_on(TestDatabase::create())
        .ok_or_else(|| format!("give --url or set {URL_VARIABLE}"))?;
    runtime.block_on(check_durable(&db))?;
    let mut rows = Vec::new();
    {
        // A first campaign on fresh tables runs slower (hint bits set, pages first dirtied,
        // autovacuum's first passes): shown, but not the figure.
        let twilio = FakeTwilio::start();
        let mut warm_up = runtime.block_on(postgres_texts(&db, args, 1, &twilio))?;
        warm_up.what = format!("{} (warm-up on fresh tables)", warm_up.what);
        rows.push(warm_up);
    }
    for &workers in &args.workers {
        let twilio = FakeTwilio::start();
        rows.push(runtime.block_on(postgres_texts(&db, args, workers, &twilio))?);
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sqlite =
        Arc::new(SqliteStore::open(dir.path().join("bench.db")).map_err(|e| e.to_string())?);
    let twilio = FakeTwilio::start();
    rows.push(runtime.block_on(sqlite_texts(sqlite.clone(), args, &twilio))?);
    let callers = args.concurrency as usize;
    rows.push(runtime.block_on(async {
        let pg = PgStore::connect(db.url(), Org::default())
            .await
            .map_err(|e| e.to_string())?;
        opt_outs(Arc::new(pg), "PostgreSQL", args.opt_outs, callers).await
    })?);
    rows.push(runtime.block_on(opt_outs(sqlite, "SQLite", args.opt_outs, callers))?);
    Ok(rows)
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("fleet_throughput: {error}");
            std::process::exit(2);
        }
    };
    if let Some(url) = &args.url {
        // SAFETY: set before any thread of this process is started (the runtime is built
        // below), so nothing reads the environment concurrently.
        unsafe { std::env::set_var(URL_VARIABLE, url) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "{} records (one number each), concurrency {}, fleet batches of {} numbers, \
         no rate limit; PostgreSQL synchronous_commit=on, SQLite synchronous=FULL",
        args.records, args.concurrency, args.batch_numbers
    );
    match bench(&runtime, &args) {
        Ok(rows) => {
            println!("| store | what | count | seconds | per second |\n|---|---|---|---|---|");
            for row in rows {
                println!(
                    "| {} | {} | {} | {:.3} | {:.0} |",
                    row.store,
                    row.what,
                    row.count,
                    row.seconds,
                    row.rate()
                );
            }
        }
        Err(error) => {
            eprintln!("fleet_throughput: {error}");
            std::process::exit(1);
        }
    }
}
