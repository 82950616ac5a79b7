//! The broadcast list, the pause toggle and cancelling, and the managers' dashboard.

use crate::model::AppError;
use crate::model::BroadcastId;
use crate::model::channel::ChannelKind;
use crate::model::list_query::{PageAnchor, RawListParams};
use crate::model::rate_chart::{Mark, RateChart, RateSample, chart};
use crate::model::results::Rate;
use crate::model::{BroadcastRow, CurrentUser, Lifecycle, ListPage, ListQuery};
use crate::server::AppState;
use crate::server::db::{BroadcastRecord, PauseError};
use crate::server::timefmt;

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
    let mut rows = Vec::with_capacity(page.rows.len());
    for r in &page.rows {
        rows.push(row(state, r, tz).await?);
    }
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

async fn row(
    state: &AppState,
    r: &BroadcastRecord,
    tz: chrono_tz::Tz,
) -> Result<BroadcastRow, AppError> {
    let (send, actual) = match (r.started_at, r.scheduled_at) {
        (Some(t), _) => (Some(t), true),
        (None, Some(t)) => (Some(t), false),
        (None, None) => (None, false),
    };
    Ok(BroadcastRow {
        id: r.id,
        name: r.name.clone(),
        status: r.display_status(),
        created: timefmt::local(r.created_at, tz),
        send_date: send.map(|t| timefmt::local(t, tz)),
        send_date_actual: actual,
        live: live_state(state, r).await?,
        pause_reason: r.pause_reason.clone().filter(|_| r.paused),
        approval: r
            .approval
            .clone()
            .filter(|_| r.status == Lifecycle::Draft)
            .map(|a| (a, r.approval_note.clone().unwrap_or_default())),
    })
}

/// A broadcast's status and progress, as the list shows them live; while it sends, its next
/// wave (read from the due index, only for broadcasts that are sending).
pub async fn live_state(
    state: &AppState,
    r: &BroadcastRecord,
) -> Result<crate::model::LiveState, AppError> {
    let next_wave = if r.status == Lifecycle::Sending {
        let now = state.clock.now();
        state
            .db
            .next_wave(r.id, now)
            .await?
            .map(|w| super::waves::wave_text(&w, now))
    } else {
        None
    };
    Ok(crate::model::LiveState {
        status: r.display_status(),
        total: r.audience_total,
        sent: r.sent_count,
        failed: r.failed_count,
        missed: r.missed_at.is_some() && r.status == Lifecycle::Scheduled,
        expired: r.expired_count,
        next_wave,
    })
}

/// Pauses or resumes broadcast `id` on behalf of `actor` (whose role was already checked).
pub async fn set_paused(
    state: &AppState,
    actor: &CurrentUser,
    id: i64,
    paused: bool,
) -> Result<(), AppError> {
    let now = state.clock.now();
    match state
        .db
        .set_paused(BroadcastId(id), paused, actor.id, now)
        .await
    {
        Ok(_) => {
            if paused {
                state.dispatcher.halt(id);
            } else {
                state.dispatcher.resume(id);
            }
            state.db.announce_broadcast(id).await;
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
        .cancel_broadcast(BroadcastId(id), actor.id, state.clock.now())
        .await
    {
        Ok(b) => {
            state.dispatcher.halt(id);
            state.db.announce_broadcast(id).await;
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

/// Broadcasts shown on the dashboard.
pub const DASHBOARD_SIZE: i64 = 50;

/// The managers' dashboard: the recent broadcasts with their rates side by side.
pub async fn dashboard(
    db: &crate::server::db::Db,
    viewer: &CurrentUser,
    sort: Option<&str>,
    dir: Option<&str>,
) -> Result<crate::model::results::Dashboard, AppError> {
    use crate::model::results::{Dashboard, DashboardRow, Results};
    let records = db.recent_started(DASHBOARD_SIZE).await?;
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let mut channels: std::collections::HashMap<i64, Vec<crate::model::results::ChannelRow>> =
        std::collections::HashMap::new();
    for c in db.channel_results_of(&ids).await? {
        channels.entry(c.broadcast_id).or_default().push(c.channel);
    }
    let tz = timefmt::zone(&viewer.time_zone);
    let rows = records
        .into_iter()
        .map(|r| {
            let totals = super::results::totals(&r);
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
                channels: computed
                    .channels
                    .into_iter()
                    .map(|c| (c.kind, c.received, c.read, c.reply))
                    .collect(),
                mark: if r.ab_variants > 1 {
                    Mark::AbTest
                } else if r.follow_up_of.is_some() {
                    Mark::FollowUp
                } else {
                    Mark::Plain
                },
            }
        })
        .collect();
    let mut d = Dashboard::sorted(rows, sort, dir);
    d.charts = rate_charts(&d.rows);
    Ok(d)
}

/// The dashboard's pictures: every broadcast's rates in the order they started, for all
/// channels and then for each kind of channel they used.
fn rate_charts(rows: &[crate::model::results::DashboardRow]) -> Vec<RateChart> {
    let mut by_start: Vec<&crate::model::results::DashboardRow> = rows.iter().collect();
    by_start.sort_by(|a, b| a.started_key.cmp(&b.started_key).then(a.id.cmp(&b.id)));
    let sample = |r: &crate::model::results::DashboardRow, rates: (Rate, Rate, Rate)| RateSample {
        id: r.id,
        name: r.name.clone(),
        started: r.started.clone().unwrap_or_default(),
        mark: r.mark,
        received: rates.0,
        read: rates.1,
        reply: rates.2,
    };
    let all: Vec<RateSample> = by_start
        .iter()
        .map(|r| sample(r, (r.received.clone(), r.read.clone(), r.reply.clone())))
        .collect();
    let mut charts: Vec<RateChart> = chart("All channels", &all).into_iter().collect();
    let mut kinds: Vec<ChannelKind> = by_start
        .iter()
        .flat_map(|r| r.channels.iter().map(|c| c.0))
        .collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    for kind in kinds {
        let samples: Vec<RateSample> = by_start
            .iter()
            .filter_map(|r| {
                let c = r.channels.iter().find(|c| c.0 == kind)?;
                Some(sample(r, (c.1.clone(), c.2.clone(), c.3.clone())))
            })
            .collect();
        charts.extend(chart(kind.label(), &samples));
    }
    charts
}
