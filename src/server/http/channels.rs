//! `POST /channels` (admins): the channels page's form; back to the page with the outcome.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;

use super::extract::Admin;
use super::form::Fields;
use super::respond;
use crate::server::AppState;
use crate::server::channels::setup;

pub fn routes() -> Router<AppState> {
    Router::new().route("/channels", post(change))
}

/// The form's field names carry each kind's settings (`cfg_email_host`), so it is read as
/// fields.
async fn change(
    State(state): State<AppState>,
    Admin(user): Admin,
    Fields(posted): Fields,
) -> Response {
    respond::outcome("/channels", setup::apply(&state, &user, &posted).await)
}
