//! The facade as a host sees it, from Rust: the same calls the bindings make, without the
//! foreign language in between (the Python and Kotlin suites prove the crossing itself).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod common;

use common::{client, config, many};
use sms_ffi::{
    CancelHandle, ChangeSource, HostError, OptOutAction, OptOutChange, OptOutStore, PreviewOutcome,
    ProgressListener, ProviderConfig, Recipient, RecipientKind, RecordStatus, ReplyAction,
    SendProgress, SmsClient, SmsError,
};

fn family() -> Vec<Recipient> {
    vec![
        client("1", "(212) 555-0123"),
        client("2", "212.555.0123"),
        client("3", "212 555 0124"),
    ]
}

#[test]
fn a_stop_blocks_every_record_of_a_shared_number_in_the_next_send() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sms = SmsClient::new(config(&dir)).expect("client");
    let reply = sms
        .handle_inbound("+1 212 555 0123".to_owned(), "Stop".to_owned())
        .expect("inbound");
    assert_eq!(reply.action, ReplyAction::OptOut);
    assert!(reply.reply.contains("<Response"), "{}", reply.reply);
    let report = sms
        .send(
            "c1".to_owned(),
            family(),
            "Hi {first_name}".to_owned(),
            None,
            None,
        )
        .expect("send");
    let by_id: HashMap<_, _> = report
        .records
        .iter()
        .map(|r| (r.record_id.as_str(), (r.status, r.reason_code.clone())))
        .collect();
    assert_eq!(
        by_id["1"],
        (RecordStatus::NotSent, Some("opted_out".to_owned()))
    );
    assert_eq!(
        by_id["2"],
        (RecordStatus::NotSent, Some("opted_out".to_owned()))
    );
    assert_eq!(by_id["3"].0, RecordStatus::Sent);
    assert_eq!(
        (report.totals.sent, report.totals.skipped, report.complete),
        (1, 2, true)
    );
    assert_eq!(sms.report("c1".to_owned()).expect("report"), report);
    let state = sms.opt_out_state("2125550123".to_owned()).expect("state");
    assert!(state.opted_out && state.since.is_some());
    assert_eq!(state.history.len(), 1);
}

#[test]
fn a_forged_webhook_is_refused_and_records_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sms = SmsClient::new(config(&dir)).expect("client");
    let url = "https://school.example/twilio/inbound";
    let fields: HashMap<String, String> = [
        ("MessageSid", "SM0001"),
        ("From", "+12125550123"),
        ("To", "+15005550006"),
        ("Body", "STOP"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let pairs: Vec<(String, String)> = fields.clone().into_iter().collect();
    let good = sms_twilio::compute_signature("hook-token", url, &pairs);
    let forged = sms_twilio::compute_signature("another-token", url, &pairs);
    let err = sms
        .handle_inbound_webhook(url.to_owned(), fields.clone(), forged)
        .expect_err("forged");
    assert!(matches!(err, SmsError::WebhookSignature(_)), "{err:?}");
    assert!(!err.to_string().contains("hook-token"), "{err}");
    let before = sms.opt_out_state("+12125550123".to_owned()).expect("state");
    assert!(!before.opted_out, "a forged STOP must record nothing");
    let ok = sms
        .handle_inbound_webhook(url.to_owned(), fields, good)
        .expect("signed");
    assert_eq!(ok.action, ReplyAction::OptOut);
    assert!(
        sms.opt_out_state("+12125550123".to_owned())
            .expect("state")
            .opted_out
    );
}

#[test]
fn preview_names_each_skip_reason_and_prices_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sms = SmsClient::new(config(&dir)).expect("client");
    let mut staff = client("s", "2125550150");
    staff.kind = RecipientKind::Staff {
        permitted_sms_text: false,
    };
    let mut mail_only = client("m", "2125550151");
    mail_only.kind = RecipientKind::Client {
        permitted_marketing_methods: "Mail".to_owned(),
    };
    let recipients = vec![
        client("ok", "2125550152"),
        staff,
        mail_only,
        client("x", ""),
    ];
    let preview = sms
        .preview(recipients, "Hi {first_name}".to_owned())
        .expect("preview");
    let codes: Vec<Option<&str>> = preview
        .items
        .iter()
        .map(|i| match &i.outcome {
            PreviewOutcome::Eligible { .. } => None,
            PreviewOutcome::Blocked { reason_code, .. } => Some(reason_code.as_str()),
        })
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some("staff_not_permitted"),
            Some("client_not_permitted"),
            Some("no_mobile")
        ]
    );
    assert_eq!((preview.totals.texts, preview.totals.skipped), (1, 3));
    assert_eq!(preview.totals.estimated_cost, "0.0083 USD");
}

