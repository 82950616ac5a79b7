//! The broadcast list and the pause toggle, as services the server functions call.

use super::AppState;
use super::db::{BroadcastRecord, PauseError};
use super::timefmt;
use crate::api::AppError;
use crate::model::list_query::{PageAnchor, RawListParams};
use crate::model::{BroadcastRow, CurrentUser, ListPage, ListQuery};

/// One page of the list for `viewer`, dates in the viewer's time zone.
pub async fn list_page(
    state: &AppState,
    viewer: &CurrentUser,
    raw: &RawListParams,
) -> Result<ListPage, AppError> {
    let (query, notices) = ListQuery::parse(raw);
    let page = state.db.list_broadcasts(&query).await?;
    let tz = timefmt::zone(&viewer.time_zone);
    let first = page.rows.first().map(|r| r.cursor(query.sort));
    let last = page.rows.last().map(|r| r.cursor(query.sort));
    let rows = page.rows.iter().map(|r| row(r, tz)).collect();
    Ok(ListPage {
        rows,
        next: page
            .has_next
            .then_some(last)
            .flatten()
            .map(|c| query.href(PageAnchor::After(c))),
        prev: page
            .has_prev
            .then_some(first)
            .flatten()
            .map(|c| query.href(PageAnchor::Before(c))),
        query,
        notices,
        time_zone: tz.name().to_string(),
        can_pause: viewer.role.can_pause(),
        can_edit: viewer.role.can_edit(),
    })
}

fn row(r: &BroadcastRecord, tz: chrono_tz::Tz) -> BroadcastRow {
    let (send, actual) = match (r.started_at, r.scheduled_at) {
        (Some(t), _) => (Some(t), true),
        (None, Some(t)) => (Some(t), false),
        (None, None) => (None, false),
    };
    BroadcastRow {
        id: r.id,
        name: r.name.clone(),
        status: r.display_status(),
        created: timefmt::local(r.created_at, tz),
        send_date: send.map(|t| timefmt::local(t, tz)),
        send_date_actual: actual,
        live: live_state(r),
    }
}

/// A broadcast's status and progress, as the list shows them live.
pub fn live_state(r: &BroadcastRecord) -> crate::model::LiveState {
    crate::model::LiveState {
        status: r.display_status(),
        total: r.audience_total,
        sent: r.sent_count,
        failed: r.failed_count,
        missed: r.missed_at.is_some() && r.status == "scheduled",
    }
}

/// Pauses or resumes broadcast `id` on behalf of `actor` (whose role was already checked).
pub async fn set_paused(
    state: &AppState,
    actor: &CurrentUser,
    id: i64,
    paused: bool,
) -> Result<(), AppError> {
    let now = state.clock.now();
    match state.db.set_paused(id, paused, actor.id, now).await {
        Ok(_) => {
            if paused {
                state.dispatcher.halt(id);
            } else {
                state.dispatcher.resume(id);
            }
            Ok(())
        }
        Err(PauseError::NotFound(_)) => {
            Err(AppError::NotFound("That broadcast no longer exists.".into()).with_status())
        }
        Err(e @ (PauseError::NotPausable(_) | PauseError::NotCancellable(_))) => {
            Err(AppError::Conflict(format!("Cannot change it: {e}.")).with_status())
        }
        Err(PauseError::Db(e)) => Err(e.into()),
    }
}

/// Cancels broadcast `id` on behalf of `actor` (whose role was already checked).
pub async fn cancel(state: &AppState, actor: &CurrentUser, id: i64) -> Result<String, AppError> {
    match state
        .db
        .cancel_broadcast(id, actor.id, state.clock.now())
        .await
    {
        Ok(b) => {
            state.dispatcher.halt(id);
            Ok(b.name)
        }
        Err(PauseError::NotFound(_)) => {
            Err(AppError::NotFound("That broadcast no longer exists.".into()).with_status())
        }
        Err(e @ (PauseError::NotPausable(_) | PauseError::NotCancellable(_))) => {
            Err(AppError::Conflict(format!("Cannot cancel it: {e}.")).with_status())
        }
        Err(PauseError::Db(e)) => Err(e.into()),
    }
}

/// A broadcast's maintained counters.
fn totals(r: &BroadcastRecord) -> crate::model::results::Counts {
    crate::model::results::Counts::from_array([
        r.audience_total,
        r.sent_count,
        r.delivered_count,
        r.read_count,
        r.replied_count,
        r.failed_count,
    ])
}

/// Broadcast `id`'s results for `viewer`: counters only (never a count over deliveries).
pub async fn results(
    db: &super::db::Db,
    viewer: &CurrentUser,
    id: i64,
) -> Result<crate::model::results::Results, AppError> {
    use crate::model::channel::ChannelKind;
    use crate::model::results::{Counts, Results};
    let r = db.broadcast(id).await?;
    let channels = db
        .channel_results_of(&[id])
        .await?
        .into_iter()
        .filter_map(|(_, cid, name, kind, c)| {
            ChannelKind::parse(&kind).map(|k| (cid, name, k, Counts::from_array(c)))
        })
        .collect();
    let totals = totals(&r);
    let tz = timefmt::zone(&viewer.time_zone);
    let mut results = Results::compute(r.id, r.name.clone(), r.display_status(), totals, channels);
    results.started = r.started_at.map(|t| timefmt::local(t, tz));
    results.finished = r.finished_at.map(|t| timefmt::local(t, tz));
    let minutes = db.timeline(id).await?;
    // While it sends, the chart runs to now; afterwards to its last event.
    let last = minutes.last().map(|m| m.0).unwrap_or(0);
    let until = if r.status == "sending" {
        last.max(super::db::minute_of(chrono::Utc::now()))
    } else {
        last
    };
    results.timeline = crate::model::results::cumulative_steps(&minutes, until, 48)
        .into_iter()
        .map(
            |(m, [sent, delivered, read, replied])| crate::model::results::TimelinePoint {
                label: chrono::DateTime::from_timestamp(m * 60, 0)
                    .map(|t| timefmt::local(t, tz))
                    .unwrap_or_default(),
                sent,
                delivered,
                read,
                replied,
            },
        )
        .collect();
    results.charts = crate::model::results::Charts::of(&results);
    Ok(results)
}

