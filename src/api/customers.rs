//! The customers list.

use leptos::prelude::*;

use super::AppError;
use crate::model::CustomerPage;

/// One page of customers; any signed-in role may read it. Arguments are the URL's.
#[server(endpoint = "customers/list")]
pub async fn list_customers(
    q: Option<String>,
    tag: Option<String>,
    after: Option<String>,
    before: Option<String>,
) -> Result<CustomerPage, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    crate::server::customers::list_page(
        &state()?,
        &user,
        q.as_deref(),
        tag.as_deref(),
        after.as_deref(),
        before.as_deref(),
    )
    .await
}

/// One customer for the edit page (any role may look; staff and admins may save).
#[server(endpoint = "customers/edit")]
pub async fn customer_edit(id: i64) -> Result<crate::model::customer_edit::CustomerEdit, AppError> {
    use crate::model::customer_edit::{CustomerEdit, CustomerForm};
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let state = state()?;
    let (c, tags, groups) = state.db.customer_for_edit(id).await?;
    Ok(CustomerEdit {
        id,
        form: CustomerForm {
            name: c.name,
            phone: c.phone.unwrap_or_default(),
            email: c.email.unwrap_or_default(),
            whatsapp_id: c.whatsapp_id.unwrap_or_default(),
            telegram_chat_id: c.telegram_chat_id.unwrap_or_default(),
            tags: tags.join(", "),
            groups,
            assignee: c.assignee_id.map(|a| a.to_string()).unwrap_or_default(),
            time_zone: c.time_zone,
            opted_out: c.opted_out,
            version: c.version,
        },
        all_groups: state.db.robot_group_names().await?,
        staff: state.db.staff_names().await?,
        zones: chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| z.name().to_string())
            .collect(),
        can_edit: user.role.can_edit(),
        channel_opt_outs: state
            .db
            .channel_opt_outs(id)
            .await?
            .into_iter()
            .map(|(kind, at)| format!("{kind} since {}", at.format("%-d %b %Y")))
            .collect(),
        consents: consent_lines(&state, &user, id).await?,
    })
}

/// A customer's consent as the page shows it, times in the viewer's zone.
#[cfg(feature = "ssr")]
async fn consent_lines(
    state: &crate::server::AppState,
    viewer: &crate::model::CurrentUser,
    id: i64,
) -> Result<Vec<crate::model::consent::ConsentLine>, AppError> {
    use crate::server::timefmt;
    let tz = timefmt::zone(&viewer.time_zone);
    Ok(state
        .db
        .consents_of(id)
        .await?
        .into_iter()
        .map(
            |(kind, purpose, granted, source, note, at)| crate::model::consent::ConsentLine {
                kind,
                purpose,
                granted,
                source,
                note,
                at: timefmt::local(at, tz),
            },
        )
        .collect())
}
