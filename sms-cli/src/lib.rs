//! The parts of the `sms` command that read untrusted files and streams, as a library: the
//! recipients CSV reader and the `segments --jsonl` line reader.
//!
//! They are here rather than only in the binary so that the fuzz targets (`fuzz/`) and the
//! cross-crate tests can drive them in-process, on any bytes, without spawning `sms`. The
//! binary uses them from here; nothing else of the command is public.

#![warn(missing_docs)]

pub mod recipients_csv;
pub mod segments;
