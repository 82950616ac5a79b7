//! Customer CSV import: the columns Herald understands, the mapping of a file's columns onto
//! them, and what the import page shows (preview, progress, outcome).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A column Herald understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    OptedOut,
    /// Kinds of channel the customer opted in to marketing on (`whatsapp, sms`, or `yes` for
    /// every address in the row).
    OptIn,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::Name,
        Column::Phone,
        Column::Email,
        Column::TelegramChatId,
        Column::WhatsappId,
        Column::Tags,
        Column::RobotGroups,
        Column::AssigneeEmail,
        Column::TimeZone,
        Column::OptedOut,
        Column::OptIn,
    ];

    /// The form value naming this column (also the export's header).
    pub fn key(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Phone => "phone",
            Column::Email => "email",
            Column::TelegramChatId => "telegram_chat_id",
            Column::WhatsappId => "whatsapp_id",
            Column::Tags => "tags",
            Column::RobotGroups => "robot_groups",
            Column::AssigneeEmail => "assignee_email",
            Column::TimeZone => "time_zone",
            Column::OptedOut => "opted_out",
            Column::OptIn => "opt_in",
        }
    }

    /// What the page calls it.
    pub fn label(self) -> &'static str {
        match self {
            Column::Name => "Name",
            Column::Phone => "Phone",
            Column::Email => "Email",
            Column::TelegramChatId => "Telegram chat id",
            Column::WhatsappId => "WhatsApp id",
            Column::Tags => "Tags",
            Column::RobotGroups => "Robot groups",
            Column::AssigneeEmail => "Assignee email",
            Column::TimeZone => "Time zone",
            Column::OptedOut => "Opted out",
            Column::OptIn => "Marketing opt-in",
        }
    }

    pub fn from_key(key: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.key() == key)
    }

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
            "phone" | "phonenumber" | "mobile" | "mobilephone" | "cell" | "tel" | "telephone"
            | "telefon" | "telefono" | "téléphone" => Column::Phone,
            "email" | "emailaddress" => Column::Email,
            "telegram" | "telegramchatid" | "telegramid" => Column::TelegramChatId,
            "whatsapp" | "whatsappid" => Column::WhatsappId,
            "tags" | "tag" => Column::Tags,
            "robotgroups" | "robotgroup" | "groups" | "group" => Column::RobotGroups,
            "assignee" | "assigneeemail" => Column::AssigneeEmail,
            "timezone" | "tz" => Column::TimeZone,
            "optedout" | "optout" | "unsubscribed" => Column::OptedOut,
            "optin" | "consent" | "marketingoptin" | "marketingconsent" => Column::OptIn,
            _ => return None,
        })
    }
}

/// How the file's columns map to Herald's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// For each file column: its header and what it maps to (`None`: ignored).
    pub columns: Vec<(String, Option<Column>)>,
}

impl Mapping {
    /// Reads a header row, guessing each column from its name.
    pub fn from_header(cells: &[&str]) -> Result<Mapping, String> {
        let columns = cells
            .iter()
            .map(|c| {
                (
                    c.trim().trim_start_matches('\u{feff}').to_string(),
                    Column::from_header(c),
                )
            })
            .collect();
        Mapping::checked(columns)
    }

    /// The mapping a person chose on the preview page: one choice per file column.
    pub fn from_choices(headers: &[String], choices: &[Option<Column>]) -> Result<Mapping, String> {
        if headers.len() != choices.len() {
            return Err("Choose what each column of the file holds.".into());
        }
        Mapping::checked(
            headers
                .iter()
                .cloned()
                .zip(choices.iter().copied())
                .collect(),
        )
    }

    /// Refuses a mapping without a name column, or with one column used twice.
    fn checked(columns: Vec<(String, Option<Column>)>) -> Result<Mapping, String> {
        let mut seen: HashMap<Column, &str> = HashMap::new();
        for (header, col) in &columns {
            if let Some(c) = col
                && let Some(first) = seen.insert(*c, header)
            {
                return Err(format!(
                    "The columns “{first}” and “{header}” both hold the {}: keep one of them.",
                    c.label().to_lowercase()
                ));
            }
        }
        if !seen.contains_key(&Column::Name) {
            return Err(
                "The first line must be a header naming the columns, with a “name” column.".into(),
            );
        }
        Ok(Mapping { columns })
    }

    /// Which file column holds `col`, if any.
    pub fn index_of(&self, col: Column) -> Option<usize> {
        self.columns.iter().position(|(_, c)| *c == Some(col))
    }
}

/// A line that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    /// The line in the file (the header is line 1; a quoted field may span lines).
    pub line: u64,
    pub message: String,
}

/// One of the first lines of the file, as the preview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewLine {
    pub line: u64,
    pub cells: Vec<String>,
    /// Why this line would not be imported, if it would not.
    pub problem: Option<String>,
}

/// Where an import stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImportStage {
    /// Uploaded; waiting for the person to check the preview and start it.
    Preview {
        mapping: Mapping,
        lines: Vec<PreviewLine>,
    },
    Running {
        /// 0.0 to 1.0, by the bytes of the file stored so far.
        fraction: f64,
        rows_done: u64,
    },
    Done {
        created: u64,
        updated: u64,
        skipped: u64,
        /// The first skipped lines, with reasons.
        errors: Vec<LineError>,
    },
    /// Nothing was stored.
    Failed {
        message: String,
        bad_lines: u64,
        errors: Vec<LineError>,
    },
}

/// The import page's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportView {
    pub id: String,
    pub file_name: String,
    pub file_bytes: u64,
    pub stage: ImportStage,
}

/// Everything the import page needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportPage {
    /// Staff and admins import; managers only read customers.
    pub can_import: bool,
    /// The import asked for; `None` on the upload page, or when it is gone.
    pub view: Option<ImportView>,
    /// Whether the person asked to skip bad lines (kept across preview updates).
    pub skip_bad: bool,
    /// The largest file accepted, in MB.
    pub max_mb: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(m.columns[0].0, "E-mail");
        assert!(
            Mapping::from_header(&["phone", "email"])
                .unwrap_err()
                .contains("name")
        );
        let dup = Mapping::from_header(&["name", "Phone", "mobile"]).unwrap_err();
        assert!(dup.contains("Phone") && dup.contains("mobile"), "{dup}");
    }

    #[test]
    fn chosen_mappings_are_checked_like_guessed_ones() {
        let headers = vec!["A".to_string(), "B".to_string()];
        let m = Mapping::from_choices(&headers, &[Some(Column::Name), None]).unwrap();
        assert_eq!(m.index_of(Column::Name), Some(0));
        assert_eq!(m.index_of(Column::Phone), None);
        assert!(
            Mapping::from_choices(&headers, &[Some(Column::Phone), Some(Column::Phone)])
                .unwrap_err()
                .contains("both hold the phone")
        );
        assert!(Mapping::from_choices(&headers, &[None]).is_err());
        for c in Column::ALL {
            assert_eq!(Column::from_key(c.key()), Some(c));
            assert_eq!(Column::from_header(c.key()), Some(c));
        }
    }
}
