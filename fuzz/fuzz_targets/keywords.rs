//! Fuzz target `keywords`: the property is `sms_fuzz::checks::keywords` (see its documentation).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sms_fuzz::checks::keywords(data));
