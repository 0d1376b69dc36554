//! A host's own axum application receiving what Twilio posts: inbound replies (a STOP is
//! recorded durably before Twilio gets its answer) and status callbacks (delivery statuses
//! into the send journal). Every request's `X-Twilio-Signature` is checked first.
//!
//! Serve it: `TWILIO_AUTH_TOKEN=... PUBLIC_URL=https://sms.example.org cargo run -p sms-twilio
//! --example webhooks`, then in the Twilio console set the number's "A message comes in"
//! webhook to `PUBLIC_URL/twilio/sms` and send with `status_callback(PUBLIC_URL/twilio/status)`.
//! It listens on 127.0.0.1:3000 (`PORT` to change), behind the host's TLS proxy.
//!
//! Try it without Twilio or a network: `cargo run -p sms-twilio --example webhooks --
//! --self-test` binds a free local port, sends itself the signed requests Twilio would send
//! (a STOP, a forged STOP, a status callback), prints what happened and exits.
//!
//! The one thing to get right: Twilio signs the URL *it* requested, your public https URL,
//! not the `http://127.0.0.1:3000/...` the proxy forwards to. So the handler rebuilds the URL
//! from `PUBLIC_URL` and the request's path and query.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sms_core::journal::{DeliveryUpdate, Journal};
use sms_core::{OptOutState, OptOutStore, PhoneNumber, Timestamp};
use sms_sqlite::SqliteStore;
use sms_twilio::{
    Form, InboundHandler, ReplyConfig, SIGNATURE_HEADER, SignatureValidator, WebhookError,
    compute_signature, handle_status_callback, parse_form,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What every request handler shares.
#[derive(Clone)]
struct App {
    /// The base URL Twilio calls (scheme, host, port), without a trailing slash.
    public_url: String,
    /// Checks inbound replies' signatures and records STOP/START in the store.
    inbound: Arc<InboundHandler>,
    /// Checks status callbacks' signatures.
    validator: SignatureValidator,
    /// The same SQLite file the sends were journaled in.
    store: SqliteStore,
}

impl App {
    /// The URL Twilio requested: what its signature covers.
    fn signed_url(&self, uri: &Uri) -> String {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{}{path}", self.public_url)
    }
}

/// The `X-Twilio-Signature` header, when present and readable.
fn signature(headers: &HeaderMap) -> Option<&str> {
    headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok())
}

