//! Customer CSV import. A file is read one line at a time (never whole into memory): each line
//! is checked on a blocking thread and handed over in batches to one database transaction, so
//! the import is all or nothing, unless the person chose to skip bad lines.
//! Customers are matched on phone or email: re-importing a file updates, it never duplicates.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::model::customer_edit::{
    parse_email, parse_phone, parse_telegram_chat_id, parse_whatsapp_id,
};
use crate::model::import::{Column, LineError, Mapping, PreviewLine};
use crate::server::customers::import_limits::{Bounded, check_cells, check_header};
use crate::server::db::{Db, DbError};
use crate::server::timefmt;

/// Lines the preview shows.
pub const PREVIEW_LINES: usize = 10;
/// Rows per batch handed to the database.
const BATCH_ROWS: usize = 500;
pub use crate::server::db::{ImportMsg, ImportRow, KEPT_ERRORS, Progress};

/// What an import did, when it stored something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub errors: Vec<LineError>,
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    File(String),
    #[error("{count} lines cannot be imported; nothing was imported")]
    Lines { count: u64, errors: Vec<LineError> },
    #[error("the database failed: {0}")]
    Db(#[from] DbError),
}

fn cell<'a>(mapping: &Mapping, row: &'a csv::StringRecord, col: Column) -> &'a str {
    mapping
        .index_of(col)
        .and_then(|i| row.get(i))
        .map(str::trim)
        .unwrap_or("")
}

