//! `POST /settings`: the workspace's rules (admins). A plain form; back to the page with the
//! outcome, and on a problem with what was typed, so nothing is lost.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;

use super::extract::Admin;
use super::form::Form;
use super::respond;
use crate::server::AppState;
use crate::server::workspace::{self, SettingsForm};

pub fn routes() -> Router<AppState> {
    Router::new().route("/settings", post(save))
}

async fn save(
    State(state): State<AppState>,
    Admin(user): Admin,
    Form(f): Form<SettingsForm>,
) -> Response {
    match workspace::save(&state, &user, &f).await {
        Ok(notice) => respond::notice("/settings", &notice),
        Err(problem) => {
            let typed = [
                ("time_zone", f.time_zone.as_str()),
                ("quiet", f.quiet.as_deref().unwrap_or("")),
                ("quiet_from", f.quiet_from.as_str()),
                ("quiet_to", f.quiet_to.as_str()),
                ("prefixes", f.prefixes.as_str()),
                (
                    "consent_whatsapp",
                    f.consent_whatsapp.as_deref().unwrap_or(""),
                ),
                ("consent_sms", f.consent_sms.as_deref().unwrap_or("")),
                ("consent_email", f.consent_email.as_deref().unwrap_or("")),
                (
                    "consent_telegram",
                    f.consent_telegram.as_deref().unwrap_or(""),
                ),
                ("cap_max", f.cap_max.as_str()),
                ("cap_days", f.cap_days.as_str()),
                ("currency", f.currency.as_str()),
                ("prices", f.prices.as_str()),
                ("approval_customers", f.approval_customers.as_str()),
                ("approval_cost", f.approval_cost.as_str()),
                ("error", problem.as_str()),
            ];
            respond::to(&respond::with_fields("/settings?typed=1", typed))
        }
    }
}
