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
mod packed;
mod types;

pub use client::{CancelHandle, SmsClient};
pub use error::{HostError, SmsError};
pub use host::{LogWriter, OptOutStore, ProgressListener};
pub use log::{clear_log_writer, dropped_log_records, set_log_writer};
pub use types::*;

use std::ffi::c_void;

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
    let count = packed_count(text);
    let mut segments = vec![0u32; count];
    let mut ucs2 = vec![0u8; count];
    count_packed_into(text, options(smart_encoding), &mut segments, &mut ucs2);
    let mut answer = Vec::with_capacity(count * 5);
    for one in segments {
        answer.extend_from_slice(&one.to_le_bytes());
    }
    answer.append(&mut ucs2);
    Ok(answer)
}

/// How many texts `packed` holds: one more than its NUL separators.
fn packed_count(packed: &str) -> usize {
    packed.bytes().filter(|&b| b == 0).count() + 1
}

/// Counts each NUL-separated text of `packed` into `segments` and `ucs2` (1 for UCS-2), in
/// order; both are exactly [`packed_count`] long. Large batches are cut at NULs into one part
/// per core (at most 8, each at least 64 KiB) counted at once: the same answer, sooner.
fn count_packed_into(packed: &str, options: SegmentOptions, segments: &mut [u32], ucs2: &mut [u8]) {
    const PART_BYTES: usize = 65_536;
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    count_in_parts(
        packed,
        options,
        segments,
        ucs2,
        cores.min(packed.len() / PART_BYTES),
    );
}

/// [`count_packed_into`] in `parts` parts (0 and 1: on this thread).
fn count_in_parts(
    packed: &str,
    options: SegmentOptions,
    segments: &mut [u32],
    ucs2: &mut [u8],
    parts: usize,
) {
    if parts <= 1 {
        return count_serially(packed, options, segments, ucs2);
    }
    // Cut after the first NUL at or past each share of the bytes (a NUL byte is always a
    // character boundary in UTF-8); a part's texts start at the count of NULs before it.
    let mut cuts = Vec::with_capacity(parts);
    let mut from = 0;
    for part in 1..parts {
        let want = (packed.len() * part / parts).max(from);
        match packed.as_bytes()[want..].iter().position(|&b| b == 0) {
            Some(at) => {
                cuts.push((from, want + at));
                from = want + at + 1;
            }
            None => break,
        }
    }
    cuts.push((from, packed.len()));
    std::thread::scope(|scope| {
        let (mut segments, mut ucs2) = (segments, ucs2);
        let mut handles = Vec::with_capacity(cuts.len());
        for &(start, end) in &cuts {
            let part = &packed[start..end];
            let texts = packed_count(part);
            let (mine, rest) = std::mem::take(&mut segments).split_at_mut(texts);
            let (mine_ucs2, rest_ucs2) = std::mem::take(&mut ucs2).split_at_mut(texts);
            segments = rest;
            ucs2 = rest_ucs2;
            handles.push(scope.spawn(move || count_serially(part, options, mine, mine_ucs2)));
        }
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic) // caught at the boundary
            }
        }
    });
}

/// [`count_packed_into`] on this thread.
fn count_serially(packed: &str, options: SegmentOptions, segments: &mut [u32], ucs2: &mut [u8]) {
    for ((one, segments), ucs2) in packed.split('\0').zip(segments).zip(ucs2) {
        let count = segment::count(one, options);
        *segments = count.segments;
        *ucs2 = u8::from(count.encoding == sms_core::Encoding::Ucs2);
    }
}

/// `count_segments_many` over the plain C ABI, for the Python package's batch: the texts as
/// one UTF-8 buffer of `len` bytes at `packed`, NUL-separated, `count` of them; the segments
/// of each are written to `segments[..count]` and 1 (UCS-2) or 0 (GSM-7) to `ucs2[..count]`.
/// No copy crosses the boundary either way (uniffi copies a `bytes` argument byte by byte).
///
/// Returns the total of the segments (non-negative), or -1 when the bytes are not UTF-8, -2
/// when they do not hold exactly `count` texts, -3 on a bug (a panic, caught here).
///
/// # Safety
/// `packed` must point to `len` readable bytes (or `len` be 0); `segments` and `ucs2` to
/// `count` writable `u32`s and bytes, not overlapping the input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sms_text_count_segments_batch(
    packed: *const u8,
    len: usize,
    smart_encoding: u8,
    count: usize,
    segments: *mut u32,
    ucs2: *mut u8,
) -> i64 {
    let bytes = if len == 0 || packed.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller gives `len` readable bytes at `packed`.
        unsafe { std::slice::from_raw_parts(packed, len) }
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return -1;
    };
    if count == 0 || segments.is_null() || ucs2.is_null() || packed_count(text) != count {
        return -2;
    }
    // SAFETY: the caller gives `count` writable, non-overlapping elements at each.
    let (segments, ucs2) = unsafe {
        (
            std::slice::from_raw_parts_mut(segments, count),
            std::slice::from_raw_parts_mut(ucs2, count),
        )
    };
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        count_packed_into(text, options(smart_encoding != 0), segments, ucs2);
        segments.iter().map(|&s| i64::from(s)).sum::<i64>()
    }));
    answer.unwrap_or(-3)
}

