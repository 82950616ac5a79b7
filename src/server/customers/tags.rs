//! Adding or removing one tag on the customers ticked on the customers page (a plain form:
//! checkboxes post repeated `id=` fields, so it works without JavaScript).

use crate::model::CurrentUser;
use crate::server::AppState;
use crate::server::db::AuditEntry;

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

/// The bulk-tag form as posted (`id` repeated, one per ticked customer).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct TagForm {
    pub id: Vec<String>,
    pub tag: String,
    pub action: String,
    pub back: String,
}

/// Checks the form; `Err` carries the message to show (and where to show it).
pub fn check(form: TagForm) -> Result<BulkTag, (String, String)> {
    let TagForm {
        id,
        tag,
        action,
        mut back,
    } = form;
    let tag = tag.trim().to_string();
    if !back.starts_with("/customers") {
        back = "/customers".into();
    }
    let fail = |m: &str| Err((m.to_string(), back.clone()));
    let add = match action.as_str() {
        "add" => true,
        "remove" => false,
        _ => return fail("Choose whether to add or remove the tag."),
    };
    let Ok(ids) = id
        .iter()
        .map(|v| v.parse::<i64>())
        .collect::<Result<Vec<i64>, _>>()
    else {
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

/// Adds or removes the tag; the notice to show, or why nothing changed.
pub async fn apply(state: &AppState, user: &CurrentUser, req: &BulkTag) -> Result<String, String> {
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(user.id),
        "bulk_tag",
        "customer",
        None,
    )
    .detail(format!(
        "{} {} on {} customers",
        if req.add { "add" } else { "remove" },
        req.tag,
        req.ids.len()
    ));
    let result = if req.add {
        state.db.add_tag_to(&req.ids, &req.tag, &audit).await
    } else {
        state.db.remove_tag_from(&req.ids, &req.tag, &audit).await
    };
    match result {
        Ok(n) if req.add => Ok(format!(
            "Tagged {n} customers “{}” ({} already had it).",
            req.tag,
            req.ids.len() as u64 - n
        )),
        Ok(n) => Ok(format!("Removed “{}” from {n} customers.", req.tag)),
        Err(e) => {
            tracing::error!(error = ?e, "bulk tag failed");
            Err("Nothing was changed: the database refused the update.".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_ids_and_refuses_what_it_cannot_do() {
        let parse = |b: &[u8]| check(serde_html_form::from_bytes(b).unwrap());
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
