//! "New broadcast to …" from a broadcast's results: a draft follow-up whose audience is the
//! recipients with the chosen outcome, frozen now, with the original's message, channels and
//! purpose to start from, linked both ways.

use crate::model::audience::AudienceRule;
use crate::model::compose::{Compose, Intent, MAX_NAME_CHARS};
use crate::model::list_query::with_param;
use crate::model::retarget::{FrozenSet, Outcome};
use crate::model::{AppError, CurrentUser};
use crate::server::AppState;
use crate::server::timefmt;

/// Makes the follow-up of broadcast `id` to its recipients with `outcome`; where to go (the
/// new draft's first step), with a notice.
pub async fn follow_up(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    outcome: &str,
) -> Result<String, AppError> {
    let outcome = Outcome::parse(outcome)
        .ok_or_else(|| AppError::BadRequest("Choose whom the follow-up goes to.".into()))?;
    let db = &state.db;
    let (original, _, _) = db
        .broadcast_for_edit(id)
        .await
        .map_err(|_| AppError::NotFound("No such broadcast.".into()))?;
    let now = state.clock.now();
    let (set, size) = db.freeze_outcome(id, outcome, now).await?;
    if size == 0 {
        return Err(AppError::Conflict(format!(
            "Nobody of “{}” {}: no follow-up made.",
            original.name,
            outcome.label()
        )));
    }
    let name: String = format!("Follow-up: {} ({})", original.name, outcome.label())
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let draft = Compose {
        name,
        body: original.body.clone(),
        audience: AudienceRule {
            frozen: Some(set),
            ..AudienceRule::default()
        },
        channel_ids: original.channel_ids.clone(),
        purpose: original.purpose,
        ..Compose::default()
    }
    .validate(Intent::Draft, now)
    .map_err(|e| {
        AppError::BadRequest(e.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join(" "))
    })?;
    let key = crate::server::accounts::auth::new_session_token()[..32].to_string();
    let (new, _) = db
        .create_broadcast(&draft, user.id, &key, now)
        .await
        .map_err(|e| {
            tracing::error!(error = ?e, "creating a follow-up failed");
            AppError::Internal
        })?;
    db.set_follow_up_of(new, id).await?;
    let notice = format!(
        "A follow-up to the {} recipients of “{}” {}, as they are now. Write its message.",
        crate::model::results::thousands(size),
        original.name,
        outcome.label()
    );
    Ok(with_param(
        &format!("/broadcasts/{new}/edit?step=1"),
        "notice",
        &notice,
    ))
}

/// The frozen set `id` as the wizard names it, in `viewer`'s time zone.
pub async fn frozen_set(
    state: &AppState,
    viewer: &CurrentUser,
    id: i64,
) -> Result<Option<FrozenSet>, AppError> {
    let Some((broadcast_id, broadcast_name, outcome, size, at)) = state.db.audience_set(id).await?
    else {
        return Ok(None);
    };
    Ok(Outcome::parse(&outcome).map(|outcome| FrozenSet {
        id,
        broadcast_id,
        broadcast_name,
        outcome,
        size,
        frozen_at: timefmt::local(at, timefmt::zone(&viewer.time_zone)),
    }))
}
