//! Cost and approval before sending, through the router: the pre-flight's estimate on a
//! mixed-channel audience against a hand computation, the results' cost from what WhatsApp
//! reported; the approval rule per role (staff submit, only admins decide, a rejection says
//! why, an edit voids an approval); "Send now" and its undo window.

use super::*;
use herald::server::db::{NewChannel, NewCustomer};

fn encode(s: &str) -> String {
    herald::model::list_query::encode_component(s)
}

/// Eleven customers tagged "Costed": WhatsApp in Germany (3) and France (2), SMS only in the
/// US (4) and the UK (1), email only (1). Its tag id and the WhatsApp, SMS and email channels.
async fn costed_audience(app: &TestApp) -> (i64, [i64; 3]) {
    let db = &app.t.db;
    let now = chrono::Utc::now();
    let tag = db.ensure_tag("Costed").await.unwrap();
    let person =
        |name: String, phone: Option<String>, wa: Option<String>, email: Option<String>| {
            NewCustomer {
                name,
                phone,
                email,
                whatsapp_id: wa,
                telegram_chat_id: None,
                assignee_id: None,
                time_zone: "UTC".into(),
                opted_out: false,
                tag_ids: vec![tag],
                group_ids: Vec::new(),
            }
        };
    let mut people = Vec::new();
    for i in 0..3 {
        let n = format!("491700000{i:03}");
        people.push(person(
            format!("De {i}"),
            Some(format!("+{n}")),
            Some(n),
            None,
        ));
    }
    for i in 0..2 {
        people.push(person(
            format!("Fr {i}"),
            None,
            Some(format!("336100000{i:02}")),
            None,
        ));
    }
    for i in 0..4 {
        people.push(person(
            format!("Us {i}"),
            Some(format!("+1555000{i:04}")),
            None,
            None,
        ));
    }
    people.push(person(
        "Uk 0".into(),
        Some("+447700900001".into()),
        None,
        None,
    ));
    people.push(person(
        "Mail 0".into(),
        None,
        None,
        Some("costed@example.com".into()),
    ));
    db.insert_customers_bulk(&people, now).await.unwrap();
    // The bulk insert links tags by phone: the ones without one are linked here.
    db.inspect()
        .execute(&format!(
            "INSERT INTO customer_tags (customer_id, tag_id) SELECT id, {tag} FROM customers \
             WHERE phone IS NULL AND (name LIKE 'Fr %' OR name = 'Mail 0')"
        ))
        .await
        .unwrap();
    let channel = |kind: &str, config: serde_json::Value| NewChannel {
        kind: kind.into(),
        name: format!("Costed {kind}"),
        config_json: config.to_string(),
        rate_per_sec: 10,
    };
    let wa = serde_json::json!({"phone_number_id": "1061", "access_token": "EAAG-token",
        "app_secret": "s", "verify_token": "v", "base_url": "http://127.0.0.1:9/v21.0"});
    let sms = serde_json::json!({"account_sid": "AC1", "auth_token": "t", "from": "+15550000",
        "base_url": "http://127.0.0.1:9"});
    let mut ids = [0; 3];
    for (i, c) in [
        channel("whatsapp", wa),
        channel("sms", sms),
        channel("email", serde_json::json!({})),
    ]
    .iter()
    .enumerate()
    {
        ids[i] = db.insert_channel(c, now).await.unwrap();
    }
    (tag, ids)
}

/// A draft by `cookie` to the "Costed" customers on `channels` in that order; its id.
async fn costed_draft(app: &TestApp, cookie: &str, tag: i64, channels: &[i64], body: &str) -> i64 {
    let step1 = format!(
        "step=1&key=k0123456789abcdef{tag}{}&name=Costed&body={}&go=next",
        channels.len(),
        encode(body)
    );
    let r = app
        .post_form("/broadcasts/wizard", &step1, Some(cookie))
        .await;
    let to = assert_redirect_to(&r, "/broadcasts/");
    let id: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    let step2 =
        format!("step=2&id={id}&match=all&cond_0_field=tag&cond_0_op=is&cond_0_id={tag}&go=next");
    app.post_form("/broadcasts/wizard", &step2, Some(cookie))
        .await;
    let mut step3 = format!("step=3&id={id}&channels_shown=1&purpose=marketing&go=stay");
    for (i, c) in channels.iter().enumerate() {
        step3.push_str(&format!("&channel={c}&prio_{c}={}", i + 1));
    }
    app.post_form("/broadcasts/wizard", &step3, Some(cookie))
        .await;
    id
}