/// [`count_views_into`]'s failure: a text that is not UTF-8.
#[derive(Debug, PartialEq)]
struct NotUtf8;

/// Counts each of `texts` into `segments` and `ucs2` (1 for UCS-2), in order; all three are
/// the same length. Texts are checked to be UTF-8 as they are counted. Large batches are cut
/// into one run of consecutive texts per core (at most 8, each at least 64 KiB), of about the
/// same bytes, counted at once: the same answer, sooner.
fn count_views_into(
    texts: &[&[u8]],
    options: SegmentOptions,
    segments: &mut [u32],
    ucs2: &mut [u8],
) -> Result<(), NotUtf8> {
    const PART_BYTES: usize = 65_536;
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    count_views_in_parts(
        texts,
        options,
        segments,
        ucs2,
        cores.min(bytes / PART_BYTES),
    )
}

/// [`count_views_into`] in `parts` parts (0 and 1: on this thread).
fn count_views_in_parts(
    texts: &[&[u8]],
    options: SegmentOptions,
    segments: &mut [u32],
    ucs2: &mut [u8],
    parts: usize,
) -> Result<(), NotUtf8> {
    if parts <= 1 {
        return count_views_serially(texts, options, segments, ucs2);
    }
    // Cut where the bytes counted so far first reach each share of the whole.
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let mut ends = Vec::with_capacity(parts);
    let (mut seen, mut share) = (0usize, 1usize);
    for (i, text) in texts.iter().enumerate() {
        seen += text.len();
        while share < parts && seen >= total * share / parts {
            ends.push(i + 1);
            share += 1;
        }
    }
    ends.push(texts.len());
    std::thread::scope(|scope| {
        let (mut texts, mut segments, mut ucs2) = (texts, segments, ucs2);
        let mut from = 0;
        let mut handles = Vec::with_capacity(ends.len());
        for end in ends {
            let take = end - from;
            from = end;
            let (mine, rest) = texts.split_at(take);
            let (mine_segments, rest_segments) = std::mem::take(&mut segments).split_at_mut(take);
            let (mine_ucs2, rest_ucs2) = std::mem::take(&mut ucs2).split_at_mut(take);
            (texts, segments, ucs2) = (rest, rest_segments, rest_ucs2);
            handles.push(
                scope.spawn(move || count_views_serially(mine, options, mine_segments, mine_ucs2)),
            );
        }
        let mut ok = Ok(());
        for handle in handles {
            match handle.join() {
                Ok(answer) => ok = ok.and(answer),
                Err(panic) => std::panic::resume_unwind(panic), // caught at the boundary
            }
        }
        ok
    })
}

/// [`count_views_into`] on this thread.
fn count_views_serially(
    texts: &[&[u8]],
    options: SegmentOptions,
    segments: &mut [u32],
    ucs2: &mut [u8],
) -> Result<(), NotUtf8> {
    for ((text, segments), ucs2) in texts.iter().zip(segments).zip(ucs2) {
        let text = std::str::from_utf8(text).map_err(|_| NotUtf8)?;
        let count = segment::count(text, options);
        *segments = count.segments;
        *ucs2 = u8::from(count.encoding == sms_core::Encoding::Ucs2);
    }
    Ok(())
}

