//! The audit log: who may read it, its filters, its export, and that exports of customer
//! data and recipient lists are themselves recorded.

use super::*;

/// The `data-action`s of the rows a page shows.
fn actions(html: &str) -> Vec<String> {
    html.split("<tr data-action=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn managers_and_admins_read_and_filter_the_log_staff_do_not() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let manager = app.sign_in(Role::Manager).await;
    let admin = app.sign_in(Role::Admin).await;
    // Something to find: a label created by staff.
    let r = app
        .post_form(
            "/labels",
            "kind=tag&action=create&name=Audited",
            Some(&staff),
        )
        .await;
    assert_redirect_to(&r, "/labels?notice=");

    let page = app.get("/audit", Some(&staff)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let csv = app.get("/audit.csv", Some(&staff)).await;
    assert_eq!(csv.status, StatusCode::FORBIDDEN);

    let all = app.get("/audit", Some(&manager)).await;
    assert_eq!(all.status, StatusCode::OK);
    let shown = actions(&all.body);
    assert!(
        shown.contains(&"sign_in".to_string()) && shown.contains(&"label".to_string()),
        "{shown:?}"
    );
    assert!(
        all.body.contains("create tag Audited"),
        "the detail is shown"
    );

    let labels = app.get("/audit?action=label", Some(&admin)).await;
    assert_eq!(actions(&labels.body), vec!["label"]);
    let staff_id = app
        .state
        .db
        .user_by_email("staff@herald.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    let theirs = actions(
        &app.get(&format!("/audit?actor={staff_id}"), Some(&admin))
            .await
            .body,
    );
    assert_eq!(
        theirs,
        vec!["label", "sign_in"],
        "newest first, only theirs"
    );
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d");
    let later = app
        .get(&format!("/audit?from={tomorrow}"), Some(&admin))
        .await;
    assert!(actions(&later.body).is_empty());
    let bad = app.get("/audit?from=soon", Some(&admin)).await;
    assert!(
        bad.body.contains("is not a date"),
        "a bad date is said, not an error page"
    );

    let csv = app.get("/audit.csv?action=label", Some(&manager)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CACHE_CONTROL], "no-store");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "id,at_utc,actor,action,subject,subject_id,detail");
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains("staff@herald.test") && lines[1].contains("create tag Audited"));
    let exports = app
        .state
        .db
        .inspect()
        .audit_entries("export")
        .await
        .unwrap();
    assert_eq!(exports.len(), 1, "the export itself is recorded");
    app.t.cleanup().await;
}

#[tokio::test]
async fn exports_of_customers_and_recipients_are_recorded() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let r = app.get("/customers/export.csv?tag=VIP", Some(&staff)).await;
    assert_eq!(r.status, StatusCode::OK);
    let broadcast = app
        .state
        .db
        .broadcast_id_by_name("Spring sale")
        .await
        .unwrap();
    let r = app
        .get(
            &format!("/broadcasts/{broadcast}/recipients.csv"),
            Some(&staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .get("/broadcasts/999999/recipients.csv", Some(&staff))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let exports = app
        .state
        .db
        .inspect()
        .audit_entries("export")
        .await
        .unwrap();
    let details: Vec<&str> = exports.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(
        details,
        vec![
            "customers CSV: customers matching “” tagged VIP",
            "recipients CSV"
        ]
    );
    app.t.cleanup().await;
}
