//! The chat with a customer: read it (any role), reply and take it (staff and admins).

use leptos::prelude::*;

use super::AppError;
use crate::model::chat::{ChatReplied, ChatView};

/// A page of the conversation (the newest, or the one before message `before`); opening it
/// from Herald's own pages marks it seen (a link on another site does not).
#[server(endpoint = "chat/view")]
pub async fn customer_chat(id: i64, before: Option<i64>) -> Result<ChatView, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let from_here = use_context::<http::request::Parts>()
        .is_none_or(|p| crate::server::http::middleware::from_here(&p.headers));
    crate::server::chat::view(&state()?, &user, id, before, from_here).await
}

/// Sends a reply on the customer's channel. From a plain form, back to the chat (with the
/// error and the text kept when it fails).
#[server(endpoint = "chat/reply")]
pub async fn chat_reply(customer_id: i64, body: String) -> Result<ChatReplied, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let result = match require_role(&Role::EDITORS).await {
        Ok(user) => crate::server::chat::reply(&state()?, &user, customer_id, &body)
            .await
            .map(|message| ChatReplied {
                key: message.key.clone(),
                html: crate::ui::fragments::chat_line_html(message),
            }),
        Err(e) => Err(e),
    };
    if super::form::is_plain_form_post() {
        let back = format!("/customers/{customer_id}/chat");
        match &result {
            Ok(_) => leptos_axum::redirect(&format!("{back}#reply")),
            Err(e) => leptos_axum::redirect(&super::form::with_param(
                &super::form::with_param(&back, "error", &e.to_string()),
                "draft",
                &body,
            )),
        }
    }
    result
}

/// Makes the caller the customer's assignee.
#[server(endpoint = "chat/assign")]
pub async fn assign_to_me(customer_id: i64) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let result = async {
        let user = require_role(&Role::EDITORS).await?;
        let state = state()?;
        if state
            .db
            .assign_customer(
                crate::model::CustomerId(customer_id),
                user.id,
                state.clock.now(),
            )
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("No such customer.".into()).with_status())
        }
    }
    .await;
    if super::form::is_plain_form_post() {
        match &result {
            Ok(()) => leptos_axum::redirect(&format!("/customers/{customer_id}/chat")),
            Err(e) => super::form::back_with_error(&format!("/customers/{customer_id}/chat"), e),
        }
    }
    result
}