async fn set_rules(app: &TestApp, admin: &str, extra: &str) {
    let form = format!("time_zone=UTC&currency=USD{extra}");
    let r = app.post_form("/settings", &form, Some(admin)).await;
    let to = assert_redirect_to(&r, "/settings?notice=");
    assert!(!to.contains("error"), "{to}");
}

/// 77 characters with an emoji: UCS-2, two segments of 67 (counted by hand).
const TWO_SEGMENTS: &str =
    "Sale ⚡ xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

#[tokio::test]
async fn the_estimate_matches_a_hand_computation_on_a_mixed_channel_audience() {
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let staff = app.sign_in(Role::Staff).await;
    let (tag, [wa, sms, email]) = costed_audience(&app).await;
    assert_eq!(TWO_SEGMENTS.chars().count(), 77);
    let id = costed_draft(&app, &staff, tag, &[wa, sms, email], TWO_SEGMENTS).await;
    let step3 = format!("/broadcasts/{id}/edit?step=3");
    let page = app.get(&step3, Some(&staff)).await.body;
    assert!(
        !page.contains("Estimated cost"),
        "no prices, no estimate: {page}"
    );

    let prices = "whatsapp marketing 1.25\nwhatsapp marketing +49 2.5\nwhatsapp utility 0.5\nsms 0.5\nsms +44 0.75\nemail 0.1";
    set_rules(&app, &admin, &format!("&prices={}", encode(prices))).await;
    let page = app.get(&step3, Some(&staff)).await.body;
    // By hand: WhatsApp reaches the five with an id (3 German at 2.50, 2 French at 1.25);
    // SMS the five left with a phone (4 US at 2 × 0.50, 1 UK at 2 × 0.75); email the last.
    let total = 3.0 * 2.5 + 2.0 * 1.25 + 4.0 * 2.0 * 0.5 + 2.0 * 0.75 + 0.1;
    assert_eq!(format!("{total:.2}"), "15.60");
    let at = page.find("Estimated cost").unwrap_or(0);
    let shown = &page[at..(at + 600).min(page.len())];
    assert!(page.contains("Estimated cost ≈ 15.60 USD: "), "{shown}");
    for part in [
        "WhatsApp marketing +49 3 × 2.50",
        "WhatsApp marketing 2 × 1.25",
        "SMS 4 × 2 segments × 0.50",
        "SMS +44 1 × 2 segments × 0.75",
        "Email 1 × 0.10",
    ] {
        assert!(page.contains(part), "{part}: {page}");
    }

    // The results: what the providers accepted. WhatsApp said one German message was a
    // utility one and one was free; the others are priced by the template's category.
    let db = &app.t.db;
    // Inserted in order: 0–2 German, 3–4 French, 5–8 US, 9 UK, 10 email.
    let customers = db
        .inspect()
        .numbers(&format!(
            "SELECT c.id FROM customers c JOIN customer_tags t ON t.customer_id = c.id \
             WHERE t.tag_id = {tag} ORDER BY c.id"
        ))
        .await
        .unwrap();
    assert_eq!(customers.len(), 11);
    let mut values = Vec::new();
    for (i, cid) in customers.iter().enumerate() {
        let (channel, cat, bill) = match i {
            0 => (wa, "'utility'", "TRUE"),
            1 => (wa, "'marketing'", "FALSE"),
            2..=4 => (wa, "NULL", "NULL"),
            9 => continue, // the UK customer's SMS failed: no cost
            10 => (email, "NULL", "NULL"),
            _ => (sms, "NULL", "NULL"),
        };
        values.push(format!(
            "({id}, {cid}, {channel}, 'delivered', '2026-01-01T00:00:00Z', {cat}, {bill})"
        ));
    }
    db.inspect()
        .execute(&format!(
            "INSERT INTO deliveries (broadcast_id, customer_id, channel_id, state, created_at, \
             pricing_category, billable) VALUES {}",
            values.join(", ")
        ))
        .await
        .unwrap();
    let results = app
        .get(&format!("/broadcasts/{id}"), Some(&staff))
        .await
        .body;
    // 1 × 0.50 (utility, reported) + 0 (free) + 1 × 2.50 + 2 × 1.25 + 4 × 2 × 0.50 + 0.10.
    let so_far = 0.5 + 2.5 + 2.0 * 1.25 + 4.0 * 2.0 * 0.5 + 0.1;
    assert_eq!(format!("{so_far:.2}"), "9.60");
    assert!(results.contains("Cost so far"), "{results}");
    assert!(results.contains("≈ 9.60 USD: "), "{results}");
    assert!(
        results.contains("WhatsApp utility +49 1 × 0.50")
            || results.contains("WhatsApp utility 1 × 0.50"),
        "{results}"
    );
    assert!(
        results.contains("(free, as WhatsApp reported)"),
        "{results}"
    );
    app.t.cleanup().await;
}

