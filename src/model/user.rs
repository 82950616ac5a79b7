//! Staff accounts and their roles.

use serde::{Deserialize, Serialize};

/// What a signed-in person may do. Checked on the server for every server function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Creates, edits, copies and schedules broadcasts; chats with customers.
    Staff,
    /// Everything staff do, plus pausing/resuming, channels and accounts.
    Admin,
    /// Reads every broadcast's results; edits nothing.
    Manager,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Staff, Role::Admin, Role::Manager];

    /// The name stored in the database and shown in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Admin => "admin",
            Role::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The roles that may change customers, tags and broadcasts (managers only read).
    pub const EDITORS: [Role; 2] = [Role::Staff, Role::Admin];

    /// Whether this role may change customers, tags and broadcasts.
    pub fn can_edit(self) -> bool {
        Role::EDITORS.contains(&self)
    }

    /// Whether this role may pause and resume broadcasts (the list's toggle).
    pub fn can_pause(self) -> bool {
        matches!(self, Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signed-in user as the pages see it (never carries secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: super::UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub time_zone: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None, "names are exact");
    }

    #[test]
    fn managers_only_read() {
        assert!(Role::Staff.can_edit() && Role::Admin.can_edit());
        assert!(!Role::Manager.can_edit());
    }

    #[test]
    fn only_admins_pause() {
        assert!(Role::Admin.can_pause());
        assert!(!Role::Staff.can_pause());
        assert!(!Role::Manager.can_pause());
    }
}