#[test]
fn bad_input_is_an_error_with_readable_text_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bad = config(&dir);
    bad.region = "Narnia".to_owned();
    let err = SmsClient::new(bad).expect_err("region");
    assert!(
        matches!(err, SmsError::Configuration(ref t) if t.contains("Narnia")),
        "{err:?}"
    );
    let mut nameless = config(&dir);
    nameless.organisation = "a b".to_owned();
    let err = SmsClient::new(nameless).expect_err("organisation");
    assert!(
        matches!(err, SmsError::Configuration(ref t) if t.contains("not an organisation name")),
        "{err:?}"
    );
    let mut half = config(&dir);
    half.program_year = Some("2025-26".to_owned());
    assert!(matches!(
        SmsClient::new(half),
        Err(SmsError::Configuration(_))
    ));
    let sms = SmsClient::new(config(&dir)).expect("client");
    let err = sms
        .send(
            "has space".to_owned(),
            family(),
            "Hi".to_owned(),
            None,
            None,
        )
        .expect_err("campaign id");
    assert!(matches!(err, SmsError::InvalidInput(_)), "{err:?}");
    let err = sms
        .preview(family(), "Hi {first_name".to_owned())
        .expect_err("template");
    assert!(matches!(err, SmsError::Template(_)), "{err:?}");
    let err = sms.report("never-made".to_owned()).expect_err("unknown");
    assert!(err.to_string().contains("never-made"), "{err}");
}

#[test]
fn the_auth_token_never_shows_in_debug_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut twilio = config(&dir);
    twilio.provider = ProviderConfig::Twilio {
        account_sid: format!("AC{}", "0".repeat(32)),
        auth_token: "s3cr3t-token-value".to_owned(),
        from_number: Some("+15005550006".to_owned()),
        messaging_service_sid: None,
        base_url: Some("http://127.0.0.1:9".to_owned()),
    };
    twilio.webhook_auth_token = Some("another-s3cr3t".to_owned());
    let shown = format!("{twilio:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    let sms = SmsClient::new(twilio).expect("client");
    assert!(!format!("{sms:?}").contains("s3cr3t"));
}

/// A progress listener that calls the client back, as a careless host might.
struct CallsBack {
    client: Mutex<Option<Arc<SmsClient>>>,
    seen: Mutex<Vec<Result<(), SmsError>>>,
    thread: Mutex<Option<std::thread::ThreadId>>,
}

impl ProgressListener for CallsBack {
    fn on_progress(&self, _progress: SendProgress) -> Result<(), HostError> {
        *self.thread.lock().expect("lock") = Some(std::thread::current().id());
        let client = self.client.lock().expect("lock").clone();
        if let Some(client) = client {
            let result = client.report("c1".to_owned()).map(|_| ());
            self.seen.lock().expect("lock").push(result);
        }
        Ok(())
    }

    fn on_warning(&self, _warning: String) -> Result<(), HostError> {
        Ok(())
    }
}

#[test]
fn a_call_from_inside_a_callback_is_refused_and_callbacks_run_on_the_callers_thread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sms = SmsClient::new(config(&dir)).expect("client");
    let listener = Arc::new(CallsBack {
        client: Mutex::new(Some(sms.clone())),
        seen: Mutex::new(Vec::new()),
        thread: Mutex::new(None),
    });
    let report = sms
        .send(
            "c1".to_owned(),
            family(),
            "Hi".to_owned(),
            None,
            Some(listener.clone()),
        )
        .expect("the send itself completes");
    assert!(report.complete);
    let seen = listener.seen.lock().expect("lock");
    assert!(!seen.is_empty(), "progress was reported");
    assert!(
        seen.iter()
            .all(|r| matches!(r, Err(SmsError::Reentrant(_)))),
        "{seen:?}"
    );
    assert_eq!(
        *listener.thread.lock().expect("lock"),
        Some(std::thread::current().id())
    );
    // Outside the callback the same call works.
    assert!(sms.report("c1".to_owned()).is_ok());
    *listener.client.lock().expect("lock") = None; // breaks the client <-> listener cycle
}

/// Cancels the run from its first progress event, and fails when asked to.
struct Canceller {
    cancel: Arc<CancelHandle>,
    fail: bool,
    calls: AtomicUsize,
}

impl ProgressListener for Canceller {
    fn on_progress(&self, progress: SendProgress) -> Result<(), HostError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(HostError::Failed {
                reason: "the host's progress bar broke".to_owned(),
            });
        }
        if progress.sent >= 2 {
            self.cancel.cancel();
        }
        Ok(())
    }

    fn on_warning(&self, _warning: String) -> Result<(), HostError> {
        Ok(())
    }
}

