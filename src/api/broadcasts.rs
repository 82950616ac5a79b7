//! The broadcast list and its pause toggle.

use leptos::prelude::*;

use super::AppError;
use crate::model::ListPage;

/// One page of the list; any signed-in role may read it. The arguments are the URL's
/// (flat, so that "all missing" is a valid empty request).
#[server(endpoint = "broadcasts/list")]
pub async fn list_broadcasts(
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
    before: Option<String>,
) -> Result<ListPage, AppError> {
    use crate::model::list_query::RawListParams;
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let params = RawListParams {
        q,
        sort,
        dir,
        after,
        before,
    };
    crate::server::broadcast::list::list_page(&state()?, &user, &params).await
}

/// Pauses (`paused = true`) or resumes a broadcast. Admins only.
#[server(endpoint = "broadcasts/set-paused")]
pub async fn set_paused(id: i64, paused: bool) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let result = match require_role(&[Role::Admin]).await {
        Ok(user) => crate::server::broadcast::list::set_paused(&state()?, &user, id, paused).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result
        && super::form::is_plain_form_post()
    {
        super::form::back_with_error("/", e);
    }
    result
}

/// Cancels a scheduled or sending broadcast for good. Staff and admins. From a plain form, the
/// browser goes to the list with a notice (or back with the error).
#[server(endpoint = "broadcasts/cancel")]
pub async fn cancel_broadcast(id: i64, confirmed: Option<String>) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let result = match require_role(&Role::EDITORS).await {
        // Cancelling cannot be undone: it happens only when the question was answered.
        Ok(_) if confirmed.as_deref() != Some("yes") => {
            if super::form::is_plain_form_post() {
                leptos_axum::redirect(&format!("/broadcasts/{id}/edit?confirm=cancel"));
                return Ok(());
            }
            Err(AppError::BadRequest(
                "Cancelling cannot be undone: confirm it (confirmed=yes).".into(),
            )
            .with_status())
        }
        Ok(user) => crate::server::broadcast::list::cancel(&state()?, &user, id).await,
        Err(e) => Err(e),
    };
    match &result {
        Err(e) if super::form::is_plain_form_post() => super::form::back_with_error("/", e),
        Ok(name) if super::form::is_plain_form_post() => leptos_axum::redirect(&format!(
            "/?notice={}",
            crate::model::list_query::encode_component(&format!("Cancelled “{name}”."))
        )),
        _ => {}
    }
    result.map(|_| ())
}

/// Sends a missed broadcast now (its time passed while Herald was down). Staff and admins.
#[server(endpoint = "broadcasts/send-missed")]
pub async fn send_missed_now(id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let result = async {
        let user = require_role(&Role::EDITORS).await?;
        let state = state()?;
        if state
            .db
            .send_missed_now(crate::model::BroadcastId(id), user.id, state.clock.now())
            .await?
        {
            state.dispatcher.poke();
            state.db.announce_broadcast(id).await;
            Ok(())
        } else {
            Err(AppError::Conflict("It is no longer waiting to be sent.".into()).with_status())
        }
    }
    .await;
    if let Err(e) = &result
        && super::form::is_plain_form_post()
    {
        super::form::back_with_error("/", e);
    }
    result
}

/// A broadcast's results (any signed-in role: managers read them, staff follow up).
#[server(endpoint = "broadcasts/results")]
pub async fn broadcast_results(id: i64) -> Result<crate::model::results::Results, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let db = &state()?.db;
    let mut r = crate::server::broadcast::results::results(db, &user, id).await?;
    // Read when the page opens; the 2-second refresh of the numbers does not show them.
    (r.follow_ups, r.follow_up_of) = db.follow_up_links(id).await?;
    Ok(r)
}

/// A broadcast's cost so far by the workspace's price table (any signed-in role; none when no
/// price is set). Read when the results page opens, not with every refresh of the numbers.
#[server(endpoint = "broadcasts/cost")]
pub async fn broadcast_cost(id: i64) -> Result<Option<crate::model::cost::Cost>, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    require_role(ANY_ROLE).await?;
    crate::server::broadcast::cost::so_far(&state()?, id).await
}

/// One page of a broadcast's recipients, filtered (any signed-in role).
#[server(endpoint = "broadcasts/recipients")]
pub async fn broadcast_recipients(
    id: i64,
    status: Option<String>,
    tag: Option<String>,
    assignee: Option<String>,
    channel: Option<String>,
    after: Option<String>,
    before: Option<String>,
) -> Result<crate::model::results::RecipientPage, AppError> {
    use crate::model::results::RecipientFilter;
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    use crate::server::db::RecipientAnchor;
    let user = require_role(ANY_ROLE).await?;
    let filter = RecipientFilter::parse(
        status.as_deref(),
        tag.as_deref(),
        assignee.as_deref(),
        channel.as_deref(),
    );
    let id_of = |v: &Option<String>| v.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
    let anchor = match (id_of(&after), id_of(&before)) {
        (Some(a), _) => RecipientAnchor::After(a),
        (None, Some(b)) => RecipientAnchor::Before(b),
        _ => RecipientAnchor::First,
    };
    crate::server::broadcast::results::recipients(&state()?.db, &user, id, filter, anchor).await
}

/// "Retry failed": a finished broadcast's failed deliveries go out again (staff and admins).
/// From a plain form, the browser returns to the results with a notice.
#[server(endpoint = "broadcasts/retry-failed")]
pub async fn retry_failed(id: i64) -> Result<i64, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let result = match require_role(&Role::EDITORS).await {
        Ok(user) => crate::server::broadcast::results::retry_failed(&state()?, &user, id).await,
        Err(e) => Err(e),
    };
    super::form::answer_on_results(id, &result, |n| {
        format!("{n} failed deliveries are being sent again.")
    });
    result
}

/// "Resend the unknown": the deliveries whose arrival is unknown go out again (staff and
/// admins), once they confirmed that some may get the message twice (`confirmed=yes`). From a
/// plain form, the browser returns to the results with a notice.
#[server(endpoint = "broadcasts/resend-unknown")]
pub async fn resend_unknown(id: i64, confirmed: Option<String>) -> Result<i64, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let confirmed = confirmed.as_deref() == Some("yes");
    let result = match require_role(&Role::EDITORS).await {
        Ok(user) => {
            crate::server::broadcast::results::resend_unknown(&state()?, &user, id, confirmed).await
        }
        Err(e) => Err(e),
    };
    super::form::answer_on_results(id, &result, |n| {
        format!("{n} deliveries whose arrival was unknown are being sent again.")
    });
    result
}

/// The dashboard of recent broadcasts' rates (any signed-in role).
#[server(endpoint = "broadcasts/dashboard")]
pub async fn dashboard(
    sort: Option<String>,
    dir: Option<String>,
) -> Result<crate::model::results::Dashboard, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    crate::server::broadcast::list::dashboard(&state()?.db, &user, sort.as_deref(), dir.as_deref())
        .await
}
