//! A stand-in for Twilio's Messages API on 127.0.0.1, for tests and benchmarks, as hard as the
//! real service where a duplicate text could hide.
//!
//! It accepts `POST /2010-04-01/Accounts/{sid}/Messages.json`, lists messages with
//! `GET …/Messages.json?To=…` (what reconciliation after a crash asks), answers
//! `GET …/Balance.json`, and counts every message it created, so a test can assert that each
//! recipient was accepted exactly once. Like Twilio:
//!
//! - the list is newest first and paged (`PageSize`, `Page`, `PageToken`, `next_page_uri`);
//!   [`FakeTwilio::set_max_page_size`] forces small pages;
//! - the list is eventually consistent: [`FakeTwilio::set_list_lag`] hides a message from
//!   lists until some time after it was created;
//! - `date_sent` stays null (every message is queued), so a `DateSent` filter hides them all;
//! - its clock need not agree with ours: [`FakeTwilio::set_clock_offset`] shifts `date_created`
//!   and the `Date` header of every answer.
//!
//! Faults are injected per create request by a plan the test sets: status errors (429 with
//! `Retry-After`, 500, 400 with Twilio error codes), slow answers (after or before creating),
//! and connection resets before or after the message is created (the "may have been sent"
//! case). Every fault that fires is counted by kind ([`FakeTwilio::fault_counts`]), so a test
//! can prove that what it injected happened.
//!
//! It runs on its own runtime thread, so plain `#[test]`s that spawn processes and criterion
//! benches can use it as well as async tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// What the stand-in does with one create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Create the message and answer 201.
    None,
    /// Answer with this HTTP status and Twilio error body, creating nothing.
    Status {
        /// HTTP status.
        status: u16,
        /// Twilio error code.
        code: u32,
        /// `Retry-After` header in seconds, when set.
        retry_after_s: Option<u64>,
    },
    /// Create the message at once, then answer 201 this much later. A client whose timeout is
    /// shorter gets no answer although the message exists: Twilio's likeliest duplicate. The
    /// creation runs in its own task, so it completes even when the client hangs up.
    Delay(Duration),
    /// Wait this long, then create and answer: a client that hangs up first leaves nothing
    /// created (a server slow before it took the request).
    DelayBeforeCreate(Duration),
    /// Drop the connection without creating the message.
    ResetBeforeCreate,
    /// Create the message, then drop the connection: the client cannot know it was created.
    ResetAfterCreate,
    /// Create the message, then answer 500: the client cannot know it was created.
    ErrorAfterCreate,
}

impl Fault {
    /// The name the fault is counted under in [`FakeTwilio::fault_counts`]: `status_429`,
    /// `delay`, `delay_before_create`, `reset_before_create`, `reset_after_create`,
    /// `error_after_create` (`none` is not counted).
    pub fn kind(&self) -> String {
        match self {
            Fault::None => "none".into(),
            Fault::Status { status, .. } => format!("status_{status}"),
            Fault::Delay(_) => "delay".into(),
            Fault::DelayBeforeCreate(_) => "delay_before_create".into(),
            Fault::ResetBeforeCreate => "reset_before_create".into(),
            Fault::ResetAfterCreate => "reset_after_create".into(),
            Fault::ErrorAfterCreate => "error_after_create".into(),
        }
    }
}

/// A message the stand-in created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// `SM…` id.
    pub sid: String,
    /// `To` as posted.
    pub to: String,
    /// `Body` as posted.
    pub body: String,
    /// Milliseconds since the epoch (our clock) when created; `date_created` adds the clock
    /// offset.
    pub created_ms: i64,
    /// Creation order, unique: the list's tie-breaker and its page tokens.
    pub seq: u64,
}

type Plan = Box<dyn FnMut(u64, &HashMap<String, String>) -> Fault + Send>;

struct Inner {
    created: Mutex<Vec<Created>>,
    plan: Mutex<Plan>,
    requests: AtomicU64,
    list_requests: AtomicU64,
    fired: Mutex<HashMap<String, u64>>,
    balance: Mutex<String>,
    next_seq: AtomicU64,
    list_lag_ms: AtomicU64,
    max_page_size: AtomicUsize,
    clock_offset_ms: AtomicI64,
}