/// Checks one data row. `is_zone` and `is_staff` answer for time zones and assignee emails.
pub fn check_row(
    mapping: &Mapping,
    row: &csv::StringRecord,
    line: u64,
    is_zone: &dyn Fn(&str) -> bool,
    is_staff: &dyn Fn(&str) -> bool,
) -> Result<ImportRow, LineError> {
    let fail = |message: String| Err(LineError { line, message });
    if let Err(e) = check_cells(row.iter()) {
        return fail(e);
    }
    let get = |c| cell(mapping, row, c);
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let optional = |c, parse: fn(&str) -> Result<String, String>| match some(get(c)) {
        None => Ok(None),
        Some(v) => parse(&v).map(Some),
    };
    let name = get(Column::Name);
    if name.is_empty() || name.chars().count() > 200 {
        return fail("the name is empty or longer than 200 characters".into());
    }
    let addresses = (|| {
        Ok::<_, String>((
            optional(Column::Phone, parse_phone)?,
            optional(Column::Email, parse_email)?,
            optional(Column::TelegramChatId, parse_telegram_chat_id)?,
            optional(Column::WhatsappId, parse_whatsapp_id)?,
        ))
    })();
    let (phone, email, telegram_chat_id, whatsapp_id) = match addresses {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let (tags, groups) = match (
        label_list(get(Column::Tags), Column::Tags),
        label_list(get(Column::RobotGroups), Column::RobotGroups),
    ) {
        (Ok(t), Ok(g)) => (t, g),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let assignee_email = some(get(Column::AssigneeEmail)).map(|a| a.to_lowercase());
    if let Some(a) = &assignee_email
        && !is_staff(a)
    {
        return fail(format!(
            "no staff member has the email “{a}” (unknown assignee)"
        ));
    }
    let time_zone = some(get(Column::TimeZone));
    if let Some(z) = &time_zone
        && !is_zone(z)
    {
        return fail(format!("“{z}” is not a time zone (e.g. Europe/Berlin)"));
    }
    let opted_out = match get(Column::OptedOut).to_lowercase().as_str() {
        "" | "no" | "n" | "false" | "0" => false,
        "yes" | "y" | "true" | "1" | "x" => true,
        other => return fail(format!("“{other}” under opted out is not yes or no")),
    };
    if phone.is_none() && email.is_none() {
        return fail("a customer needs a phone number or an email address".into());
    }
    let reachable = [
        ("email", email.is_some()),
        ("sms", phone.is_some()),
        ("whatsapp", whatsapp_id.is_some()),
        ("telegram", telegram_chat_id.is_some()),
    ];
    let opt_in = match opt_ins(get(Column::OptIn), &reachable) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    Ok(ImportRow {
        line,
        name: name.to_string(),
        phone,
        email,
        telegram_chat_id,
        whatsapp_id,
        tags,
        groups,
        assignee_email,
        time_zone,
        opted_out,
        opt_in,
    })
}

/// A marketing opt-in cell: kinds of channel (`whatsapp, sms`), or yes for every kind the row
/// has an address for, or nothing.
fn opt_ins(cell: &str, reachable: &[(&'static str, bool)]) -> Result<Vec<&'static str>, String> {
    let cell = cell.trim().to_lowercase();
    match cell.as_str() {
        "" | "no" | "n" | "false" | "0" => return Ok(Vec::new()),
        "yes" | "y" | "true" | "1" | "x" => {
            return Ok(reachable
                .iter()
                .filter(|(_, has)| *has)
                .map(|(k, _)| *k)
                .collect());
        }
        _ => {}
    }
    let mut kinds = Vec::new();
    for word in cell.split([';', ',', ' ']).filter(|w| !w.is_empty()) {
        let word = if word == "text" { "sms" } else { word };
        match reachable.iter().find(|(k, _)| *k == word) {
            Some((k, _)) if !kinds.contains(k) => kinds.push(*k),
            Some(_) => {}
            None => {
                let shown: String = word.chars().take(40).collect();
                return Err(format!(
                    "“{shown}” under marketing opt-in is not whatsapp, sms, email, telegram or yes"
                ));
            }
        }
    }
    Ok(kinds)
}

/// A cell of tag or robot group names (`;` or `,` between them), each once.
fn label_list(cell: &str, col: Column) -> Result<Vec<String>, String> {
    let mut list: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in cell.split([';', ',']).map(str::trim) {
        if item.chars().count() > 100 {
            return Err(format!(
                "the {} “{item}” is longer than 100 characters",
                col.label().to_lowercase()
            ));
        }
        if !item.is_empty() && seen.insert(item) {
            list.push(item.to_string());
        }
    }
    Ok(list)
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<Bounded<R>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(Bounded::new(input))
}

fn describe(e: csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "the file is not UTF-8 text: save it as “CSV UTF-8” and try again".into()
        }
        // A record over the bound (the reader's own words name the line).
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => io.to_string(),
        _ => format!("the file could not be read as CSV: {e}"),
    }
}

/// Checks that an upload's first bytes look like CSV text, by content (not by its name).
pub fn sniff(head: &[u8]) -> Result<(), String> {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Err("The file is UTF-16 text. Save it as “CSV UTF-8” and upload it again.".into());
    }
    if let Some(kind) = infer::get(head) {
        return Err(format!(
            "The file is {} ({}), not CSV text. Save it as “CSV UTF-8” and upload it again.",
            match kind.matcher_type() {
                infer::MatcherType::Doc | infer::MatcherType::Archive => "a document or an archive",
                infer::MatcherType::Image => "an image",
                _ => "a binary file",
            },
            kind.mime_type()
        ));
    }
    if head.contains(&0) {
        return Err("The file is not text. Upload a CSV file saved as “CSV UTF-8”.".into());
    }
    Ok(())
}

/// The file's header cells.
pub fn read_header(input: impl Read) -> Result<Vec<String>, String> {
    let mut reader = csv_reader(input);
    let header = reader.headers().map_err(|e| {
        let why = describe(e);
        let mut chars = why.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or(why)
    })?;
    check_header(header)?;
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(
            "The file is empty: the first line must be a header naming the columns.".into(),
        );
    }
    Ok(header.iter().map(String::from).collect())
}

/// The first lines of the file, each checked against `mapping` (if it is a valid one).
pub fn preview(
    input: impl Read,
    mapping: Option<&Mapping>,
    is_zone: &dyn Fn(&str) -> bool,
    is_staff: &dyn Fn(&str) -> bool,
) -> Vec<PreviewLine> {
    let mut reader = csv_reader(input);
    let mut lines = Vec::new();
    for record in reader.records().take(PREVIEW_LINES) {
        lines.push(match record {
            Ok(row) => {
                let line = row.position().map(|p| p.line()).unwrap_or(0);
                PreviewLine {
                    line,
                    cells: row.iter().map(String::from).collect(),
                    problem: mapping
                        .and_then(|m| check_row(m, &row, line, is_zone, is_staff).err())
                        .map(|e| e.message),
                }
            }
            Err(e) => PreviewLine {
                line: e.position().map(|p| p.line()).unwrap_or(0),
                cells: Vec::new(),
                problem: Some(describe(e)),
            },
        });
    }
    lines
}

/// Reads the whole file and sends its rows to `out` in batches (runs on a blocking thread).
fn check_lines(
    input: impl Read,
    mapping: &Mapping,
    staff: &HashMap<String, i64>,
    out: &mpsc::Sender<ImportMsg>,
) -> Result<(), String> {
    let mut reader = csv_reader(input);
    reader.headers().map_err(describe)?;
    let is_staff = |e: &str| staff.contains_key(e);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut record = csv::StringRecord::new();
    loop {
        let msg = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                match check_row(mapping, &record, line, &timefmt::is_zone, &is_staff) {
                    Ok(row) => {
                        batch.push(row);
                        if batch.len() < BATCH_ROWS {
                            continue;
                        }
                        ImportMsg::Rows(std::mem::take(&mut batch), reader.position().byte())
                    }
                    Err(e) => ImportMsg::Bad(e),
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) && e.position().is_none() {
                    return Err(describe(e));
                }
                ImportMsg::Bad(LineError {
                    line,
                    message: describe(e),
                })
            }
        };
        if out.blocking_send(msg).is_err() {
            return Ok(()); // the writer stopped; it reports why
        }
    }
    let end = reader.position().byte();
    let _ = out.blocking_send(ImportMsg::Rows(batch, end));
    Ok(())
}

