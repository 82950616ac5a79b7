//! A broadcast's results: the counters (never a count over deliveries), the per-recipient
//! table, and "Retry failed".

use crate::model::AppError;
use crate::model::BroadcastId;
use crate::model::{CurrentUser, Lifecycle};
use crate::server::AppState;
use crate::server::db::BroadcastRecord;
use crate::server::timefmt;

/// A broadcast's maintained counters.
pub(crate) fn totals(r: &BroadcastRecord) -> crate::model::results::Counts {
    crate::model::results::Counts::from_array([
        r.audience_total,
        r.sent_count,
        r.delivered_count,
        r.read_count,
        r.replied_count,
        r.failed_count,
    ])
}

/// How many of those a broadcast left out the results name.
pub const LEFT_OUT_SHOWN: i64 = 100;

/// How many reasons the results' "Why they failed" lists.
pub const FAILURE_REASONS_SHOWN: i64 = 10;

/// Broadcast `id`'s results for `viewer`: counters only (never a count over deliveries).
/// Each channel's part in broadcast `id`'s fallback.
async fn add_fallback(
    db: &crate::server::db::Db,
    id: i64,
    channels: &mut [crate::model::results::ChannelResult],
) -> Result<(), AppError> {
    let figures = db.fallback_by_channel(id).await?;
    for c in channels {
        let (handed_on, reached) = figures
            .iter()
            .find(|f| f.0 == c.channel_id)
            .map(|f| (f.1, f.3))
            .unwrap_or_default();
        c.fallback = Some(crate::model::results::ChannelFallback::of(
            c.kind, &c.counts, handed_on, reached,
        ));
    }
    Ok(())
}