/// Twilio's default and largest page sizes.
const DEFAULT_PAGE_SIZE: usize = 50;
const LARGEST_PAGE_SIZE: usize = 1000;

/// A running stand-in. Dropping it stops the server.
pub struct FakeTwilio {
    addr: SocketAddr,
    inner: Arc<Inner>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeTwilio {
    /// Starts a stand-in on a free port of 127.0.0.1 that accepts everything, lists at once,
    /// pages as Twilio does (up to 1,000 per page) and agrees with our clock.
    pub fn start() -> FakeTwilio {
        quiet_connection_resets();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the stand-in");
        let inner = Arc::new(Inner {
            created: Mutex::new(Vec::new()),
            plan: Mutex::new(Box::new(|_, _| Fault::None)),
            requests: AtomicU64::new(0),
            list_requests: AtomicU64::new(0),
            fired: Mutex::new(HashMap::new()),
            balance: Mutex::new("100.00".to_owned()),
            next_seq: AtomicU64::new(1),
            list_lag_ms: AtomicU64::new(0),
            max_page_size: AtomicUsize::new(LARGEST_PAGE_SIZE),
            clock_offset_ms: AtomicI64::new(0),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                get(list_messages).post(create_message),
            )
            .route("/2010-04-01/Accounts/{account}/Balance.json", get(balance))
            .with_state(inner.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("a bound address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTwilio {
            addr,
            inner,
            _runtime: runtime,
        }
    }

    /// A `TwilioProvider` builder pointed at this stand-in: a test account and token, a
    /// sender, the stand-in's URL. Callers add their retry policy and timeout.
    pub fn provider_builder(&self) -> sms_twilio::TwilioBuilder {
        sms_twilio::TwilioProvider::builder("AC00000000000000000000000000000000")
            .auth_token("not-a-real-token")
            .from_number("+15005550006")
            .base_url(self.base_url())
    }

    /// The provider the benchmarks use: one attempt per call (no retry), so that a figure
    /// counts each text once.
    pub fn single_attempt_provider(&self) -> sms_twilio::TwilioProvider {
        self.provider_builder()
            .retry_policy(sms_twilio::RetryPolicy {
                max_attempts: 1,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            })
            .build()
            .expect("a valid configuration")
    }

    /// `http://127.0.0.1:PORT`, to pass as the provider's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the fault plan: called with the 1-based number of each create request and its form.
    pub fn set_plan(
        &self,
        plan: impl FnMut(u64, &HashMap<String, String>) -> Fault + Send + 'static,
    ) {
        *lock(&self.inner.plan) = Box::new(plan);
    }

    /// Sets the balance `Balance.json` reports.
    pub fn set_balance(&self, amount: &str) {
        *lock(&self.inner.balance) = amount.to_owned();
    }

    /// Lists a message only `lag` after it was created (Twilio's list is eventually
    /// consistent). Default: at once.
    pub fn set_list_lag(&self, lag: Duration) {
        let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
        self.inner.list_lag_ms.store(ms, Ordering::SeqCst);
    }

    /// Caps the list's page size whatever `PageSize` asks (at least 1), so a history spans
    /// several pages. Default: Twilio's largest, 1,000.
    pub fn set_max_page_size(&self, size: usize) {
        self.inner
            .max_page_size
            .store(size.max(1), Ordering::SeqCst);
    }

    /// Twilio's clock is `offset_ms` ahead of ours (negative: behind): added to every
    /// `date_created` and to the `Date` header of every answer. Default: 0.
    pub fn set_clock_offset(&self, offset_ms: i64) {
        self.inner
            .clock_offset_ms
            .store(offset_ms, Ordering::SeqCst);
    }

    /// Adds a message as if created `created_ms` (our clock), without a request: a number's
    /// history from before the test. Listed at once whatever the lag, when old enough.
    pub fn seed(&self, to: &str, body: &str, created_ms: i64) -> Created {
        let mut created = lock(&self.inner.created);
        let seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
        let message = Created {
            sid: format!("SM{seq:032x}"),
            to: to.to_owned(),
            body: body.to_owned(),
            created_ms,
            seq,
        };
        created.push(message.clone());
        message
    }

    /// Every message created so far (seeded ones included), in creation order.
    pub fn created(&self) -> Vec<Created> {
        lock(&self.inner.created).clone()
    }

    /// How many messages were created for each (to, body).
    pub fn created_per_recipient(&self) -> HashMap<(String, String), u32> {
        let mut counts = HashMap::new();
        for message in lock(&self.inner.created).iter() {
            *counts
                .entry((message.to.clone(), message.body.clone()))
                .or_default() += 1;
        }
        counts
    }

    /// Create requests received so far (faulted ones included).
    pub fn create_requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// List requests received so far (one per page).
    pub fn list_requests(&self) -> u64 {
        self.inner.list_requests.load(Ordering::SeqCst)
    }

    /// How many times each injected fault fired, by [`Fault::kind`].
    pub fn fault_counts(&self) -> HashMap<String, u64> {
        lock(&self.inner.fired).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn rfc2822(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|ts| {
            jiff::fmt::rfc2822::to_string(&ts.to_zoned(jiff::tz::TimeZone::UTC)).unwrap_or_default()
        })
        .unwrap_or_default()
}

fn error_body(status: u16, code: u32, message: &str) -> serde_json::Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

fn message_json(account: &str, message: &Created, offset_ms: i64) -> serde_json::Value {
    let date = rfc2822(message.created_ms.saturating_add(offset_ms));
    json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": message.body,
        "date_created": date,
        // Like Twilio: no date_sent while the message is still queued (all of them, here).
        "date_sent": null,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": "+15005550006",
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": "1",
        "price": null,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "queued",
        "subresource_uris": {},
        "to": message.to,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{}.json", message.sid),
    })
}

/// Drops the connection: panicking inside the handler ends hyper's connection task, so the
/// client sees the connection close without a response.
fn reset_connection() -> ! {
    std::panic::panic_any(ConnectionReset)
}

/// Keeps the deliberate resets out of test output; every other panic is reported as before.
fn quiet_connection_resets() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<ConnectionReset>().is_none() {
                previous(info);
            }
        }));
    });
}