/// Rows per page of the per-recipient table.
pub const RECIPIENTS_PER_PAGE: i64 = 50;

/// One page of broadcast `id`'s recipients for `viewer`, times in the viewer's zone.
pub async fn recipients(
    db: &super::db::Db,
    viewer: &CurrentUser,
    id: i64,
    filter: crate::model::results::RecipientFilter,
    anchor: super::db::RecipientAnchor,
) -> Result<crate::model::results::RecipientPage, AppError> {
    use super::db::RecipientAnchor;
    use crate::model::results::{RecipientPage, RecipientRow};
    let record = db.broadcast(id).await?;
    let (rows, more) = db
        .recipients_page(id, &filter, anchor, RECIPIENTS_PER_PAGE)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.customer_id).collect();
    let (mut tags, _) = db.customer_labels(&ids).await?;
    let tz = timefmt::zone(&viewer.time_zone);
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| timefmt::local(t, tz));
    let (first, last) = (
        rows.first().map(|r| r.delivery_id),
        rows.last().map(|r| r.delivery_id),
    );
    // Whether pages lie on each side: the walked side from `more`, the other from the anchor.
    let (has_prev, has_next) = match anchor {
        RecipientAnchor::First => (false, more),
        RecipientAnchor::After(_) => (true, more),
        RecipientAnchor::Before(_) => (more, true),
    };
    let href = |key: &str, at: i64| {
        let q = filter.query();
        let sep = if q.is_empty() { "" } else { "&" };
        format!("/broadcasts/{id}?{q}{sep}{key}={at}#recipients")
    };
    let (next, prev) = (
        has_next.then_some(last).flatten().map(|l| href("after", l)),
        has_prev
            .then_some(first)
            .flatten()
            .map(|f| href("before", f)),
    );
    let rows = rows
        .into_iter()
        .map(|r| RecipientRow {
            tags: tags.remove(&r.customer_id).unwrap_or_default(),
            delivery_id: r.delivery_id,
            customer_id: r.customer_id,
            name: r.name,
            state: r.state,
            error: r.error,
            assignee: r.assignee,
            channel: r.channel,
            sent: when(r.sent_at),
            delivered: when(r.delivered_at),
            read: when(r.read_at),
            replied: when(r.replied_at),
        })
        .collect();
    let tag_choices = db.label_choices(super::db::LabelKind::Tag).await?;
    Ok(RecipientPage {
        broadcast_id: id,
        rows,
        next,
        prev,
        tags: tag_choices,
        assignees: db.staff_names().await?,
        channels: db.broadcast_channels(id).await?,
        failed: record.failed_count,
        can_retry: viewer.role.can_edit()
            && matches!(record.status.as_str(), "sent" | "failed")
            && record.failed_count > 0,
        filter,
    })
}

/// "Retry failed" on broadcast `id` by `actor` (whose role was already checked): how many
/// deliveries go out again.
pub async fn retry_failed(state: &AppState, actor: &CurrentUser, id: i64) -> Result<i64, AppError> {
    use super::db::RetryError;
    match state.db.retry_failed(id, actor.id, state.clock.now()).await {
        Ok(n) => {
            if n > 0 {
                state.dispatcher.poke();
            }
            Ok(n)
        }
        Err(RetryError::NotFinished(status)) => Err(AppError::Conflict(format!(
            "Only a finished broadcast's failed deliveries can be retried; this one is {status}."
        ))
        .with_status()),
        Err(RetryError::Db(e)) => Err(e.into()),
    }
}

/// Broadcasts shown on the dashboard.
pub const DASHBOARD_SIZE: i64 = 50;

/// The managers' dashboard: the recent broadcasts with their rates side by side.
pub async fn dashboard(
    db: &super::db::Db,
    viewer: &CurrentUser,
    sort: Option<&str>,
    dir: Option<&str>,
) -> Result<crate::model::results::Dashboard, AppError> {
    use crate::model::channel::ChannelKind;
    use crate::model::results::{Counts, Dashboard, DashboardRow, Results};
    let records = db.recent_started(DASHBOARD_SIZE).await?;
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let mut channels: std::collections::HashMap<i64, Vec<crate::model::results::ChannelRow>> =
        std::collections::HashMap::new();
    for (b, cid, name, kind, c) in db.channel_results_of(&ids).await? {
        if let Some(k) = ChannelKind::parse(&kind) {
            channels
                .entry(b)
                .or_default()
                .push((cid, name, k, Counts::from_array(c)));
        }
    }
    let tz = timefmt::zone(&viewer.time_zone);
    let rows = records
        .into_iter()
        .map(|r| {
            let totals = totals(&r);
            let computed = Results::compute(
                r.id,
                r.name.clone(),
                r.display_status(),
                totals,
                channels.remove(&r.id).unwrap_or_default(),
            );
            DashboardRow {
                id: r.id,
                name: r.name,
                status: computed.status,
                started: r.started_at.map(|t| timefmt::local(t, tz)),
                started_key: r.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                totals,
                received: computed.received,
                read: computed.read,
                reply: computed.reply,
            }
        })
        .collect();
    Ok(Dashboard::sorted(rows, sort, dir))
}