/// `count_segments_many` over the plain C ABI with no buffer to build: text `i` is the `lens[i]`
/// UTF-8 bytes at `texts[i]`, wherever they are (the Python package hands over the UTF-8 each
/// `str` already holds, found by [`sms_text_python_utf8_views`]). Writes as
/// [`sms_text_count_segments_batch`] does: the segments of each text to `segments[..count]`,
/// 1 (UCS-2) or 0 (GSM-7) to `ucs2[..count]`.
///
/// Returns the total of the segments (non-negative), or -1 when a text is not UTF-8, -2 when
/// an array is missing or `count` is 0, -3 on a bug (a panic, caught here).
///
/// # Safety
/// `texts` and `lens` must point to `count` readable elements; each `texts[i]` to `lens[i]`
/// readable bytes (or `lens[i]` be 0) that stay unchanged for the call; `segments` and `ucs2`
/// to `count` writable `u32`s and bytes, overlapping nothing else.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sms_text_count_segments_views(
    texts: *const *const u8,
    lens: *const usize,
    count: usize,
    smart_encoding: u8,
    segments: *mut u32,
    ucs2: *mut u8,
) -> i64 {
    if count == 0 || texts.is_null() || lens.is_null() || segments.is_null() || ucs2.is_null() {
        return -2;
    }
    // SAFETY: the caller gives `count` elements at each.
    let (pointers, lens, segments, ucs2) = unsafe {
        (
            std::slice::from_raw_parts(texts, count),
            std::slice::from_raw_parts(lens, count),
            std::slice::from_raw_parts_mut(segments, count),
            std::slice::from_raw_parts_mut(ucs2, count),
        )
    };
    let views: Vec<&[u8]> = pointers
        .iter()
        .zip(lens)
        .map(|(&pointer, &len)| {
            if len == 0 || pointer.is_null() {
                &[][..]
            } else {
                // SAFETY: the caller gives `len` readable bytes at `pointer`.
                unsafe { std::slice::from_raw_parts(pointer, len) }
            }
        })
        .collect();
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        count_views_into(&views, options(smart_encoding != 0), segments, ucs2)
            .map(|()| segments.iter().map(|&s| i64::from(s)).sum::<i64>())
    }));
    match answer {
        Ok(Ok(total)) => total,
        Ok(Err(NotUtf8)) => -1,
        Err(_) => -3,
    }
}

/// `PyTuple_GetItem` of Python's C API: the item at an index, a borrowed reference.
type PyTupleGetItem = unsafe extern "C" fn(*mut c_void, isize) -> *mut c_void;
/// `PyUnicode_AsUTF8AndSize`: the UTF-8 a `str` holds (made once and kept by the `str`, none
/// to make for ASCII text), or null with a Python error set (not a `str`, a lone surrogate).
type PyUnicodeAsUtf8AndSize = unsafe extern "C" fn(*mut c_void, *mut isize) -> *const u8;
/// `PyErr_Clear`: forgets the Python error set.
type PyErrClear = unsafe extern "C" fn();

