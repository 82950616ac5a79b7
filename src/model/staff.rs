//! The staff page: every account with its role and standing.

use serde::{Deserialize, Serialize};

use super::Role;

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    Active,
    /// Invited: no password chosen yet.
    Invited,
    Deactivated,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Active => "Active",
            Standing::Invited => "Invited",
            Standing::Deactivated => "Deactivated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub standing: Standing,
    /// When the account was made, in the viewer's words.
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffPage {
    pub rows: Vec<StaffRow>,
    /// The account the viewer is about to deactivate (the page asks first).
    pub confirm: Option<StaffRow>,
    /// A notice with a password link, shown once to the admin who made it.
    pub flash: Option<(String, String)>,
    /// The viewer's own account id (they cannot deactivate themselves).
    pub me: i64,
    /// The space Herald's files and database take.
    pub disk: DiskUsage,
}

/// The space taken, as admins see it on the staff page.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub attachments: i64,
    pub attachment_bytes: i64,
    pub waiting_imports: u64,
    pub import_bytes: u64,
    pub database_bytes: i64,
}

/// `bytes` for people: "512 B", "3.4 MB", "1.2 GB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod bytes_tests {
    #[test]
    fn sizes_read_in_the_largest_whole_unit() {
        use super::human_bytes;
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MB");
        assert_eq!(human_bytes(5 << 40), "5.0 TB");
    }
}
