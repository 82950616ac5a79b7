//! CSV downloads, streamed in batches so that a million rows never sit in memory.

use std::borrow::Cow;

use crate::model::delivery::DeliveryState;
use crate::model::results::RecipientFilter;
use crate::model::{CustomerAnchor, CustomerQuery};
use crate::server::db::{AuditEntry, CustomerRecord, Db, DbError, RecipientAnchor};

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

/// The customers `query` selects as CSV, in batches (the header row first). A failure after
/// the first batch ends the stream with an error, so a download is visibly cut.
pub fn customers_csv(
    db: Db,
    query: CustomerQuery,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(Some((db, query, true)), |step| async move {
        let (db, mut query, first) = step?;
        match batch(&db, &query, first).await {
            Ok((bytes, last_id)) => {
                let next = last_id.map(|id| {
                    query.anchor = CustomerAnchor::After(id);
                    (db, query, false)
                });
                Some((Ok(bytes), next))
            }
            Err(e) => {
                tracing::error!(error = ?e, "customer export failed");
                Some((Err(std::io::Error::other("export failed")), None))
            }
        }
    })
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

/// The per-recipient CSV's columns.
pub const RECIPIENT_COLUMNS: [&str; 11] = [
    "customer",
    "status",
    "reason",
    "replied",
    "tags",
    "assignee",
    "channel",
    "sent_at",
    "delivered_at",
    "read_at",
    "replied_at",
];

/// Broadcast `id`'s recipients as the results table filters them, as CSV in batches (see
/// [`recipients_csv`]); `NotFound` when there is no such broadcast.
/// The export is audited: who took which broadcast's recipient list.
pub async fn recipients(
    db: Db,
    audit: AuditEntry,
    id: i64,
    filter: RecipientFilter,
) -> Result<impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>>, DbError> {
    db.broadcast(id).await?;
    db.audit(&audit.about(id).detail("recipients CSV")).await?;
    Ok(recipients_csv(db, id, filter))
}

/// The customers `query` selects as CSV (see [`customers_csv`]), the export audited: who took
/// which customer data.
pub async fn customers(
    db: Db,
    audit: AuditEntry,
    query: CustomerQuery,
) -> Result<impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>>, DbError> {
    let what = match (query.search.as_str(), query.tag.as_deref()) {
        ("", None) => "every customer".to_string(),
        (q, tag) => format!(
            "customers matching “{q}”{}",
            tag.map(|t| format!(" tagged {t}")).unwrap_or_default()
        ),
    };
    db.audit(&audit.detail(format!("customers CSV: {what}")))
        .await?;
    Ok(customers_csv(db, query))
}

/// Broadcast `id`'s recipients as the results table filters them, as CSV in batches: every
/// row, times in UTC (RFC 3339), cells a spreadsheet would run as formulas neutralised.
fn recipients_csv(
    db: Db,
    id: i64,
    filter: RecipientFilter,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(Some((db, RecipientAnchor::First)), move |step| {
        let filter = filter.clone();
        async move {
            let (db, anchor) = step?;
            match recipient_batch(&db, id, &filter, anchor).await {
                Ok((bytes, last)) => {
                    let next = last.map(|l| (db, RecipientAnchor::After(l)));
                    Some((Ok(bytes), next))
                }
                Err(e) => {
                    tracing::error!(error = ?e, "recipient export failed");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    })
}

/// One batch of the recipient CSV (the header row with the first), and the last delivery id
/// when more may follow.
async fn recipient_batch(
    db: &Db,
    id: i64,
    filter: &RecipientFilter,
    anchor: RecipientAnchor,
) -> anyhow::Result<(Vec<u8>, Option<i64>)> {
    let (rows, more) = db.recipients_page(id, filter, anchor, BATCH as i64).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.customer_id).collect();
    let (mut tags, _) = db.customer_labels(&ids).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    if anchor == RecipientAnchor::First {
        out.write_record(RECIPIENT_COLUMNS)?;
    }
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    for r in &rows {
        let cells = [
            r.name.clone(),
            crate::model::results::state_label(r.state).to_string(),
            if r.state == DeliveryState::Failed {
                r.error.clone().unwrap_or_default()
            } else {
                String::new()
            },
            if r.replied_at.is_some() { "yes" } else { "no" }.to_string(),
            tags.remove(&r.customer_id).unwrap_or_default().join(";"),
            r.assignee.clone().unwrap_or_default(),
            r.channel.clone(),
            time(r.sent_at),
            time(r.delivered_at),
            time(r.read_at),
            time(r.replied_at),
        ];
        out.write_record(cells.iter().map(|c| neutralize(c).into_owned()))?;
    }
    let bytes = out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((
        bytes,
        more.then(|| rows.last().map(|r| r.delivery_id)).flatten(),
    ))
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