#[test]
fn cancel_then_resume_finishes_the_campaign_with_each_record_sent_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut slow = config(&dir);
    slow.rate_per_second = Some(40.0);
    slow.concurrency = 1;
    let sms = SmsClient::new(slow).expect("client");
    let cancel = CancelHandle::new();
    let listener = Arc::new(Canceller {
        cancel: cancel.clone(),
        fail: false,
        calls: AtomicUsize::new(0),
    });
    let first = sms
        .send(
            "c1".to_owned(),
            many(30),
            "Hi".to_owned(),
            Some(cancel),
            Some(listener),
        )
        .expect("cancelled run");
    assert!(first.cancelled && !first.complete, "{:?}", first.totals);
    assert!(first.totals.pending > 0 && first.totals.sent >= 2);
    let second = sms.resume("c1".to_owned(), None, None).expect("resume");
    assert!(second.complete && !second.cancelled);
    assert_eq!(second.totals.sent, 30);
    let ids: std::collections::HashSet<_> = second
        .records
        .iter()
        .filter_map(|r| r.provider_id.clone())
        .collect();
    assert_eq!(ids.len(), 30, "one provider message per record");
    // What the first run sent kept its message id: nothing was sent again.
    for (a, b) in first.records.iter().zip(&second.records) {
        if a.status == RecordStatus::Sent {
            assert_eq!(a.provider_id, b.provider_id);
        }
    }
}

#[test]
fn a_listener_that_raises_stops_the_run_with_an_error_and_resume_finishes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut slow = config(&dir);
    slow.rate_per_second = Some(50.0);
    let sms = SmsClient::new(slow).expect("client");
    let listener = Arc::new(Canceller {
        cancel: CancelHandle::new(),
        fail: true,
        calls: AtomicUsize::new(0),
    });
    let err = sms
        .send(
            "c1".to_owned(),
            many(20),
            "Hi".to_owned(),
            None,
            Some(listener.clone()),
        )
        .expect_err("the listener raised");
    assert!(
        matches!(&err, SmsError::HostCallbackFailed(t) if t.contains("progress bar broke")),
        "{err:?}"
    );
    assert_eq!(listener.calls.load(Ordering::SeqCst), 1, "not called again");
    let done = sms.resume("c1".to_owned(), None, None).expect("resume");
    assert!(done.complete);
    assert_eq!(done.totals.sent, 20);
}

#[test]
fn a_cancelled_handle_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sms = SmsClient::new(config(&dir)).expect("client");
    let cancel = CancelHandle::new();
    cancel.cancel();
    let err = sms
        .send(
            "c1".to_owned(),
            family(),
            "Hi".to_owned(),
            Some(cancel),
            None,
        )
        .expect_err("cancelled");
    assert!(matches!(err, SmsError::Cancelled(_)));
    assert!(sms.campaigns().expect("list").is_empty());
}

/// A host's own opt-out table, in memory.
#[derive(Default)]
struct HostTable {
    rows: Mutex<Vec<OptOutChange>>,
    broken: std::sync::atomic::AtomicBool,
}

impl OptOutStore for HostTable {
    fn record(&self, change: OptOutChange) -> Result<(), HostError> {
        self.rows.lock().expect("lock").push(change);
        Ok(())
    }

    fn history(&self, number: String) -> Result<Vec<OptOutChange>, HostError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(HostError::Failed {
                reason: "host database down".to_owned(),
            });
        }
        let rows = self.rows.lock().expect("lock");
        Ok(rows
            .iter()
            .filter(|c| c.number == number)
            .cloned()
            .collect())
    }

    fn all_changes(&self) -> Result<Vec<OptOutChange>, HostError> {
        Ok(self.rows.lock().expect("lock").clone())
    }
}

#[test]
fn a_host_opt_out_store_is_read_by_the_library_s_own_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = Arc::new(HostTable::default());
    let sms = SmsClient::with_opt_out_store(config(&dir), table.clone()).expect("client");
    sms.handle_inbound("2125550123".to_owned(), "STOP".to_owned())
        .expect("inbound");
    assert_eq!(
        table.rows.lock().expect("lock").len(),
        1,
        "the STOP is the host's row"
    );
    // A START the host stored later but dated earlier does not lift the STOP (clock skew).
    let stop_at = table.rows.lock().expect("lock")[0].at;
    table.rows.lock().expect("lock").push(OptOutChange {
        number: "+12125550123".to_owned(),
        action: OptOutAction::Start,
        at: stop_at - Duration::from_secs(60),
        source: ChangeSource::Inbound,
        message_sid: Some("SMearly".to_owned()),
        body: Some("START".to_owned()),
    });
    let preview = sms.preview(family(), "Hi".to_owned()).expect("preview");
    assert_eq!(
        preview.totals.skipped, 2,
        "both records of the family phone"
    );
    // The host's store failing stops the send of that number: nothing is guessed.
    table.broken.store(true, Ordering::SeqCst);
    let result = sms.send("c1".to_owned(), family(), "Hi".to_owned(), None, None);
    let err = result.expect_err("the store is down");
    assert!(err.to_string().contains("host database down"), "{err}");
    let report = sms.report("c1".to_owned()).expect("report");
    assert_eq!(report.totals.sent, 0, "{report:?}");
    let _ = SystemTime::now();
}