/// Broadcast `id`'s stored status and approval.
async fn status_of(app: &TestApp, id: i64) -> (herald::model::Lifecycle, Option<String>) {
    let b = app.t.db.broadcast(id).await.unwrap();
    let a = app.t.db.approval_of(id).await.unwrap().map(|a| a.approval);
    (b.status, a)
}

#[tokio::test]
async fn staff_submit_only_admins_decide_and_an_edit_voids_the_approval() {
    use herald::model::Lifecycle::{Draft, Scheduled};
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let staff = app.sign_in(Role::Staff).await;
    let manager = app.sign_in(Role::Manager).await;
    let (tag, [_, sms, _]) = costed_audience(&app).await;
    // The eight reachable by SMS (German, US, UK) are more than the rule's 4.
    set_rules(&app, &admin, "&approval_customers=4").await;
    let id = costed_draft(&app, &staff, tag, &[sms], "Hello").await;
    let schedule = format!(
        "step=3&id={id}&channels_shown=1&channel={sms}&prio_{sms}=1&purpose=marketing&go=schedule"
    );
    let when = format!("step=1&id={id}&name=Costed&body=Hello&send_at=2099-06-01T10%3A00&go=next");
    app.post_form("/broadcasts/wizard", &when, Some(&staff))
        .await;
    let r = app
        .post_form("/broadcasts/wizard", &schedule, Some(&staff))
        .await;
    let to = assert_redirect_to(&r, "/?notice=");
    assert!(to.contains("approval"), "{to}");
    assert_eq!(status_of(&app, id).await, (Draft, Some("pending".into())));
    let list = app.get("/", Some(&admin)).await.body;
    let at = list.find("Awaiting").unwrap_or(0);
    let shown = &list[at..(at + 600).min(list.len())];
    assert!(
        list.contains("Awaiting approval") && list.contains("reaches 8 customers"),
        "{shown}"
    );
    assert!(
        list.contains(&format!("/broadcasts/{id}/approval")),
        "admins get the form"
    );
    let list = app.get("/", Some(&staff)).await.body;
    assert!(
        !list.contains(&format!("/broadcasts/{id}/approval")),
        "staff do not"
    );

    // Staff and managers cannot decide; nothing changes.
    let approve = "decision=approve&comment=ok";
    for cookie in [&staff, &manager] {
        let r = app
            .post_form(&format!("/broadcasts/{id}/approval"), approve, Some(cookie))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(status_of(&app, id).await, (Draft, Some("pending".into())));

    // A rejection needs a comment, which staff then see.
    let path = format!("/broadcasts/{id}/approval");
    let r = app
        .post_form(&path, "decision=reject&comment=", Some(&admin))
        .await;
    assert!(
        location(&r).contains("Say why it is rejected"),
        "{}",
        location(&r)
    );
    app.post_form(
        &path,
        "decision=reject&comment=Not%20before%20the%20launch",
        Some(&admin),
    )
    .await;
    assert_eq!(status_of(&app, id).await, (Draft, Some("rejected".into())));
    let page = app
        .get(&format!("/broadcasts/{id}/edit?step=3"), Some(&staff))
        .await
        .body;
    assert!(
        page.contains("Rejected") && page.contains("Not before the launch"),
        "{page}"
    );

    // Submitted again and approved: scheduled for its time, both decisions audited.
    app.post_form("/broadcasts/wizard", &schedule, Some(&staff))
        .await;
    assert_eq!(status_of(&app, id).await, (Draft, Some("pending".into())));
    let r = app.post_form(&path, approve, Some(&admin)).await;
    assert_redirect_to(&r, "/?notice=");
    assert_eq!(
        status_of(&app, id).await,
        (Scheduled, Some("approved".into()))
    );
    let audit = app.t.db.inspect();
    for action in ["submit-for-approval", "reject", "approve"] {
        assert!(
            audit.audit_count(action, id).await.unwrap() >= 1,
            "{action}"
        );
    }

    // Moving through the steps without a change keeps it; an edit voids it.
    let next =
        format!("step=2&id={id}&match=all&cond_0_field=tag&cond_0_op=is&cond_0_id={tag}&go=next");
    app.post_form("/broadcasts/wizard", &next, Some(&staff))
        .await;
    assert_eq!(
        status_of(&app, id).await,
        (Scheduled, Some("approved".into()))
    );
    let edit =
        format!("step=1&id={id}&name=Costed&body=Hello%20again&send_at=2099-06-01T10%3A00&go=next");
    let r = app
        .post_form("/broadcasts/wizard", &edit, Some(&staff))
        .await;
    assert!(
        location(&r).contains("needs approval again"),
        "{}",
        location(&r)
    );
    assert_eq!(status_of(&app, id).await, (Draft, None));
    assert_eq!(audit.audit_count("approval-void", id).await.unwrap(), 1);

    // An admin's own scheduling is the approval.
    let r = app
        .post_form("/broadcasts/wizard", &schedule, Some(&admin))
        .await;
    assert_redirect_to(&r, "/?notice=");
    assert_eq!(
        status_of(&app, id).await,
        (Scheduled, Some("approved".into()))
    );
    app.t.cleanup().await;
}

#[tokio::test]
async fn send_now_waits_its_undo_window_and_undo_makes_it_a_draft_again() {
    use herald::model::Lifecycle::{Draft, Scheduled};
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let manager = app.sign_in(Role::Manager).await;
    let (tag, [_, sms, _]) = costed_audience(&app).await;
    let id = costed_draft(&app, &staff, tag, &[sms], "Hello").await;
    let now_form = format!("step=3&id={id}&channels_shown=1&channel={sms}&prio_{sms}=1&go=now");
    let before = chrono::Utc::now();
    let r = app
        .post_form("/broadcasts/wizard", &now_form, Some(&staff))
        .await;
    let to = assert_redirect_to(&r, &format!("/?undo={id}&notice="));
    assert!(to.contains("30%20seconds"), "{to}");
    let b = app.t.db.broadcast(id).await.unwrap();
    assert_eq!(b.status, Scheduled);
    let at = b.scheduled_at.unwrap();
    assert!(
        at >= before + chrono::Duration::seconds(29),
        "{at} vs {before}"
    );
    let list = app.get(&to, Some(&staff)).await.body;
    assert!(list.contains(&format!("/broadcasts/{id}/undo")), "{list}");

    let undo = format!("/broadcasts/{id}/undo");
    let r = app.post_form(&undo, "", Some(&manager)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.post_form(&undo, "", Some(&staff)).await;
    assert_redirect_to(&r, &format!("/broadcasts/{id}/edit?step=3"));
    let b = app.t.db.broadcast(id).await.unwrap();
    assert_eq!(
        (b.status, b.scheduled_at, b.started_at),
        (Draft, None, None)
    );
    assert_eq!(
        app.t
            .db
            .inspect()
            .audit_count("undo-send", id)
            .await
            .unwrap(),
        1
    );
    // Once started (or undone already), too late.
    let r = app.post_form(&undo, "", Some(&staff)).await;
    assert!(location(&r).contains("Too late"), "{}", location(&r));
    app.t.cleanup().await;
}
