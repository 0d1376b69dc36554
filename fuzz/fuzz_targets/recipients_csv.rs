//! Fuzz target `recipients_csv`: the property is `sms_fuzz::checks::recipients_csv` (see its documentation).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sms_fuzz::checks::recipients_csv(data));
