//! Reading recipients from a CSV file (the `--recipients` format).
//!
//! Header: `record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone`;
//! any extra column is a merge field. A malformed row is reported with its line number and
//! skipped; it never aborts the preview.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;

use serde::Serialize;
use sms_core::recipient::parse_yes_no;
use sms_core::{PermittedMarketingMethods, Recipient, RecipientKind, RecordId};

/// The columns every recipients file has, in order.
pub const REQUIRED_COLUMNS: [&str; 8] = [
    "record_id",
    "kind",
    "first_name",
    "last_name",
    "mobile",
    "permitted_marketing_methods",
    "permitted_sms_text",
    "time_zone",
];

/// A row that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub error: String,
}

/// What a recipients file holds.
#[derive(Debug)]
pub struct RecipientsFile {
    /// The good rows.
    pub recipients: Vec<Recipient>,
    /// The rows skipped.
    pub malformed: Vec<MalformedRow>,
    /// The extra columns (merge fields).
    pub extra_columns: Vec<String>,
}

/// Reads a recipients file. Errors only when the header itself is unusable.
pub fn read(input: impl Read) -> Result<RecipientsFile, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(LineEnds::new(input));
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    let mut index = [0usize; 8];
    for (slot, column) in index.iter_mut().zip(REQUIRED_COLUMNS) {
        *slot = names.iter().position(|n| n == column).ok_or_else(|| {
            format!(
                "the header has no column {column:?}; expected {}",
                REQUIRED_COLUMNS.join(",")
            )
        })?;
    }
    let extra: Vec<(usize, String)> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !REQUIRED_COLUMNS.contains(&n.as_str()) && !n.is_empty())
        .map(|(i, n)| (i, n.clone()))
        .collect();

    let mut file = RecipientsFile {
        recipients: Vec::new(),
        malformed: Vec::new(),
        extra_columns: extra.iter().map(|(_, n)| n.clone()).collect(),
    };
    let mut record = csv::StringRecord::new();
    loop {
        let (position, result) = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => (
                record.position().cloned(),
                parse_row(&record, &names, &index, &extra),
            ),
            Err(error) => (
                error.position().cloned(),
                Err(format!("unreadable row: {error}")),
            ),
        };
        let line = position.map_or(0, |p| reader.get_mut().line_of(&p));
        match result {
            Ok(recipient) => file.recipients.push(recipient),
            Err(error) => file.malformed.push(MalformedRow { line, error }),
        }
    }
    Ok(file)
}

/// The input, noting where its lines end, so a row's line number is right whatever the line
/// endings.
///
/// The csv reader ends a record at `\n`, `\r` or `\r\n` but counts lines by `\n` alone, and it
/// starts the record after a `\r\n` at the `\n`: alone it names every row of an Excel file
/// (`\r\n`) one line early and every row of an old Mac file (`\r`) line 1. Here a line ends at
/// `\n`, at `\r`, or at `\r\n` taken as one, and only the line ends not yet passed are kept
/// (rows come in order).
struct LineEnds<R> {
    inner: R,
    read: u64,
    after_cr: bool,
    ahead: VecDeque<u64>,
    passed: u64,
}

impl<R> LineEnds<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            read: 0,
            after_cr: false,
            ahead: VecDeque::new(),
            passed: 0,
        }
    }

    /// The 1-based line on which the row at `position` starts.
    fn line_of(&mut self, position: &csv::Position) -> u64 {
        while self.ahead.front().is_some_and(|at| *at < position.byte()) {
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, byte) in buf[..n].iter().enumerate() {
            let at = self.read + i as u64;
            match byte {
                b'\r' => self.ahead.push_back(at),
                // The `\n` of a `\r\n` ends no second line.
                b'\n' if !self.after_cr => self.ahead.push_back(at),
                _ => {}
            }
            self.after_cr = *byte == b'\r';
        }
        self.read += n as u64;
        Ok(n)
    }
}

fn parse_row(
    record: &csv::StringRecord,
    names: &[String],
    index: &[usize; 8],
    extra: &[(usize, String)],
) -> Result<Recipient, String> {
    if record.len() != names.len() {
        return Err(format!(
            "has {} fields, the header has {}",
            record.len(),
            names.len()
        ));
    }
    let get = |i: usize| record.get(index[i]).unwrap_or("").trim();
    let record_id = get(0);
    if record_id.is_empty() {
        return Err("record_id is empty".to_owned());
    }
    let kind = match get(1).to_ascii_lowercase().as_str() {
        "client" => RecipientKind::Client {
            permitted_marketing_methods: PermittedMarketingMethods::new(get(5)),
        },
        "staff" => RecipientKind::Staff {
            permitted_sms_text: parse_yes_no(get(6)).ok_or_else(|| {
                format!(
                    "permitted_sms_text {:?} is not Yes/No (also Y/N, true/false)",
                    get(6)
                )
            })?,
        },
        other => return Err(format!("kind {other:?} is not client or staff")),
    };
    let time_zone = Some(get(7)).filter(|tz| !tz.is_empty()).map(str::to_owned);
    let fields: BTreeMap<String, String> = extra
        .iter()
        .map(|(i, name)| (name.clone(), record.get(*i).unwrap_or("").trim().to_owned()))
        .collect();
    Ok(Recipient {
        record_id: RecordId::new(record_id),
        kind,
        first_name: get(2).to_owned(),
        last_name: get(3).to_owned(),
        mobile: get(4).to_owned(),
        time_zone,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_rows_extra_columns_and_malformed_rows_with_line_numbers() {
        let csv = "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone,course_title\n\
                   C1,client,Ana,Lopez,(212) 555-0123,\"Email, Text\",,America/New_York,Welding I\n\
                   S1,staff,Bo,Chan,212-555-0199,,Y,,Welding I\n\
                   X1,teacher,Al,Bo,1,,,,\n\
                   S2,staff,Cy,Do,1,,maybe,,x\n\
                   C2,client,too,few\n\
                   ,client,No,Id,1,,,,x\n";
        let file = read(csv.as_bytes()).expect("header is fine");
        assert_eq!(file.recipients.len(), 2);
        assert_eq!(file.extra_columns, vec!["course_title"]);
        assert_eq!(file.recipients[0].fields["course_title"], "Welding I");
        let lines: Vec<u64> = file.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7]);
        assert!(file.malformed[0].error.contains("teacher"));
    }

    #[test]
    fn line_numbers_are_the_same_with_any_line_endings_and_blank_lines() {
        let lf = "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone\n\
                  C1,client,Ana,Lopez,(212) 555-0123,Text,,\n\
                  X1,teacher,Al,Bo,1,,,\n\
                  \n\
                  C2,client,\"Two\nLines\",Lopez,(212) 555-0124,Text,,\n\
                  X2,teacher,Al,Bo,1,,,\n";
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        for (name, text) in [("LF", lf), ("CRLF", crlf.as_str()), ("CR", cr.as_str())] {
            let file = read(text.as_bytes()).expect("header is fine");
            let lines: Vec<u64> = file.malformed.iter().map(|m| m.line).collect();
            // Line 4 is blank; the quoted field of line 5 runs onto line 6.
            assert_eq!(lines, vec![3, 7], "{name}");
            assert_eq!(file.recipients.len(), 2, "{name}");
        }
    }

    #[test]
    fn a_header_without_required_columns_is_an_error() {
        let err = read("id,phone\n1,2\n".as_bytes()).expect_err("bad header");
        assert!(err.contains("record_id"));
    }
}
