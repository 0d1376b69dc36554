//! The parts of the `sms` command that read untrusted files and streams, as a library: the
//! recipients CSV reader and the `segments --jsonl` line reader.
//!
//! They are here rather than only in the binary so that the fuzz targets (`fuzz/`) and the
//! cross-crate tests can drive them in-process, on any bytes, without spawning `sms`. The
//! binary uses them from here; nothing else of the command is public.
//!
//! ```
//! let csv = "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone,course_title\n\
//!            C-1,client,Ada,Lovelace,(212) 555-0123,\"Email, Text\",,America/New_York,Pottery\n\
//!            C-2,teacher,Bob,Smith,212 555 0124,,Yes,,Pottery\n";
//! let file = sms_cli::recipients_csv::read(csv.as_bytes()).unwrap();
//! assert_eq!(file.recipients.len(), 1);
//! assert_eq!(file.extra_columns, ["course_title"]);
//! // A malformed row (an unknown kind) is reported with its line and skipped.
//! assert_eq!(file.malformed[0].line, 3);
//! ```

#![warn(missing_docs)]

pub mod recipients_csv;
pub mod segments;
