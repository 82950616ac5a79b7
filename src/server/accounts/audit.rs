//! The audit log as people read it (admins and managers): filtered, in their time zone, and
//! exported as CSV.

use chrono::{NaiveDate, TimeZone};

use crate::model::audit::{AUDIT_PAGE_SIZE, AuditPage, AuditQuery, AuditRow};
use crate::model::{AppError, CurrentUser};
use crate::server::AppState;
use crate::server::db::{AuditEntry, AuditFilter, AuditRecord, Db};
use crate::server::timefmt;

/// `query` as storage reads it, dates turned into UTC times in `tz`; a notice when a date is
/// not one (that end is then left open).
pub fn filter(query: &AuditQuery, tz: chrono_tz::Tz) -> (AuditFilter, Option<String>) {
    let mut notice = None;
    let mut day = |d: &Option<String>, next: bool| {
        let d = d.as_deref().map(str::trim).filter(|d| !d.is_empty())?;
        match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(date) => {
                let date = if next { date.succ_opt()? } else { date };
                tz.from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
                    .earliest()
                    .map(|t| t.with_timezone(&chrono::Utc))
            }
            Err(_) => {
                notice = Some(format!(
                    "“{d}” is not a date (YYYY-MM-DD); it was left out."
                ));
                None
            }
        }
    };
    let f = AuditFilter {
        from: day(&query.from, false),
        until: day(&query.to, true),
        actor: query.actor,
        action: query.action.clone().filter(|a| !a.is_empty()),
        subject: query.subject.clone().filter(|s| !s.is_empty()),
        subject_id: query.subject_id,
        before: query.before,
    };
    (f, notice)
}

fn row(r: AuditRecord, tz: chrono_tz::Tz) -> AuditRow {
    let actor = match (r.actor_name, r.actor_email) {
        (Some(n), Some(e)) => format!("{n} ({e})"),
        _ if r.actor_id.is_some() => "a removed account".to_string(),
        _ => "Herald".to_string(),
    };
    AuditRow {
        id: r.id,
        at: timefmt::local(r.at, tz),
        actor,
        action: r.action,
        subject: r.subject_type,
        subject_id: r.subject_id,
        detail: r.detail,
    }
}

/// One page of the log for `viewer`.
pub async fn page(
    state: &AppState,
    viewer: &CurrentUser,
    query: AuditQuery,
) -> Result<AuditPage, AppError> {
    let tz = timefmt::zone(&viewer.time_zone);
    let (f, notice) = filter(&query, tz);
    let mut records = state.db.audit_log(&f, AUDIT_PAGE_SIZE + 1).await?;
    let next = (records.len() as i64 > AUDIT_PAGE_SIZE).then(|| {
        records.truncate(AUDIT_PAGE_SIZE as usize);
        records.last().map(|r| r.id)
    });
    let (actions, subjects) = state.db.audit_choices().await?;
    Ok(AuditPage {
        rows: records.into_iter().map(|r| row(r, tz)).collect(),
        query,
        next: next.flatten(),
        people: state.db.staff_names().await?,
        actions,
        subjects,
        notice,
    })
}

/// The columns of the CSV export.
const COLUMNS: [&str; 7] = [
    "id",
    "at_utc",
    "actor",
    "action",
    "subject",
    "subject_id",
    "detail",
];

/// Every entry `query` selects, as CSV (times in UTC), in batches; the export is audited.
pub async fn export(
    state: &AppState,
    viewer: &CurrentUser,
    query: AuditQuery,
) -> Result<impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + use<>, AppError> {
    let (f, _) = filter(&query, timefmt::zone(&viewer.time_zone));
    let entry = AuditEntry::new(
        state.clock.now(),
        Some(viewer.id),
        "export",
        "audit_log",
        None,
    )
    .detail("audit log CSV");
    state.db.audit(&entry).await?;
    let db: Db = state.db.clone();
    Ok(futures::stream::unfold(
        Some((db, f, true)),
        |step| async move {
            let (db, mut f, first) = step?;
            match db.audit_log(&f, 2_000).await {
                Ok(rows) => {
                    let mut out = csv::Writer::from_writer(Vec::new());
                    if first {
                        let _ = out.write_record(COLUMNS);
                    }
                    for r in &rows {
                        let actor = r.actor_email.clone().unwrap_or_else(|| "Herald".into());
                        let _ = out.write_record([
                            r.id.to_string().as_str(),
                            &r.at.to_rfc3339(),
                            &crate::server::customers::export::neutralize(&actor),
                            &r.action,
                            &r.subject_type,
                            &r.subject_id.map(|i| i.to_string()).unwrap_or_default(),
                            &crate::server::customers::export::neutralize(&r.detail),
                        ]);
                    }
                    let bytes = out.into_inner().unwrap_or_default();
                    let more = rows.len() == 2_000;
                    f.before = rows.last().map(|r| r.id);
                    Some((Ok(bytes), more.then_some((db, f, false))))
                }
                Err(e) => {
                    tracing::error!(error = ?e, "audit export failed");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        },
    ))
}
