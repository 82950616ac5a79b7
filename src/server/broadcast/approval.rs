//! Approval before sending: the workspace's rule ("more than N customers, or costing more than
//! X, needs an admin's approval"), the gate "Schedule" and "Send now" pass through, an admin's
//! decision, an edit voiding an approval, and undoing "Send now" inside its window.

use sha2::{Digest, Sha256};

use crate::model::channel::ChannelKind;
use crate::model::compose::Compose;
use crate::model::{AppError, CurrentUser, Role};
use crate::server::AppState;

/// The content an approval covers: everything but the time it goes at (moving that is not
/// an edit of what was approved).
pub fn fingerprint(compose: &Compose) -> String {
    let mut c = compose.clone();
    c.scheduled_at = None;
    let json = serde_json::to_string(&c).unwrap_or_default();
    Sha256::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why `compose` (broadcast `id`, on `picked`) needs an admin's approval before it is
/// scheduled: none when the rule is off, it is within the rule, or an admin approved this
/// very content.
pub async fn needed(
    state: &AppState,
    id: i64,
    compose: &Compose,
    picked: &[(i64, ChannelKind)],
) -> Result<Option<String>, AppError> {
    let db = &state.db;
    let (rules, _) = db.workspace_rules().await?;
    let Some(rule) = rules.approval else {
        return Ok(None);
    };
    if let Some(a) = db.approval_of(id).await?
        && a.approval == "approved"
        && a.hash.as_deref() == Some(fingerprint(compose).as_str())
    {
        return Ok(None);
    }
    let e = crate::server::dispatch::eligibility(&rules, compose.purpose, state.clock.now());
    let customers: i64 = match rule.customers {
        Some(_) => db
            .cost_groups(&compose.audience, picked, &e, &vec![0; picked.len()])
            .await?
            .iter()
            .map(|(_, _, n)| n)
            .sum(),
        None => 0,
    };
    let cost = match rule.cost {
        Some(_) => {
            let templates = templates_of(state, picked).await?;
            super::cost::estimate(state, &rules, compose, picked, &templates)
                .await?
                .map_or(0, |c| c.total())
        }
        None => 0,
    };
    Ok(rule.needed(customers, cost, &rules.prices.currency))
}

/// The WhatsApp templates of the first picked WhatsApp channel.
async fn templates_of(
    state: &AppState,
    picked: &[(i64, ChannelKind)],
) -> Result<Vec<crate::model::template::Template>, AppError> {
    Ok(
        match picked.iter().find(|(_, k)| *k == ChannelKind::Whatsapp) {
            Some((wa, _)) => state.db.templates(*wa).await?,
            None => Vec::new(),
        },
    )
}

/// What the gate says of a broadcast about to be scheduled.
pub enum Gate {
    /// Schedule it.
    Go,
    /// Not now: where to send the person (staff submitted it for approval).
    Held(String),
}

/// The gate "Schedule" and "Send now" pass: a broadcast that needs approval goes on when an
/// admin schedules it (their scheduling is the approval, audited), and is submitted for
/// approval when staff do, to go at `send_at` (none: at once) once approved.
pub async fn gate(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    send_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Gate, AppError> {
    let db = &state.db;
    // What is stored is what an approval covers (the form was saved just before).
    let (compose, _, _) = db
        .broadcast_for_edit(id)
        .await
        .map_err(|_| AppError::NotFound("No such broadcast.".into()))?;
    let compose = &compose;
    let all = db.enabled_channels().await?;
    let picked = crate::server::db::EnabledChannel::picked(&all, &compose.channel_ids);
    let Some(why) = needed(state, id, compose, &picked).await? else {
        return Ok(Gate::Go);
    };
    let now = state.clock.now();
    if user.role == Role::Admin {
        let note = format!("Scheduled by an admin: {why}.");
        db.decide_approval(id, true, &note, &fingerprint(compose), user.id, now)
            .await?;
        return Ok(Gate::Go);
    }
    db.submit_for_approval(id, send_at, &why, user.id, now)
        .await?;
    let notice = format!(
        "“{}” needs an admin's approval before it is sent: {why}. The admins see it on the list; it goes {} once approved.",
        compose.name,
        if send_at.is_some() {
            "at its time"
        } else {
            "at once"
        }
    );
    Ok(Gate::Held(crate::model::list_query::with_param(
        "/", "notice", &notice,
    )))
}

/// After broadcast `id` was saved by `user`: voids its approval if what was approved changed
/// (a scheduled one goes back to draft). Whether it did.
pub async fn void_if_edited(state: &AppState, user: &CurrentUser, id: i64) -> bool {
    let db = &state.db;
    let Ok(Some(a)) = db.approval_of(id).await else {
        return false;
    };
    if a.approval != "approved" {
        return false;
    }
    let Ok((compose, _, _)) = db.broadcast_for_edit(id).await else {
        return false;
    };
    let now = state.clock.now();
    db.void_changed_approval(id, &fingerprint(&compose), user.id, now)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = ?e, "voiding an approval failed");
            false
        })
}

/// What an admin's decision leaves to do.
pub enum Decided {
    /// Schedule it as submitted ([`super::compose::schedule_approved`]).
    Approved(Box<Compose>),
    /// Nothing: where to go, with the outcome.
    Rejected(String),
}

/// An admin's decision on broadcast `id`: approved (to be scheduled as submitted) or rejected
/// with `comment` (required).
pub async fn decide(
    state: &AppState,
    admin: &CurrentUser,
    id: i64,
    approve: bool,
    comment: &str,
) -> Result<Decided, AppError> {
    let comment = comment.trim();
    if comment.chars().count() > 1_000 {
        return Err(AppError::BadRequest(
            "A comment is at most 1,000 characters.".into(),
        ));
    }
    if !approve && comment.is_empty() {
        return Err(AppError::BadRequest(
            "Say why it is rejected: the comment is what the staff see.".into(),
        ));
    }
    let db = &state.db;
    let pending = db
        .approval_of(id)
        .await?
        .filter(|a| a.approval == "pending");
    let (compose, _, _) = db
        .broadcast_for_edit(id)
        .await
        .map_err(|_| AppError::NotFound("No such broadcast.".into()))?;
    if pending.is_none() {
        return Err(AppError::Conflict(
            "It is not waiting for approval (decided already, or edited back to a draft).".into(),
        ));
    }
    let now = state.clock.now();
    if !db
        .decide_approval(id, approve, comment, &fingerprint(&compose), admin.id, now)
        .await?
    {
        return Err(AppError::Conflict("It is no longer a draft.".into()));
    }
    db.announce_broadcast(id).await;
    if !approve {
        return Ok(Decided::Rejected(crate::model::list_query::with_param(
            "/",
            "notice",
            &format!("Rejected “{}”; the staff see your comment.", compose.name),
        )));
    }
    Ok(Decided::Approved(Box::new(compose)))
}

/// Undoes "Send now" on broadcast `id` while its window lasts: back to a draft, nothing
/// sent. Where to go, with the outcome.
pub async fn undo(state: &AppState, user: &CurrentUser, id: i64) -> Result<String, AppError> {
    let now = state.clock.now();
    if state.db.undo_send(id, user.id, now).await? {
        state.dispatcher.poke();
        state.db.announce_broadcast(id).await;
        Ok(crate::model::list_query::with_param(
            &format!("/broadcasts/{id}/edit?step=3"),
            "notice",
            "Undone: nothing was sent, and it is a draft again.",
        ))
    } else {
        Err(AppError::Conflict(
            "Too late to undo: it has started sending (pause or cancel it from the list).".into(),
        ))
    }
}
