//! `POST /customers/{id}/save`: the customer edit form. A plain form: on a problem it returns to
//! the form with the messages and everything typed (nothing is lost), on success with a notice.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::auth::require_role_for_handler;
use super::db::UpdateError;
use super::timefmt;
use crate::model::Role;
use crate::model::customer_edit::CustomerForm;
use crate::model::list_query::encode_component;

/// Reads the posted form (groups are repeated `group=` fields; the opt-out box is present
/// only when ticked).
pub fn parse_form(body: &[u8]) -> CustomerForm {
    let mut f = CustomerForm::default();
    for (k, v) in form_urlencoded::parse(body) {
        let v = v.into_owned();
        match &*k {
            "name" => f.name = v,
            "phone" => f.phone = v,
            "email" => f.email = v,
            "whatsapp_id" => f.whatsapp_id = v,
            "telegram_chat_id" => f.telegram_chat_id = v,
            "tags" => f.tags = v,
            "group" => f.groups.push(v),
            "assignee" => f.assignee = v,
            "time_zone" => f.time_zone = v,
            "opted_out" => f.opted_out = true,
            _ => {}
        }
    }
    f
}

/// The edit page's address with `error` and every typed field, so the form shows them again.
pub fn back_to_form(id: i64, error: &str, f: &CustomerForm) -> String {
    let mut url = format!("/customers/{id}?error={}", encode_component(error));
    for (k, v) in [
        ("name", &f.name),
        ("phone", &f.phone),
        ("email", &f.email),
        ("whatsapp_id", &f.whatsapp_id),
        ("telegram_chat_id", &f.telegram_chat_id),
        ("tags", &f.tags),
        ("assignee", &f.assignee),
        ("time_zone", &f.time_zone),
    ] {
        url.push_str(&format!("&{k}={}", encode_component(v)));
    }
    for g in &f.groups {
        url.push_str(&format!("&group={}", encode_component(g)));
    }
    if f.opted_out {
        url.push_str("&opted_out=on");
    }
    url
}

pub async fn save(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match require_role_for_handler(&state, &headers, &Role::EDITORS).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let form = parse_form(&body);
    // Every problem at once: the form's own checks, then the time zone's name.
    let checked = form.validate();
    let mut problems: Vec<String> = match &checked {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|(_, m)| m.clone()).collect(),
    };
    if !form.time_zone.trim().is_empty() && !timefmt::is_zone(form.time_zone.trim()) {
        problems.push(format!(
            "“{}” is not a time zone (e.g. Europe/Berlin).",
            form.time_zone.trim()
        ));
    }
    let valid = match checked {
        Ok(v) if problems.is_empty() => v,
        _ => return Redirect::to(&back_to_form(id, &problems.join(" "), &form)).into_response(),
    };
    if let Some(a) = valid.assignee_id {
        match state.db.staff_names().await {
            Ok(staff) if staff.iter().any(|(sid, _)| *sid == a) => {}
            Ok(_) => {
                return Redirect::to(&back_to_form(
                    id,
                    "Choose an assignee from the list.",
                    &form,
                ))
                .into_response();
            }
            Err(e) => {
                tracing::error!(error = ?e, "staff lookup failed");
                return Redirect::to(&back_to_form(
                    id,
                    "Nothing was saved: the database is unavailable.",
                    &form,
                ))
                .into_response();
            }
        }
    }
    let now = state.clock.now();
    match state.db.update_customer(id, &valid, now).await {
        Ok(()) => {
            let _ = state
                .db
                .audit(now, Some(user.id), "edit", "customer", Some(id), "")
                .await;
            Redirect::to(&format!("/customers/{id}?notice=Saved.")).into_response()
        }
        Err(UpdateError::NotFound) => {
            Redirect::to("/customers?error=That%20customer%20no%20longer%20exists.").into_response()
        }
        Err(UpdateError::Taken(field)) => Redirect::to(&back_to_form(
            id,
            &format!("Nothing was saved: another customer already has this {field}."),
            &form,
        ))
        .into_response(),
        Err(UpdateError::Db(e)) => {
            tracing::error!(error = ?e, "customer update failed");
            Redirect::to(&back_to_form(
                id,
                "Nothing was saved: the database refused the change.",
                &form,
            ))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_survives_a_round_trip_through_the_error_url() {
        let f = parse_form(b"name=Ada+L%C3%B6&phone=%2B44+20&tags=VIP%2C+New&group=Sales-bot&group=Support-bot&time_zone=Mars&opted_out=on");
        assert_eq!(f.name, "Ada Lö");
        assert_eq!(f.groups, vec!["Sales-bot", "Support-bot"]);
        assert!(f.opted_out);
        let url = back_to_form(7, "Bad.", &f);
        let (_, query) = url.split_once('?').unwrap();
        assert_eq!(parse_form(query.as_bytes()), f);
        assert!(url.starts_with("/customers/7?error=Bad."));
    }
}