/// The payload of the deliberate panic that resets a connection.
#[derive(Debug)]
pub struct ConnectionReset;

/// Adds a message to the store, now (our clock).
fn create(inner: &Inner, to: &str, body: &str) -> Created {
    let mut created = lock(&inner.created);
    let seq = inner.next_seq.fetch_add(1, Ordering::SeqCst);
    let message = Created {
        sid: format!("SM{seq:032x}"),
        to: to.to_owned(),
        body: body.to_owned(),
        created_ms: now_ms(),
        seq,
    };
    created.push(message.clone());
    message
}

/// The `Date` header as Twilio's clock (ours plus the offset) would give it.
fn with_date(inner: &Inner, mut response: Response) -> Response {
    let at = now_ms().saturating_add(inner.clock_offset_ms.load(Ordering::SeqCst));
    let date = jiff::Timestamp::from_millisecond(at)
        .ok()
        .and_then(|ts| {
            jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&ts)
                .ok()
        })
        .and_then(|text| HeaderValue::from_str(&text).ok());
    if let Some(date) = date {
        response.headers_mut().insert("date", date);
    }
    response
}

async fn create_message(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let response = create_answer(&inner, &account, &headers, &body).await;
    with_date(&inner, response)
}

async fn create_answer(
    inner: &Arc<Inner>,
    account: &str,
    headers: &HeaderMap,
    body: &str,
) -> Response {
    let number = inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if !headers.contains_key("authorization") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(error_body(401, 20003, "Authenticate")),
        )
            .into_response();
    }
    let form: HashMap<String, String> = form_pairs(body);
    let to = form.get("To").cloned().unwrap_or_default();
    let text = form.get("Body").cloned().unwrap_or_default();
    if !to.starts_with('+') {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(error_body(
                400,
                21211,
                "The 'To' number is not a valid phone number.",
            )),
        )
            .into_response();
    }
    let fault = (lock(&inner.plan))(number, &form);
    if fault != Fault::None {
        *lock(&inner.fired).entry(fault.kind()).or_default() += 1;
    }
    let offset = inner.clock_offset_ms.load(Ordering::SeqCst);
    let created = |message: Created| {
        (
            StatusCode::CREATED,
            axum::Json(message_json(account, &message, offset)),
        )
            .into_response()
    };
    match fault {
        Fault::None => created(create(inner, &to, &text)),
        Fault::Delay(delay) => {
            // Created in a task of its own: the message exists even if the client hangs up
            // and this handler is dropped while it waits to answer.
            let task = {
                let inner = inner.clone();
                tokio::spawn(async move { create(&inner, &to, &text) })
            };
            let Ok(message) = task.await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            tokio::time::sleep(delay).await;
            created(message)
        }
        Fault::DelayBeforeCreate(delay) => {
            tokio::time::sleep(delay).await;
            created(create(inner, &to, &text))
        }
        Fault::Status {
            status,
            code,
            retry_after_s,
        } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(error_body(status, code, "injected fault")),
            )
                .into_response();
            if let Some(seconds) = retry_after_s {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(seconds));
            }
            response
        }
        Fault::ResetBeforeCreate => reset_connection(),
        Fault::ResetAfterCreate => {
            create(inner, &to, &text);
            reset_connection()
        }
        Fault::ErrorAfterCreate => {
            create(inner, &to, &text);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(error_body(500, 20500, "Internal Server Error")),
            )
                .into_response()
        }
    }
}