/// 403 for a request not provably from Twilio (do not act on it), 503 when the store failed
/// (Twilio retries, nothing was recorded), 400 for a request missing what Twilio always sends.
fn refuse(error: &WebhookError) -> Response {
    let status = match error {
        WebhookError::Signature(_) => StatusCode::FORBIDDEN,
        WebhookError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    eprintln!("refused: {error}");
    (status, error.to_string()).into_response()
}

/// "A message comes in": verify, record a STOP/START durably, answer TwiML.
async fn inbound_sms(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = app.signed_url(&uri);
    match app
        .inbound
        .handle_form_body(&url, &body, signature(&headers), Timestamp::now())
        .await
    {
        Ok(outcome) => {
            // The host's own follow-up goes here: a case note on the records carrying this
            // number, a HELP answered by the office... `outcome` says what the text meant.
            eprintln!(
                "reply from {}: {:?} ({})",
                outcome.message.from,
                outcome.classification.class,
                if outcome.change.is_some() {
                    "recorded"
                } else {
                    "nothing recorded"
                }
            );
            (
                [(header::CONTENT_TYPE, "text/xml")],
                outcome.response_body().to_owned(),
            )
                .into_response()
        }
        Err(error) => refuse(&error),
    }
}

/// A status callback: verify, then journal the delivery status against the record sent with
/// that message id.
async fn status_callback(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = app.signed_url(&uri);
    let update = match handle_status_callback(
        &app.validator,
        &url,
        &parse_form(&body),
        signature(&headers),
    ) {
        Ok(update) => update,
        Err(error) => return refuse(&error),
    };
    let recorded = app
        .store
        .record_delivery(DeliveryUpdate {
            provider_id: update.message_sid.clone(),
            status: update.status.clone(),
            error_code: update.error_code,
            segments: None,
            at: Timestamp::now(),
        })
        .await;
    match recorded {
        // `false`: not a message of this database (another app on the account): still 200,
        // or Twilio keeps retrying.
        Ok(ours) => {
            eprintln!(
                "status of {}: {} ({})",
                update.message_sid,
                update.raw_status,
                if ours { "journaled" } else { "not one of ours" }
            );
            StatusCode::OK.into_response()
        }
        Err(error) => {
            eprintln!("cannot journal the status: {error}");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The host's router: mount these two routes wherever its application lives.
fn router(app: App) -> Router {
    Router::new()
        .route("/twilio/sms", post(inbound_sms))
        .route("/twilio/status", post(status_callback))
        .with_state(app)
}

fn app(public_url: &str, auth_token: &str, store: SqliteStore) -> App {
    let validator = SignatureValidator::new(auth_token);
    let inbound = InboundHandler::new(validator.clone(), Arc::new(store.clone()))
        // Only when Twilio's Advanced Opt-Out does not answer STOP itself (it does by default
        // on long codes; then no confirmation is sent whatever this says).
        .with_replies(ReplyConfig {
            stop_confirmation: Some(
                "You will get no more texts from Example Rec Center. Reply START to resume."
                    .to_owned(),
            ),
            start_confirmation: None,
        });
    App {
        public_url: public_url.trim_end_matches('/').to_owned(),
        inbound: Arc::new(inbound),
        validator,
        store,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("--self-test") {
        return self_test().await;
    }
    let token = std::env::var("TWILIO_AUTH_TOKEN").map_err(|_| "set TWILIO_AUTH_TOKEN")?;
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |p| p.parse())?;
    let public_url =
        std::env::var("PUBLIC_URL").unwrap_or_else(|_| format!("http://127.0.0.1:{port}"));
    let db = std::env::var("SMS_DB").unwrap_or_else(|_| "sms.db".to_owned());
    let store = SqliteStore::open(&db)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    eprintln!(
        "listening on {}; Twilio calls {public_url}/twilio/sms and /twilio/status",
        listener.local_addr()?
    );
    axum::serve(listener, router(app(&public_url, &token, store))).await?;
    Ok(())
}

// ---- --self-test: what Twilio would send, over real HTTP to this very application ----------

const DEMO_TOKEN: &str = "demo-auth-token";
const CLIENT: &str = "+14155552671";
const OUR_NUMBER: &str = "+15005550006";

async fn self_test() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("sms.db"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Here the public URL is the local one: no proxy in between.
    let public_url = format!("http://{addr}");
    let router = router(app(&public_url, DEMO_TOKEN, store.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let mut stop = Form::new();
    stop.push("MessageSid", "SM00000000000000000000000000000001")
        .push("AccountSid", "AC00000000000000000000000000000000")
        .push("From", CLIENT)
        .push("To", OUR_NUMBER)
        .push("Body", "Stop")
        .push("NumSegments", "1");
    let url = format!("{public_url}/twilio/sms");
    let signed = compute_signature(DEMO_TOKEN, &url, stop.fields());

    let (status, _) = post_form(addr, "/twilio/sms", &stop, "forged-signature").await?;
    println!(
        "forged STOP: HTTP {status}, {} change(s) on file",
        store.history(PhoneNumber::from_e164(CLIENT)?).await?.len()
    );
    let (status, twiml) = post_form(addr, "/twilio/sms", &stop, &signed).await?;
    println!("signed STOP: HTTP {status}");
    println!("  TwiML: {twiml}");
    let state = store.state(PhoneNumber::from_e164(CLIENT)?).await?;
    println!(
        "  {CLIENT} is {}",
        match state {
            OptOutState::OptedOut { .. } => "opted out (recorded in the SQLite file)",
            OptOutState::OptedIn => "NOT opted out",
        }
    );
    // Twilio retries a webhook it did not see answered: the same message records nothing new.
    let (status, _) = post_form(addr, "/twilio/sms", &stop, &signed).await?;
    println!(
        "same STOP again (a retry): HTTP {status}, {} change(s) on file",
        store.history(PhoneNumber::from_e164(CLIENT)?).await?.len()
    );

    let mut delivered = Form::new();
    delivered
        .push("MessageSid", "SM0000000000000000000000000000000a")
        .push("MessageStatus", "delivered")
        .push("To", CLIENT)
        .push("From", OUR_NUMBER);
    let status_url = format!("{public_url}/twilio/status");
    let signed = compute_signature(DEMO_TOKEN, &status_url, delivered.fields());
    let (status, _) = post_form(addr, "/twilio/status", &delivered, &signed).await?;
    println!("signed status callback: HTTP {status}");
    server.abort();
    Ok(())
}

/// A form POST as Twilio makes it, over a plain TCP connection (no HTTP client needed for the
/// demo). Returns the status code and the body.
async fn post_form(
    addr: SocketAddr,
    path: &str,
    form: &Form,
    signature: &str,
) -> std::io::Result<(u16, String)> {
    let body = form.encode();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{SIGNATURE_HEADER}: {signature}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    Ok((status, body))
}
