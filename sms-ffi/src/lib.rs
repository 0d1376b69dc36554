//! The SMS library for hosts not written in Rust: Python, Kotlin, Swift, C# and Go, through
//! uniffi.
//!
//! One object, [`SmsClient`], owns its tokio runtime and offers blocking methods (the pattern
//! of ldk-node and application-services: right for C#, Go and ordinary Python web hosts).
//! Records and enums here are the facade's own, converted from `sms-core` with `From`: the
//! core never learns that uniffi exists. Errors are one [`SmsError`] whose variants say what
//! the host does about them. Hosts may implement [`ProgressListener`], [`OptOutStore`] and
//! [`LogWriter`].
//!
//! ```
//! use sms_ffi::{count_segments, Encoding};
//!
//! let count = count_segments("Class starts Monday at 9am".to_owned(), false);
//! assert_eq!((count.encoding, count.segments), (Encoding::Gsm7, 1));
//! ```
//!
//! The FFI build keeps unwinding (no `panic = "abort"`): a panic is caught at the boundary
//! and raised as `SmsError.Internal`, never a crash of the host.

#![warn(missing_docs)]

uniffi::setup_scaffolding!();

mod client;
mod error;
mod host;
mod log;
mod types;

pub use client::{CancelHandle, SmsClient};
pub use error::{HostError, SmsError};
pub use host::{LogWriter, OptOutStore, ProgressListener};
pub use log::{clear_log_writer, dropped_log_records, set_log_writer};
pub use types::*;

use sms_core::segment::{self, SegmentOptions};

fn options(smart_encoding: bool) -> SegmentOptions {
    SegmentOptions {
        smart_encoding,
        ..SegmentOptions::default()
    }
}

/// Encoding and segments of `text`, exactly as Twilio counts them, with the characters that
/// force UCS-2 and the text after Smart Encoding.
#[uniffi::export]
pub fn count_segments(text: String, smart_encoding: bool) -> SegmentCount {
    let cheap = segment::count(&text, options(smart_encoding));
    // The full analysis only when there is something to name: GSM-7 text has no non-GSM
    // characters, and Smart Encoding changes nothing in pure GSM-7 text.
    if cheap.encoding == sms_core::Encoding::Gsm7 && !smart_encoding {
        return SegmentCount {
            encoding: Encoding::Gsm7,
            segments: cheap.segments,
            non_gsm: Vec::new(),
            smart_text: None,
        };
    }
    let report = segment::analyze(&text, options(smart_encoding));
    SegmentCount {
        encoding: report.encoding.into(),
        segments: report.segments,
        non_gsm: report.non_gsm,
        smart_text: report.smart_text.filter(|s| *s != text),
    }
}

/// Segments and encoding of many texts at once, in order.
#[uniffi::export]
pub fn count_segments_many(texts: Vec<String>, smart_encoding: bool) -> SegmentBatch {
    let options = options(smart_encoding);
    let mut batch = SegmentBatch {
        segments: Vec::with_capacity(texts.len()),
        encodings: Vec::with_capacity(texts.len()),
        total_segments: 0,
    };
    for text in &texts {
        let c = segment::count(text, options);
        batch.segments.push(c.segments);
        batch.encodings.push(c.encoding.into());
        batch.total_segments += u64::from(c.segments);
    }
    batch
}

