//! Fuzz target `webhook`: the property is `sms_fuzz::checks::webhook` (see its documentation).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sms_fuzz::checks::webhook(data));