/// Imports the CSV file at `path` with `mapping`. All or nothing unless `skip_bad`.
pub async fn run(
    db: &Db,
    path: &Path,
    mapping: Mapping,
    skip_bad: bool,
    progress: Arc<Progress>,
    now: DateTime<Utc>,
) -> Result<Outcome, Failure> {
    let staff: HashMap<String, i64> = db.staff_emails().await?.into_iter().collect();
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::File(format!("the uploaded file cannot be read: {e}")))?;
    let (out, rx) = mpsc::channel(4);
    let reader_staff = staff.clone();
    let checker = tokio::task::spawn_blocking(move || {
        check_lines(
            std::io::BufReader::with_capacity(256 * 1024, file),
            &mapping,
            &reader_staff,
            &out,
        )
    });
    let tally = db
        .import_customers(rx, skip_bad, &staff, &progress, now)
        .await;
    let checked = checker
        .await
        .map_err(|e| Failure::File(format!("reading the file stopped: {e}")))?;
    let tally = tally?;
    checked.map_err(Failure::File)?;
    if !tally.committed {
        return Err(Failure::Lines {
            count: tally.bad,
            errors: tally.errors,
        });
    }
    if tally.created + tally.updated > 10_000 {
        db.analyze_customers().await?;
    }
    Ok(Outcome {
        created: tally.created,
        updated: tally.updated,
        skipped: tally.bad,
        errors: tally.errors,
    })
}