pub async fn results(
    db: &crate::server::db::Db,
    viewer: &CurrentUser,
    id: i64,
) -> Result<crate::model::results::Results, AppError> {
    use crate::model::results::Results;
    let r = db.broadcast(id).await?;
    let channels = db
        .channel_results_of(&[id])
        .await?
        .into_iter()
        .map(|c| c.channel)
        .collect();
    let totals = totals(&r);
    let tz = timefmt::zone(&viewer.time_zone);
    let mut results = Results::compute(r.id, r.name.clone(), r.display_status(), totals, channels);
    results.pause_reason = r.pause_reason.clone().filter(|_| r.paused);
    results.resent = r.resent_count;
    results.unknown = r.unknown_count;
    results.expired = r.expired_count;
    let left_out = db.left_out(id, LEFT_OUT_SHOWN).await?;
    results.left_out_consent = left_out.consent;
    results.left_out_cap = left_out.cap;
    results.left_out_first = left_out.first;
    results.can_follow_up = viewer.role.can_edit() && r.started_at.is_some();
    if r.fallback_hours.is_some() {
        results.fallback_hours = r.fallback_hours;
        add_fallback(db, id, &mut results.channels).await?;
    }
    if r.ab_variants > 1 {
        results.ab = super::ab::ab_results(db, viewer, id, r.started_at).await?;
    }
    if r.status == Lifecycle::Sending {
        let now = chrono::Utc::now();
        results.next_wave = db
            .next_wave(id, now)
            .await?
            .map(|w| super::waves::wave_text(&w, now));
    }
    if r.failed_count > 0 {
        (results.failure_reasons, results.more_reasons) =
            db.failure_reasons(id, FAILURE_REASONS_SHOWN).await?;
        let (held, from) = db.held_failures(id, chrono::Utc::now()).await?;
        results.held = from
            .filter(|_| held > 0)
            .map(|t| (held, timefmt::local(t, tz)));
    }
    results.started = r.started_at.map(|t| timefmt::local(t, tz));
    results.finished = r.finished_at.map(|t| timefmt::local(t, tz));
    let minutes = db.timeline(id).await?;
    // While it sends, the chart runs to now; afterwards to its last event.
    let last = minutes.last().map(|m| m.0).unwrap_or(0);
    let until = if r.status == Lifecycle::Sending {
        last.max(crate::server::db::minute_of(chrono::Utc::now()))
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
/// Each delivery's chain: the channels it left, as the table says them.
fn chains(
    hops: Vec<crate::server::db::Hop>,
    names: &[(i64, String)],
) -> std::collections::HashMap<i64, Vec<String>> {
    let mut out: std::collections::HashMap<i64, Vec<String>> = Default::default();
    for h in hops {
        let name = names
            .iter()
            .find(|(c, _)| *c == h.channel_id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("Channel {}", h.channel_id));
        let failed = crate::model::delivery::DeliveryState::parse(&h.state)
            == Some(crate::model::delivery::DeliveryState::Failed);
        let what = if failed {
            format!("failed — {}", h.error.unwrap_or_default())
        } else {
            "not delivered in time".to_string()
        };
        let late = h
            .late
            .map(|l| format!(" (then reported {l})"))
            .unwrap_or_default();
        out.entry(h.delivery_id)
            .or_default()
            .push(format!("{name}: {what}{late}"));
    }
    out
}

pub async fn recipients(
    db: &crate::server::db::Db,
    viewer: &CurrentUser,
    id: i64,
    filter: crate::model::results::RecipientFilter,
    anchor: crate::server::db::RecipientAnchor,
) -> Result<crate::model::results::RecipientPage, AppError> {
    use crate::model::results::{RecipientPage, RecipientRow};
    use crate::server::db::RecipientAnchor;
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
    let channel_names = db.broadcast_channels(id).await?;
    let mut chains = if record.fallback_hours.is_some() {
        let ids: Vec<i64> = rows.iter().map(|r| r.delivery_id).collect();
        chains(db.hops_of(&ids).await?, &channel_names)
    } else {
        Default::default()
    };
    let rows = rows
        .into_iter()
        .map(|r| RecipientRow {
            chain: chains.remove(&r.delivery_id).unwrap_or_default(),
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
            variant: (record.ab_variants > 1).then(|| match usize::try_from(r.variant) {
                Ok(v) => format!("Variant {}", crate::model::ab::letter(v)),
                Err(_) => "Waits for the winner".to_string(),
            }),
        })
        .collect();
    let tag_choices = db.label_choices(crate::server::db::LabelKind::Tag).await?;
    Ok(RecipientPage {
        broadcast_id: id,
        rows,
        next,
        prev,
        tags: tag_choices,
        assignees: db.staff_names().await?,
        channels: channel_names,
        failed: record.failed_count,
        can_retry: viewer.role.can_edit() && record.status.finished() && record.failed_count > 0,
        unknown: record.unknown_count,
        can_resend_unknown: viewer.role.can_edit()
            && (record.status.finished() || record.status == Lifecycle::Sending)
            && record.unknown_count > 0,
        filter,
    })
}

/// "Resend the unknown" on broadcast `id` by `actor` (whose role was already checked), who
/// confirmed that some may get the message twice: how many deliveries go out again.
pub async fn resend_unknown(
    state: &AppState,
    actor: &CurrentUser,
    id: i64,
    confirmed: bool,
) -> Result<i64, AppError> {
    use crate::server::db::ResendError;
    if !confirmed {
        return Err(AppError::BadRequest(
            "Some of these customers may have the message already: tick the box to confirm that they may get it twice.".into(),
        )
        .with_status());
    }
    match state
        .db
        .resend_unknown(BroadcastId(id), actor.id, state.clock.now())
        .await
    {
        Ok(n) => {
            if n > 0 {
                state.dispatcher.poke();
                state.db.announce_broadcast(id).await;
            }
            Ok(n)
        }
        Err(e @ ResendError::NotStarted(_)) => Err(AppError::Conflict(e.to_string()).with_status()),
        Err(ResendError::Db(e)) => Err(e.into()),
    }
}

/// "Retry failed" on broadcast `id` by `actor` (whose role was already checked): how many
/// deliveries go out again.
pub async fn retry_failed(state: &AppState, actor: &CurrentUser, id: i64) -> Result<i64, AppError> {
    use crate::server::db::RetryError;
    match state
        .db
        .retry_failed(BroadcastId(id), actor.id, state.clock.now())
        .await
    {
        Ok(n) => {
            if n > 0 {
                state.dispatcher.poke();
                state.db.announce_broadcast(id).await;
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