#[test]
fn the_c_batch_writes_each_texts_count_in_place_and_refuses_what_it_cannot_read() {
    let texts: Vec<String> = (0..30_000)
        .map(|i| {
            format!(
                "{}{}",
                ["Hi", "", "caf\u{e9} \u{1F600}", "\u{201C}q\u{201D}"][i % 4],
                "z".repeat(i % 300)
            )
        })
        .collect();
    let joined = texts.join("\0");
    assert!(joined.len() > 2 * 65_536, "big enough to be cut in parts");
    let n = texts.len();
    for smart in [false, true] {
        let (mut segments, mut ucs2) = (vec![0u32; n], vec![7u8; n]);
        // SAFETY: the buffers are as long as the function is told.
        let total = unsafe {
            sms_ffi::sms_text_count_segments_batch(
                joined.as_ptr(),
                joined.len(),
                u8::from(smart),
                n,
                segments.as_mut_ptr(),
                ucs2.as_mut_ptr(),
            )
        };
        let mut sum = 0;
        for (i, text) in texts.iter().enumerate() {
            let one = sms_ffi::count_segments(text.clone(), smart);
            sum += i64::from(one.segments);
            assert_eq!(
                (segments[i], ucs2[i] == 1),
                (one.segments, one.encoding == sms_ffi::Encoding::Ucs2),
                "text {i}: {text:?}"
            );
        }
        assert_eq!(total, sum);
    }
    let (mut segments, mut ucs2) = ([0u32; 3], [0u8; 3]);
    let call = |bytes: &[u8], count: usize, segments: &mut [u32], ucs2: &mut [u8]| {
        // SAFETY: `count` is at most the buffers' length.
        unsafe {
            sms_ffi::sms_text_count_segments_batch(
                bytes.as_ptr(),
                bytes.len(),
                0,
                count,
                segments.as_mut_ptr(),
                ucs2.as_mut_ptr(),
            )
        }
    };
    assert_eq!(
        call(b"a\0\xff\0c", 3, &mut segments, &mut ucs2),
        -1,
        "not UTF-8"
    );
    assert_eq!(
        call(b"a\0b", 3, &mut segments, &mut ucs2),
        -2,
        "two texts, not three"
    );
    assert_eq!(
        call(b"a\0b\0c", 2, &mut segments, &mut ucs2),
        -2,
        "three texts, not two"
    );
    assert_eq!(
        call(b"a\0\0c", 3, &mut segments, &mut ucs2),
        3,
        "an empty text counts as one segment"
    );
    assert_eq!(segments, [1, 1, 1]);
}

#[test]
fn the_packed_batch_answers_text_by_text_what_count_segments_answers_even_when_split() {
    // Over 64 KiB the batch is counted in two halves at once: the seam must not move a text.
    let samples = [
        "Hi",
        "a",
        "",
        "caf\u{e9} \u{1F600}",
        "\u{201C}quoted\u{201D}",
        "{[~^|\u{20AC}]}",
        "\u{928}\u{92E}\u{938}\u{94D}\u{924}\u{947}",
    ];
    let texts: Vec<String> = (0..40_000)
        .map(|i| format!("{}{}", samples[i % samples.len()], "x".repeat(i % 200)))
        .collect();
    let joined = texts.join("\0");
    assert!(joined.len() > 65_536);
    for smart in [false, true] {
        let packed =
            sms_ffi::count_segments_packed(joined.clone().into_bytes(), smart).expect("packed");
        let n = texts.len();
        assert_eq!(packed.len(), 5 * n);
        for (i, text) in texts.iter().enumerate() {
            let one = sms_ffi::count_segments(text.clone(), smart);
            let segments =
                u32::from_le_bytes(packed[4 * i..4 * i + 4].try_into().expect("4 bytes"));
            let ucs2 = packed[4 * n + i] == 1;
            assert_eq!(
                (segments, ucs2),
                (one.segments, one.encoding == sms_ffi::Encoding::Ucs2),
                "text {i}: {text:?}"
            );
        }
    }
}