/// Segments of many texts packed in one buffer: UTF-8 texts separated by NUL bytes (so a
/// text cannot hold NUL). Answers the segments of each text as little-endian `u32`s, then one
/// byte per text: 0 for GSM-7, 1 for UCS-2. What the Python package's `count_segments_many`
/// uses to cross the boundary once rather than once per text.
#[uniffi::export]
pub fn count_segments_packed(texts: Vec<u8>, smart_encoding: bool) -> Result<Vec<u8>, SmsError> {
    let text = std::str::from_utf8(&texts)
        .map_err(|e| SmsError::InvalidInput(format!("the packed texts are not UTF-8: {e}")))?;
    let options = options(smart_encoding);
    // Large batches are counted in two halves at once (split on a NUL), one per core of a
    // small server; the answer is the same, in order.
    let (first, second) = match text.len() {
        0..=65_535 => (text, None),
        // A NUL byte is always a character boundary in UTF-8.
        n => match text.as_bytes()[n / 2..].iter().position(|&b| b == 0) {
            Some(at) => (&text[..n / 2 + at], Some(&text[n / 2 + at + 1..])),
            None => (text, None),
        },
    };
    let count_all = |part: &str| -> (Vec<u8>, Vec<u8>) {
        let mut segments = Vec::with_capacity(part.len() / 16);
        let mut ucs2 = Vec::with_capacity(part.len() / 64);
        for one in part.split('\0') {
            let c = segment::count(one, options);
            segments.extend_from_slice(&c.segments.to_le_bytes());
            ucs2.push(u8::from(c.encoding == sms_core::Encoding::Ucs2));
        }
        (segments, ucs2)
    };
    let (mut segments, mut ucs2) = match second {
        None => count_all(first),
        Some(second) => std::thread::scope(|scope| {
            let other = scope.spawn(|| count_all(second));
            let (mut segments, mut ucs2) = count_all(first);
            let (more_segments, more_ucs2) = other.join().unwrap_or_else(|panic| {
                std::panic::resume_unwind(panic) // caught at the boundary as Internal
            });
            segments.extend_from_slice(&more_segments);
            ucs2.extend_from_slice(&more_ucs2);
            (segments, ucs2)
        }),
    };
    segments.append(&mut ucs2);
    Ok(segments)
}

thread_local! {
    /// The detail of the last [`sms_text_count_segments`] call on this thread.
    static DETAIL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// `count_segments` over the plain C ABI, for the Python package's per-call fast path: uniffi's
/// generated Python spends some 40 us a call in buffer handling, ten times the count itself.
///
/// Returns `segments * 4 + ucs2 * 2 + has_detail` (non-negative), or -1 when the bytes are not
/// UTF-8, -2 when the detail cannot be given this way (a non-GSM grapheme or a smart text
/// holding NUL: use `count_segments`), -3 on a bug (a panic, caught here). With `has_detail`,
/// [`sms_text_count_segments_detail`] gives it: `"1"` and the smart text, or `"0"`, then each
/// non-GSM grapheme, NUL-separated.
///
/// # Safety
/// `text` must point to `len` readable bytes (or `len` be 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sms_text_count_segments(
    text: *const u8,
    len: usize,
    smart_encoding: u8,
) -> i64 {
    let bytes = if len == 0 || text.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller gives `len` readable bytes at `text`.
        unsafe { std::slice::from_raw_parts(text, len) }
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return -1;
    };
    let answer = std::panic::catch_unwind(|| {
        let count = count_segments(text.to_owned(), smart_encoding != 0);
        let code = i64::from(count.segments) * 4 + i64::from(count.encoding == Encoding::Ucs2) * 2;
        if count.smart_text.is_none() && count.non_gsm.is_empty() {
            return code;
        }
        DETAIL.with(|d| {
            let mut d = d.borrow_mut();
            d.clear();
            match &count.smart_text {
                Some(smart) if smart.contains('\0') => return -2,
                Some(smart) => {
                    d.push('1');
                    d.push_str(smart);
                }
                None => d.push('0'),
            }
            for g in &count.non_gsm {
                if g.contains('\0') {
                    return -2;
                }
                d.push('\0');
                d.push_str(g);
            }
            code + 1
        })
    });
    answer.unwrap_or(-3)
}

/// The detail of the last [`sms_text_count_segments`] call on this thread that had one: a
/// pointer to its UTF-8 bytes, valid until the next call on this thread, and their length in
/// `*len`.
///
/// # Safety
/// `len` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sms_text_count_segments_detail(len: *mut usize) -> *const u8 {
    DETAIL.with(|d| {
        let d = d.borrow();
        // SAFETY: the caller gives a writable `len`; the buffer lives in this thread's storage
        // until the next call of `sms_text_count_segments` here.
        unsafe { *len = d.len() };
        d.as_ptr()
    })
}
