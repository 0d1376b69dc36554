//! A stand-in for Twilio's Messages API on 127.0.0.1, for tests and benchmarks.
//!
//! It accepts `POST /2010-04-01/Accounts/{sid}/Messages.json`, lists messages with
//! `GET …/Messages.json?To=…&DateSent>=…` (what reconciliation after a crash asks), answers
//! `GET …/Balance.json`, and counts every message it created, so a test can assert that each
//! recipient was accepted exactly once. Faults are injected per request by a plan the test sets:
//! status errors (429 with `Retry-After`, 500, 400 with Twilio error codes), delays, and
//! connection resets before or after the message is created (the "may have been sent" case).
//!
//! It runs on its own runtime thread, so plain `#[test]`s that spawn processes and criterion
//! benches can use it as well as async tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Wait this long, then behave as `None` (a slow server).
    Delay(Duration),
    /// Drop the connection without creating the message.
    ResetBeforeCreate,
    /// Create the message, then drop the connection: the client cannot know it was created.
    ResetAfterCreate,
    /// Create the message, then answer 500: the client cannot know it was created.
    ErrorAfterCreate,
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
    /// Milliseconds since the epoch when created.
    pub created_ms: i64,
}

type Plan = Box<dyn FnMut(u64, &HashMap<String, String>) -> Fault + Send>;

struct Inner {
    created: Mutex<Vec<Created>>,
    plan: Mutex<Plan>,
    requests: AtomicU64,
    balance: Mutex<String>,
}

/// A running stand-in. Dropping it stops the server.
pub struct FakeTwilio {
    addr: SocketAddr,
    inner: Arc<Inner>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeTwilio {
    /// Starts a stand-in on a free port of 127.0.0.1 that accepts everything.
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
            balance: Mutex::new("100.00".to_owned()),
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

    /// Every message created so far, oldest first.
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

fn message_json(account: &str, message: &Created) -> serde_json::Value {
    let date = rfc2822(message.created_ms);
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

async fn create_message(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let number = inner.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if !headers.contains_key("authorization") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(error_body(401, 20003, "Authenticate")),
        )
            .into_response();
    }
    let form: HashMap<String, String> = form_pairs(&body);
    let to = form.get("To").cloned().unwrap_or_default();
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
    let create = |inner: &Inner| {
        let mut created = lock(&inner.created);
        let message = Created {
            sid: format!("SM{:032x}", created.len() + 1),
            to: to.clone(),
            body: form.get("Body").cloned().unwrap_or_default(),
            created_ms: now_ms(),
        };
        created.push(message.clone());
        message
    };
    match fault {
        Fault::None => {}
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
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
            return response;
        }
        Fault::ResetBeforeCreate => reset_connection(),
        Fault::ResetAfterCreate => {
            create(&inner);
            reset_connection()
        }
        Fault::ErrorAfterCreate => {
            create(&inner);
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(error_body(500, 20500, "Internal Server Error")),
            )
                .into_response();
        }
    }
    let message = create(&inner);
    (
        StatusCode::CREATED,
        axum::Json(message_json(&account, &message)),
    )
        .into_response()
}

async fn list_messages(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = form_pairs(query.as_deref().unwrap_or(""));
    let to = query.get("To");
    // Twilio's DateSent filters match date_sent, which a queued message does not have yet
    // (and every message here is queued): any such filter leaves them all out.
    let filters_on_date_sent = query.keys().any(|k| k.starts_with("DateSent"));
    let created = lock(&inner.created);
    let messages: Vec<serde_json::Value> = created
        .iter()
        .rev()
        .filter(|m| to.is_none_or(|to| &m.to == to))
        .filter(|_| !filters_on_date_sent)
        .map(|m| message_json(&account, m))
        .collect();
    axum::Json(json!({
        "messages": messages,
        "end": messages.len().saturating_sub(1),
        "first_page_uri": format!("/2010-04-01/Accounts/{account}/Messages.json?PageSize=1000&Page=0"),
        "next_page_uri": null,
        "page": 0,
        "page_size": 1000,
        "previous_page_uri": null,
        "start": 0,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages.json?PageSize=1000&Page=0"),
    }))
    .into_response()
}

async fn balance(State(inner): State<Arc<Inner>>, Path(account): Path<String>) -> Response {
    let amount = lock(&inner.balance).clone();
    axum::Json(json!({"account_sid": account, "balance": amount, "currency": "USD"}))
        .into_response()
}

fn form_pairs(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