/// A whole file checked in memory: the mapping from its header, the good rows, the bad lines.
/// Tests only; the import itself streams through `check_lines`.
#[cfg(test)]
fn check_file(
    input: impl Read,
    is_zone: &dyn Fn(&str) -> bool,
    is_staff: &dyn Fn(&str) -> bool,
) -> Result<(Mapping, Vec<ImportRow>, Vec<LineError>), String> {
    let mut reader = csv_reader(input);
    let header = reader.headers().map_err(describe)?.clone();
    let mapping = Mapping::from_header(&header.iter().collect::<Vec<_>>())?;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for record in reader.records() {
        match record {
            Ok(row) => {
                let line = row.position().map(|p| p.line()).unwrap_or(0);
                match check_row(&mapping, &row, line, is_zone, is_staff) {
                    Ok(r) => good.push(r),
                    Err(e) => bad.push(e),
                }
            }
            Err(e) => bad.push(LineError {
                line: e.position().map(|p| p.line()).unwrap_or(0),
                message: describe(e),
            }),
        }
    }
    Ok((mapping, good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(z: &str) -> bool {
        z == "Europe/Berlin" || z == "UTC"
    }
    fn staff(e: &str) -> bool {
        e == "sam@herald.test"
    }

    #[test]
    fn good_and_bad_lines_are_told_apart_with_line_numbers() {
        let file = "name,phone,email,tags,assignee email,time zone,opted out\n\
                    Ada,+44 20 7946 0958,ada@example.com,\"VIP, New\",sam@herald.test,Europe/Berlin,yes\n\
                    Bob,12345,,,,,\n\
                    \"Carla, Jr.\",,carla@example.com,VIP;VIP,,,\n\
                    Dan,+15550100,,,ghost@herald.test,,\n\
                    Eve,+15550101,,,,Mars/Olympus,\n\
                    \"Multi\nline\",+15550102,,,,UTC,no\n\
                    Finn,,,,,,\n\
                    Gus,+15550103,,,,,maybe\n";
        let (_, good, bad) = check_file(file.as_bytes(), &zone, &staff).unwrap();
        let names: Vec<_> = good.iter().map(|r| (r.line, r.name.as_str())).collect();
        assert_eq!(
            names,
            vec![(2, "Ada"), (4, "Carla, Jr."), (7, "Multi\nline")]
        );
        assert_eq!(good[0].phone.as_deref(), Some("+442079460958"));
        assert_eq!(good[0].tags, vec!["VIP", "New"]);
        assert!(good[0].opted_out && !good[2].opted_out);
        assert_eq!(good[1].tags, vec!["VIP"]);
        let lines: Vec<_> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5, 6, 9, 10]);
        assert!(bad[0].message.contains("not a phone number"));
        assert!(bad[1].message.contains("unknown assignee"));
        assert!(bad[2].message.contains("not a time zone"));
        assert!(bad[3].message.contains("phone number or an email"));
        assert!(bad[4].message.contains("yes or no"));
    }

    #[test]
    fn wrong_encoding_and_missing_header_are_explained() {
        let latin1 = b"name,email\nJos\xe9,jose@example.com\n";
        let (_, good, bad) = check_file(&latin1[..], &zone, &staff).unwrap();
        assert!(good.is_empty());
        assert!(bad[0].message.contains("not UTF-8"), "{:?}", bad);
        let err = check_file(&b"Ada,+4420794609\n"[..], &zone, &staff).unwrap_err();
        assert!(err.contains("header"), "{err}");
        assert!(read_header(&b""[..]).unwrap_err().contains("empty"));
    }

    #[test]
    fn uploads_are_recognised_by_content() {
        assert!(sniff(b"name,phone\nAda,+15550100\n").is_ok());
        assert!(sniff("name\nJosé\n".as_bytes()).is_ok());
        assert!(
            sniff(b"\xFF\xFEn\0a\0m\0e\0")
                .unwrap_err()
                .contains("UTF-16")
        );
        // An .xlsx is a zip archive; a PNG renamed to .csv is still an image.
        assert!(
            sniff(b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0")
                .unwrap_err()
                .contains("not CSV")
        );
        assert!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
                .unwrap_err()
                .contains("image")
        );
        assert!(sniff(b"name\0\0\0").is_err());
    }

    #[test]
    fn preview_checks_the_first_lines_against_the_mapping() {
        let file = "Kunde,Telefon\nAda,+15550100\nBob,nope\n";
        let headers = read_header(file.as_bytes()).unwrap();
        assert_eq!(headers, vec!["Kunde", "Telefon"]);
        let unmapped = preview(file.as_bytes(), None, &zone, &staff);
        assert_eq!(unmapped.len(), 2);
        assert_eq!(unmapped[1].cells, vec!["Bob", "nope"]);
        assert!(unmapped.iter().all(|l| l.problem.is_none()));
        let m =
            Mapping::from_choices(&headers, &[Some(Column::Name), Some(Column::Phone)]).unwrap();
        let checked = preview(file.as_bytes(), Some(&m), &zone, &staff);
        assert_eq!(checked[0].problem, None);
        assert!(checked[1].problem.as_deref().unwrap().contains("phone"));
        assert_eq!(checked[1].line, 3);
    }
}