/// Where the UTF-8 of each `str` of a Python tuple lives, for
/// [`sms_text_count_segments_views`]: the Python package's `count_segments_many` calls this
/// (holding the GIL) with the entry points of Python's C API it runs in, instead of encoding
/// and joining the texts in Python, which took as long as counting them. Writes the address
/// and length of item `i`'s UTF-8 to `texts[i]` and `lens[i]`; they stay valid while the tuple
/// lives (Python keeps a `str`'s UTF-8 with it).
///
/// Returns 0, or -1 when an item is not a `str` or has no UTF-8 form (the Python error is
/// cleared: the package then takes the generated path, which raises its own), -2 when an
/// argument is missing or the tuple holds fewer than `count` items.
///
/// # Safety
/// Called with the GIL held. `tuple` must be a Python tuple of at least `count` items;
/// `get_item`, `as_utf8` and `clear_error` the entry points above of the Python running;
/// `texts` and `lens` must point to `count` writable elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sms_text_python_utf8_views(
    tuple: *mut c_void,
    count: usize,
    get_item: Option<PyTupleGetItem>,
    as_utf8: Option<PyUnicodeAsUtf8AndSize>,
    clear_error: Option<PyErrClear>,
    texts: *mut *const u8,
    lens: *mut usize,
) -> i64 {
    let (Some(get_item), Some(as_utf8), Some(clear_error)) = (get_item, as_utf8, clear_error)
    else {
        return -2;
    };
    if tuple.is_null() || texts.is_null() || lens.is_null() || isize::try_from(count).is_err() {
        return -2;
    }
    // SAFETY: the caller gives `count` writable elements at each.
    let (texts, lens) = unsafe {
        (
            std::slice::from_raw_parts_mut(texts, count),
            std::slice::from_raw_parts_mut(lens, count),
        )
    };
    for (i, (text, len)) in texts.iter_mut().zip(lens).enumerate() {
        // SAFETY: the GIL is held; `count` fits an isize. A null item (not a tuple, or
        // shorter than `count`) is never handed on.
        let item = unsafe { get_item(tuple, i as isize) };
        if item.is_null() {
            // SAFETY: the GIL is held.
            unsafe { clear_error() };
            return -2;
        }
        let mut size: isize = 0;
        // SAFETY: the GIL is held and `item` is a live object the tuple holds.
        let utf8 = unsafe { as_utf8(item, &mut size) };
        if utf8.is_null() {
            // SAFETY: the GIL is held.
            unsafe { clear_error() };
            return -1;
        }
        *text = utf8;
        *len = size.unsigned_abs();
    }
    0
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cut_of_a_batch_gives_each_text_its_own_count() {
        let samples = [
            "",
            "Hi",
            "caf\u{e9} \u{1F600}",
            "\u{201C}q\u{201D}",
            "{[~]}\u{20AC}",
        ];
        let texts: Vec<String> = (0..3_000)
            .map(|i| format!("{}{}", samples[i % 5], "y".repeat(i % 170)))
            .collect();
        let packed = texts.join("\0");
        let expected: Vec<(u32, u8)> = texts
            .iter()
            .map(|t| {
                let c = segment::count(t, options(false));
                (c.segments, u8::from(c.encoding == sms_core::Encoding::Ucs2))
            })
            .collect();
        // More parts than the bytes can be cut into, too: the last parts are then empty.
        for parts in [0, 1, 2, 3, 5, 8, 64] {
            let mut segments = vec![u32::MAX; texts.len()];
            let mut ucs2 = vec![9; texts.len()];
            count_in_parts(&packed, options(false), &mut segments, &mut ucs2, parts);
            let got: Vec<(u32, u8)> = segments.into_iter().zip(ucs2).collect();
            assert_eq!(got, expected, "{parts} parts");
        }
    }

    #[test]
    fn every_cut_of_a_batch_of_views_gives_each_text_its_own_count() {
        let samples = [
            "",
            "Hi",
            "caf\u{e9} \u{1F600}",
            "\u{201C}q\u{201D}",
            "{[~]}\u{20AC}",
            "nul\0inside",
        ];
        let texts: Vec<String> = (0..3_000)
            .map(|i| format!("{}{}", samples[i % 6], "y".repeat(i % 170)))
            .collect();
        let views: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let expected: Vec<(u32, u8)> = texts
            .iter()
            .map(|t| {
                let c = segment::count(t, options(true));
                (c.segments, u8::from(c.encoding == sms_core::Encoding::Ucs2))
            })
            .collect();
        // More parts than texts, too: the last parts are then empty.
        for parts in [0, 1, 2, 3, 5, 8, 64, 5_000] {
            let mut segments = vec![u32::MAX; texts.len()];
            let mut ucs2 = vec![9; texts.len()];
            count_views_in_parts(&views, options(true), &mut segments, &mut ucs2, parts)
                .expect("UTF-8");
            let got: Vec<(u32, u8)> = segments.into_iter().zip(ucs2).collect();
            assert_eq!(got, expected, "{parts} parts");
        }
    }

    #[test]
    fn a_view_that_is_not_utf8_is_refused_whichever_part_holds_it() {
        let mut views: Vec<&[u8]> = vec![&b"fine"[..]; 200_000];
        views[150_000] = b"caf\xe9";
        let mut segments = vec![0; views.len()];
        let mut ucs2 = vec![0; views.len()];
        for parts in [1, 2, 3] {
            let answer =
                count_views_in_parts(&views, options(false), &mut segments, &mut ucs2, parts);
            assert_eq!(answer, Err(NotUtf8), "{parts} parts");
        }
        // SAFETY: each view is readable for its length; the outputs hold `views.len()`.
        let total = unsafe {
            sms_text_count_segments_views(
                views
                    .iter()
                    .map(|v| v.as_ptr())
                    .collect::<Vec<_>>()
                    .as_ptr(),
                views.iter().map(|v| v.len()).collect::<Vec<_>>().as_ptr(),
                views.len(),
                0,
                segments.as_mut_ptr(),
                ucs2.as_mut_ptr(),
            )
        };
        assert_eq!(total, -1);
    }
}
