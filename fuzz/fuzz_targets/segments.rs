//! Fuzz target `segments`: the property is `sms_fuzz::checks::segments` (see its documentation).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sms_fuzz::checks::segments(data));
