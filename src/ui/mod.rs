//! Pages and components.

pub mod audit;
pub mod broadcast_list;
pub mod channels;
pub mod chat;
pub mod compose_islands;
pub mod customer_edit;
pub mod customers;
pub mod dashboard;
pub mod fragments;
pub mod header;
pub mod import;
pub mod labels;
pub mod live;
pub mod login;
pub mod results;
pub mod settings;
pub mod staff;
pub mod wizard;

use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::api::AppError;

/// Renders a page's data: `ok` with it, a trip to sign-in when the session has gone, or the
/// error's message.
pub fn page_or_error<T>(result: Result<T, AppError>, ok: impl FnOnce(T) -> AnyView) -> AnyView {
    match result {
        Ok(data) => ok(data),
        Err(AppError::Unauthorized) => view! { <Redirect path="/login"/> }.into_any(),
        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
    }
}
