//! `POST /customers/tags`: add or remove one tag on the customers ticked on the customers page.
//! A plain form (checkboxes post repeated `id=` fields), so it works without JavaScript; it
//! answers by sending the browser back to the page with a notice or an error.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::auth::require_role_for_handler;
use crate::api::form::with_param;
use crate::model::Role;

/// Most customers one request may change (the page shows 25; this bounds a crafted request).
const MAX_IDS: usize = 10_000;

/// What the form asked for, parsed and checked.
#[derive(Debug, PartialEq, Eq)]
pub struct BulkTag {
    pub ids: Vec<i64>,
    pub tag: String,
    pub add: bool,
    /// Where to go afterwards: a path on this site.
    pub back: String,
}

/// Parses the form body; `Err` carries the message to show (and where to show it).
pub fn parse(body: &[u8]) -> Result<BulkTag, (String, String)> {
    let mut ids = Vec::new();
    let (mut tag, mut action, mut back) = (String::new(), String::new(), String::new());
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "id" => ids.push(v.parse::<i64>().ok()),
            "tag" => tag = v.trim().to_string(),
            "action" => action = v.into_owned(),
            "back" => back = v.into_owned(),
            _ => {}
        }
    }
    if !back.starts_with("/customers") {
        back = "/customers".into();
    }
    let fail = |m: &str| Err((m.to_string(), back.clone()));
    let add = match action.as_str() {
        "add" => true,
        "remove" => false,
        _ => return fail("Choose whether to add or remove the tag."),
    };
    let Some(ids) = ids.into_iter().collect::<Option<Vec<i64>>>() else {
        return fail("The selection was not understood; please try again.");
    };
    if ids.is_empty() {
        return fail("Tick at least one customer first.");
    }
    if ids.len() > MAX_IDS {
        return fail("Too many customers in one go.");
    }
    if tag.is_empty() || tag.chars().count() > 100 {
        return fail("Enter a tag name (up to 100 characters).");
    }
    Ok(BulkTag {
        ids,
        tag,
        add,
        back,
    })
}

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match require_role_for_handler(&state, &headers, &Role::EDITORS).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let req = match parse(&body) {
        Ok(r) => r,
        Err((msg, back)) => return Redirect::to(&with_param(&back, "error", &msg)).into_response(),
    };
    let result = if req.add {
        state.db.add_tag_to(&req.ids, &req.tag).await
    } else {
        state.db.remove_tag_from(&req.ids, &req.tag).await
    };
    let to = match result {
        Ok(n) => {
            let detail = format!(
                "{} {} on {} customers",
                if req.add { "add" } else { "remove" },
                req.tag,
                req.ids.len()
            );
            let _ = state
                .db
                .audit(
                    state.clock.now(),
                    Some(user.id),
                    "bulk_tag",
                    "customer",
                    None,
                    &detail,
                )
                .await;
            let msg = if req.add {
                format!(
                    "Tagged {n} customers “{}” ({} already had it).",
                    req.tag,
                    req.ids.len() as u64 - n
                )
            } else {
                format!("Removed “{}” from {n} customers.", req.tag)
            };
            with_param(&req.back, "notice", &msg)
        }
        Err(e) => {
            tracing::error!(error = ?e, "bulk tag failed");
            with_param(
                &req.back,
                "error",
                "Nothing was changed: the database refused the update.",
            )
        }
    };
    Redirect::to(&to).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_ids_and_refuses_what_it_cannot_do() {
        let ok = parse(b"id=3&id=5&tag=+Spring%20promo+&action=add&back=%2Fcustomers%3Ftag%3DVIP")
            .unwrap();
        assert_eq!(
            ok,
            BulkTag {
                ids: vec![3, 5],
                tag: "Spring promo".into(),
                add: true,
                back: "/customers?tag=VIP".into()
            }
        );
        let err = |b: &[u8]| parse(b).unwrap_err().0;
        assert!(err(b"tag=x&action=add").contains("Tick at least one"));
        assert!(err(b"id=1&tag=&action=add").contains("tag name"));
        assert!(err(b"id=x&tag=a&action=add").contains("not understood"));
        assert!(err(b"id=1&tag=a&action=explode").contains("add or remove"));
        // Never sent anywhere but the customers page.
        assert_eq!(
            parse(b"id=1&tag=a&action=add&back=https%3A%2F%2Fevil")
                .unwrap()
                .back,
            "/customers"
        );
    }
}
