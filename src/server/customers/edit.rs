//! Saving the customer edit form: every problem found at once, the assignee checked against
//! the staff list, the change and its audit entry in one transaction.

use crate::model::CurrentUser;
use crate::model::customer_edit::CustomerForm;
use crate::server::AppState;
use crate::server::db::{AuditEntry, UpdateError};
use crate::server::timefmt;

/// What became of a save.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// The customer was deleted meanwhile.
    Gone,
    /// Nothing was saved, for this reason (the form is shown again as typed).
    Refused(String),
    /// Nothing was saved: the customer changed since the form was opened. The message says
    /// what is stored now; `version` is the stored one.
    Changed {
        message: String,
        version: i64,
    },
}

pub async fn save(state: &AppState, user: &CurrentUser, id: i64, form: &CustomerForm) -> Saved {
    // Every problem at once: the form's own checks, then the time zone's name.
    let checked = form.validate();
    let mut problems: Vec<String> = match &checked {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|(_, m)| m.clone()).collect(),
    };
    if !form.time_zone.trim().is_empty() && !timefmt::is_zone(form.time_zone.trim()) {
        problems.push(format!(
            "“{}” is not a time zone (e.g. Europe/Berlin).",
            form.time_zone.trim()
        ));
    }
    let valid = match checked {
        Ok(v) if problems.is_empty() => v,
        _ => return Saved::Refused(problems.join(" ")),
    };
    if let Some(a) = valid.assignee_id {
        match state.db.staff_names().await {
            Ok(staff) if staff.iter().any(|(sid, _)| *sid == a) => {}
            Ok(_) => return Saved::Refused("Choose an assignee from the list.".into()),
            Err(e) => {
                tracing::error!(error = ?e, "staff lookup failed");
                return Saved::Refused("Nothing was saved: the database is unavailable.".into());
            }
        }
    }
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(user.id),
        "edit",
        "customer",
        Some(id),
    );
    match state
        .db
        .update_customer(id, form.version, &valid, &audit)
        .await
    {
        Ok(()) => Saved::Saved,
        Err(UpdateError::NotFound) => Saved::Gone,
        Err(UpdateError::Changed) => changed(state, id).await,
        Err(UpdateError::Taken(field)) => Saved::Refused(format!(
            "Nothing was saved: another customer already has this {field}."
        )),
        Err(UpdateError::Db(e)) => {
            tracing::error!(error = ?e, "customer update failed");
            Saved::Refused("Nothing was saved: the database refused the change.".into())
        }
    }
}

/// What a save made from an out-of-date form answers: what is stored now, so the person can
/// decide; the form they typed is kept.
async fn changed(state: &AppState, id: i64) -> Saved {
    match state.db.customer_for_edit(id).await {
        Ok((now, tags, groups)) => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    format!("“{}”", v.join(", "))
                }
            };
            Saved::Changed {
                message: format!(
                    "Nothing was saved: this customer was changed since you opened the form (by a colleague or an import). Stored now: name “{}”, tags {}, robot groups {}. Your version is below; save again to replace what is stored.",
                    now.name,
                    list(&tags),
                    list(&groups)
                ),
                version: now.version,
            }
        }
        Err(crate::server::db::DbError::NotFound) => Saved::Gone,
        Err(e) => {
            tracing::error!(error = ?e, "customer lookup failed");
            Saved::Refused("Nothing was saved: the database is unavailable.".into())
        }
    }
}
