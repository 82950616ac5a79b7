//! Customer CSV import, first part: reading the header into a column mapping (any order, known
//! names and common aliases) and checking each line, with line numbers. Streaming: lines are
//! read one at a time from any `Read`, so a large file is never held in memory.
//! (Storing the checked lines, the preview page and the progress bar come next.)

use std::collections::HashMap;
use std::io::Read;

use crate::model::customer_edit::{
    parse_email, parse_phone, parse_telegram_chat_id, parse_whatsapp_id,
};

/// A column Herald understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Name,
    Phone,
    Email,
    TelegramChatId,
    WhatsappId,
    Tags,
    RobotGroups,
    AssigneeEmail,
    TimeZone,
}

impl Column {
    /// The column a header cell names (case, spaces, dashes and underscores ignored).
    pub fn from_header(cell: &str) -> Option<Column> {
        let key: String = cell
            .trim()
            .trim_start_matches('\u{feff}')
            .chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect();
        Some(match key.as_str() {
            "name" | "fullname" | "customer" | "customername" => Column::Name,
            "phone" | "phonenumber" | "mobile" => Column::Phone,
            "email" | "emailaddress" => Column::Email,
            "telegram" | "telegramchatid" | "telegramid" => Column::TelegramChatId,
            "whatsapp" | "whatsappid" => Column::WhatsappId,
            "tags" | "tag" => Column::Tags,
            "robotgroups" | "robotgroup" | "groups" | "group" => Column::RobotGroups,
            "assignee" | "assigneeemail" => Column::AssigneeEmail,
            "timezone" | "tz" => Column::TimeZone,
            _ => return None,
        })
    }
}

/// How the file's columns map to Herald's, for the preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// For each file column: its header and what it maps to (`None`: ignored).
    pub columns: Vec<(String, Option<Column>)>,
}

impl Mapping {
    /// Reads a header row. Refuses a file without a name column, or naming one column twice.
    pub fn from_header(cells: &[&str]) -> Result<Mapping, String> {
        let mut seen: HashMap<Column, &str> = HashMap::new();
        let mut columns = Vec::new();
        for cell in cells {
            let col = Column::from_header(cell);
            if let Some(c) = col
                && let Some(first) = seen.insert(c, cell)
            {
                return Err(format!(
                    "The columns “{first}” and “{cell}” both mean {c:?}: keep one of them."
                ));
            }
            columns.push((cell.trim().to_string(), col));
        }
        if !seen.contains_key(&Column::Name) {
            return Err(
                "The first line must be a header naming the columns, with a “name” column.".into(),
            );
        }
        Ok(Mapping { columns })
    }

    fn get<'a>(&self, row: &'a csv::StringRecord, col: Column) -> &'a str {
        self.columns
            .iter()
            .position(|(_, c)| *c == Some(col))
            .and_then(|i| row.get(i))
            .map(str::trim)
            .unwrap_or("")
    }
}

/// One checked line, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The line in the file (the header is line 1; a quoted field may span lines).
    pub line: u64,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub whatsapp_id: Option<String>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub assignee_email: Option<String>,
    pub time_zone: Option<String>,
}