async fn list_messages(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    inner.list_requests.fetch_add(1, Ordering::SeqCst);
    let query = form_pairs(query.as_deref().unwrap_or(""));
    let to = query.get("To");
    // Twilio's DateSent filters match date_sent, which a queued message does not have yet
    // (and every message here is queued): any such filter leaves them all out.
    let filters_on_date_sent = query.keys().any(|k| k.starts_with("DateSent"));
    let page_size = query
        .get("PageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, LARGEST_PAGE_SIZE)
        .min(inner.max_page_size.load(Ordering::SeqCst));
    let page: u64 = query.get("Page").and_then(|s| s.parse().ok()).unwrap_or(0);
    // The token names the last message of the previous page (created_ms and seq): the next
    // page holds what is older, so messages created while a client pages shift nothing.
    let after: Option<(i64, u64)> = query
        .get("PageToken")
        .and_then(|t| t.strip_prefix("PA"))
        .and_then(|t| t.split_once('_'))
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)));
    let lag = i64::try_from(inner.list_lag_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
    let visible_until = now_ms().saturating_sub(lag);
    let offset = inner.clock_offset_ms.load(Ordering::SeqCst);
    let mut matching: Vec<Created> = lock(&inner.created)
        .iter()
        .filter(|m| to.is_none_or(|to| &m.to == to))
        .filter(|m| m.created_ms <= visible_until)
        .filter(|m| after.is_none_or(|key| (m.created_ms, m.seq) < key))
        .filter(|_| !filters_on_date_sent)
        .cloned()
        .collect();
    // Newest first.
    matching.sort_by_key(|m| std::cmp::Reverse((m.created_ms, m.seq)));
    let more = matching.len() > page_size;
    matching.truncate(page_size);
    let list_uri = |page: u64, token: Option<String>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(to) = to {
            q.append_pair("To", to);
        }
        q.append_pair("PageSize", &page_size.to_string());
        q.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            q.append_pair("PageToken", &token);
        }
        format!(
            "/2010-04-01/Accounts/{account}/Messages.json?{}",
            q.finish()
        )
    };
    let next_page_uri = match matching.last() {
        Some(last) if more => Some(list_uri(
            page + 1,
            Some(format!("PA{}_{}", last.created_ms, last.seq)),
        )),
        _ => None,
    };
    let messages: Vec<serde_json::Value> = matching
        .iter()
        .map(|m| message_json(&account, m, offset))
        .collect();
    let start = page * page_size as u64;
    let response = axum::Json(json!({
        "messages": messages,
        "end": (start + messages.len() as u64).saturating_sub(1),
        "first_page_uri": list_uri(0, None),
        "next_page_uri": next_page_uri,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": null,
        "start": start,
        "uri": list_uri(page, None),
    }))
    .into_response();
    with_date(&inner, response)
}

async fn balance(State(inner): State<Arc<Inner>>, Path(account): Path<String>) -> Response {
    let amount = lock(&inner.balance).clone();
    let response =
        axum::Json(json!({"account_sid": account, "balance": amount, "currency": "USD"}))
            .into_response();
    with_date(&inner, response)
}

fn form_pairs(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
