//! CSV downloads, streamed in batches so that a million rows never sit in memory.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::{ANY_ROLE, require_role_for_handler};
use super::db::{CustomerRecord, Db};
use crate::model::{CustomerAnchor, CustomerQuery};

/// Rows fetched per database round trip while exporting.
const BATCH: usize = 2_000;

/// The export's columns, in the order the CSV import reads them.
pub const CUSTOMER_COLUMNS: [&str; 10] = [
    "name",
    "phone",
    "email",
    "whatsapp_id",
    "telegram_chat_id",
    "tags",
    "robot_groups",
    "assignee_email",
    "time_zone",
    "opted_out",
];

/// A cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first) gets a leading apostrophe, so opening the file cannot execute anything.
/// A phone number (`+` then digits, spaces, brackets, dashes) holds no formula and stays as is.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    let phone = cell.len() > 1
        && cell.starts_with('+')
        && cell[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '-'));
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !phone => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    q: Option<String>,
    tag: Option<String>,
}

/// `GET /customers/export.csv?q=…&tag=…`: the customers list as filtered on the page.
pub async fn customers_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ExportParams>,
) -> Response {
    if let Err(response) = require_role_for_handler(&state, &headers, ANY_ROLE).await {
        return response;
    }
    let (query, _) = CustomerQuery::parse(params.q.as_deref(), params.tag.as_deref(), None, None);
    let stream =
        futures::stream::unfold(Some((state.db.clone(), query, true)), |step| async move {
            let (db, mut query, first) = step?;
            match batch(&db, &query, first).await {
                Ok((bytes, last_id)) => {
                    let next = last_id.map(|id| {
                        query.anchor = CustomerAnchor::After(id);
                        (db, query, false)
                    });
                    Some((Ok::<_, std::io::Error>(bytes), next))
                }
                Err(e) => {
                    // Headers are gone already: end the body early so the download is visibly cut.
                    tracing::error!(error = ?e, "customer export failed");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"customers.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The whole filtered list as one CSV document, in memory: for tests and small lists (the
/// download streams instead).
pub async fn customers_csv_bytes(db: &Db, mut query: CustomerQuery) -> anyhow::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut first = true;
    loop {
        let (bytes, last_id) = batch(db, &query, first).await?;
        all.extend_from_slice(&bytes);
        first = false;
        match last_id {
            Some(id) => query.anchor = CustomerAnchor::After(id),
            None => return Ok(all),
        }
    }
}

/// One batch as CSV bytes (with the header row first), and the last id when more may follow.
async fn batch(
    db: &Db,
    query: &CustomerQuery,
    header_row: bool,
) -> anyhow::Result<(Vec<u8>, Option<i64>)> {
    let page = db.customers_batch(query, BATCH).await?;
    let ids: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
    let (mut tags, mut groups) = db.customer_labels(&ids).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    if header_row {
        out.write_record(CUSTOMER_COLUMNS)?;
    }
    for r in &page.rows {
        let tags = tags.remove(&r.id).unwrap_or_default().join(";");
        let groups = groups.remove(&r.id).unwrap_or_default().join(";");
        write_customer(&mut out, r, &tags, &groups)?;
    }
    let bytes = out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((bytes, page.has_next.then(|| ids.last().copied()).flatten()))
}

fn write_customer(
    out: &mut csv::Writer<Vec<u8>>,
    r: &CustomerRecord,
    tags: &str,
    groups: &str,
) -> csv::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        r.name.clone(),
        opt(&r.phone),
        opt(&r.email),
        opt(&r.whatsapp_id),
        opt(&r.telegram_chat_id),
        tags.to_string(),
        groups.to_string(),
        opt(&r.assignee_email),
        r.time_zone.clone(),
        if r.opted_out { "yes" } else { "no" }.to_string(),
    ];
    out.write_record(cells.iter().map(|c| neutralize(c).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::neutralize;

    #[test]
    fn formula_cells_are_neutralized_and_others_untouched() {
        for bad in ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize(bad), format!("'{bad}"));
        }
        for ok in ["Olivia", "", "a=b", "+15551234567", "+44 (20) 7946-0958"] {
            assert_eq!(neutralize(ok), ok);
        }
        assert_eq!(neutralize("+"), "'+");
        assert_eq!(neutralize("+1 =cmd"), "'+1 =cmd");
    }
}