/// A line that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
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
    let get = |c| mapping.get(row, c);
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let list = |s: &str| {
        s.split([';', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let name = get(Column::Name);
    if name.is_empty() || name.chars().count() > 200 {
        return fail("the name is empty or longer than 200 characters".into());
    }
    let phone = match some(get(Column::Phone)) {
        None => None,
        Some(p) => match parse_phone(&p) {
            Ok(p) => Some(p),
            Err(_) => {
                return fail(format!(
                    "“{p}” is not a phone number (use + and the country code)"
                ));
            }
        },
    };
    let email = match some(get(Column::Email)) {
        None => None,
        Some(e) => match parse_email(&e) {
            Ok(e) => Some(e),
            Err(_) => return fail(format!("“{e}” is not an email address")),
        },
    };
    let telegram_chat_id = match some(get(Column::TelegramChatId)) {
        None => None,
        Some(t) => match parse_telegram_chat_id(&t) {
            Ok(t) => Some(t),
            Err(e) => return fail(e),
        },
    };
    let whatsapp_id = match some(get(Column::WhatsappId)) {
        None => None,
        Some(w) => match parse_whatsapp_id(&w) {
            Ok(w) => Some(w),
            Err(e) => return fail(e),
        },
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
    if phone.is_none() && email.is_none() {
        return fail("a customer needs a phone number or an email address".into());
    }
    Ok(ImportRow {
        line,
        name: name.to_string(),
        phone,
        email,
        telegram_chat_id,
        whatsapp_id,
        tags: list(get(Column::Tags)),
        groups: list(get(Column::RobotGroups)),
        assignee_email,
        time_zone,
    })
}

/// Reads a whole file, one line at a time: the mapping, the good rows, and the bad lines.
/// (`rows` is collected here for tests and previews; the importer will consume it in batches.)
pub fn check_file(
    input: impl Read,
    is_zone: &dyn Fn(&str) -> bool,
    is_staff: &dyn Fn(&str) -> bool,
) -> Result<(Mapping, Vec<ImportRow>, Vec<LineError>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
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
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad.push(LineError {
                    line,
                    message: describe(e),
                });
                if bad.len() > 1000 {
                    break;
                }
            }
        }
    }
    Ok((mapping, good, bad))
}

fn describe(e: csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "the file is not UTF-8 text: save it as “CSV UTF-8” and try again".into()
        }
        _ => format!("the file could not be read as CSV: {e}"),
    }
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
    fn header_driven_any_order_with_aliases() {
        let m = Mapping::from_header(&["\u{feff}E-mail", "Full Name", "Notes", "TZ"]).unwrap();
        let cols: Vec<_> = m.columns.iter().map(|(_, c)| *c).collect();
        assert_eq!(
            cols,
            vec![
                Some(Column::Email),
                Some(Column::Name),
                None,
                Some(Column::TimeZone)
            ]
        );
        assert!(
            Mapping::from_header(&["phone", "email"])
                .unwrap_err()
                .contains("name")
        );
        let dup = Mapping::from_header(&["name", "Phone", "mobile"]).unwrap_err();
        assert!(dup.contains("Phone") && dup.contains("mobile"), "{dup}");
    }

    #[test]
    fn good_and_bad_lines_are_told_apart_with_line_numbers() {
        let file = "name,phone,email,tags,assignee email,time zone\n\
                    Ada,+44 20 7946 0958,ada@example.com,\"VIP, New\",sam@herald.test,Europe/Berlin\n\
                    Bob,12345,,,,\n\
                    \"Carla, Jr.\",,carla@example.com,VIP,,\n\
                    Dan,+15550100,,,ghost@herald.test,\n\
                    Eve,+15550101,,,,Mars/Olympus\n\
                    \"Multi\nline\",+15550102,,,,UTC\n\
                    Finn,,,,,\n";
        let (_, good, bad) = check_file(file.as_bytes(), &zone, &staff).unwrap();
        let names: Vec<_> = good.iter().map(|r| (r.line, r.name.as_str())).collect();
        assert_eq!(
            names,
            vec![(2, "Ada"), (4, "Carla, Jr."), (7, "Multi\nline")]
        );
        assert_eq!(good[0].phone.as_deref(), Some("+442079460958"));
        assert_eq!(good[0].tags, vec!["VIP", "New"]);
        let lines: Vec<_> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5, 6, 9]);
        assert!(bad[0].message.contains("not a phone number"));
        assert!(bad[1].message.contains("unknown assignee"));
        assert!(bad[2].message.contains("not a time zone"));
        assert!(bad[3].message.contains("phone number or an email"));
    }

    #[test]
    fn wrong_encoding_and_missing_header_are_explained() {
        let latin1 = b"name,email\nJos\xe9,jose@example.com\n";
        let (_, good, bad) = check_file(&latin1[..], &zone, &staff).unwrap();
        assert!(good.is_empty());
        assert!(bad[0].message.contains("not UTF-8"), "{:?}", bad);
        let err = check_file(&b"Ada,+4420794609\n"[..], &zone, &staff).unwrap_err();
        assert!(err.contains("header"), "{err}");
    }
}
