//! Tags and robot reply groups ("labels"): list with customer counts, create, rename, delete.

use super::states::OPEN;
use super::{AuditEntry, Db, DbError, audit_in, begin_write, on_pool};
use crate::model::audience::{AudienceRule, Field};
use crate::model::labels::LabelRow;

/// Which kind of label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    Tag,
    RobotGroup,
}

impl LabelKind {
    pub fn parse(s: &str) -> Option<LabelKind> {
        match s {
            "tag" => Some(LabelKind::Tag),
            "group" => Some(LabelKind::RobotGroup),
            _ => None,
        }
    }
    fn table(self) -> &'static str {
        match self {
            LabelKind::Tag => "tags",
            LabelKind::RobotGroup => "robot_groups",
        }
    }
    fn links(self) -> (&'static str, &'static str) {
        match self {
            LabelKind::Tag => ("customer_tags", "tag_id"),
            LabelKind::RobotGroup => ("customer_robot_groups", "group_id"),
        }
    }
    fn field(self) -> Field {
        match self {
            LabelKind::Tag => Field::Tag,
            LabelKind::RobotGroup => Field::RobotGroup,
        }
    }
    /// "tag" or "robot group", for messages.
    pub fn noun(self) -> &'static str {
        match self {
            LabelKind::Tag => "tag",
            LabelKind::RobotGroup => "robot group",
        }
    }
}

/// Why a label change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("it no longer exists")]
    NotFound,
    #[error("that name is already taken")]
    Exists,
    /// The name of an unfinished broadcast whose audience uses the label.
    #[error("the broadcast “{0}” uses it in its audience")]
    InUse(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for LabelError {
    fn from(e: sqlx::Error) -> Self {
        if e.as_database_error()
            .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
        {
            LabelError::Exists
        } else {
            LabelError::Db(DbError::Sqlx(e))
        }
    }
}

impl Db {
    /// Every label of `kind` with how many customers carry it, by name.
    pub async fn labels(&self, kind: LabelKind) -> Result<Vec<LabelRow>, DbError> {
        let (links, col) = kind.links();
        let sql = format!(
            "SELECT l.id, l.name, (SELECT COUNT(*) FROM {links} x WHERE x.{col} = l.id) AS customers \
             FROM {} l ORDER BY l.name",
            kind.table()
        );
        Ok(on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await?))
    }

    /// Every label of `kind` as (id, name), by name: for menus (no counting).
    pub async fn label_choices(&self, kind: LabelKind) -> Result<Vec<(i64, String)>, DbError> {
        let sql = format!("SELECT id, name FROM {} ORDER BY name", kind.table());
        Ok(on_pool!(self, p => sqlx::query_as::<_, (i64, String)>(&sql).fetch_all(p).await?))
    }

    pub async fn create_label(
        &self,
        kind: LabelKind,
        name: &str,
        audit: &AuditEntry,
    ) -> Result<i64, LabelError> {
        let sql = format!(
            "INSERT INTO {} (name) VALUES ($1) RETURNING id",
            kind.table()
        );
        let id: i64 = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let id: i64 = sqlx::query_scalar(&sql).bind(name).fetch_one(&mut *tx).await?;
            audit_in!(tx, &audit.about(id))?;
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    pub async fn rename_label(
        &self,
        kind: LabelKind,
        id: i64,
        name: &str,
        audit: &AuditEntry,
    ) -> Result<(), LabelError> {
        let sql = format!("UPDATE {} SET name = $1 WHERE id = $2", kind.table());
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&sql).bind(name).bind(id).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(LabelError::NotFound);
            }
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes a label (and its links to customers), unless a broadcast that has not finished
    /// (draft, scheduled, sending, paused) names it in its audience.
    pub async fn delete_label(
        &self,
        kind: LabelKind,
        id: i64,
        audit: &AuditEntry,
    ) -> Result<(), LabelError> {
        let audiences: Vec<(String, String)> = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT name, audience FROM broadcasts WHERE status IN ({OPEN}) ORDER BY id"),
        )
        .fetch_all(p)
        .await?);
        for (name, json) in audiences {
            let rule: AudienceRule = serde_json::from_str(&json).unwrap_or_default();
            if rule.mentions(kind.field(), id) {
                return Err(LabelError::InUse(name));
            }
        }
        let sql = format!("DELETE FROM {} WHERE id = $1", kind.table());
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&sql).bind(id).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(LabelError::NotFound);
            }
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }
}
