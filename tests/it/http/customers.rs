//! The customers' forms: export, bulk tags, edit, import, unsubscribe links.

use super::*;

#[tokio::test]
async fn customer_export_follows_the_filter_streams_every_row_and_defuses_formulas() {
    use herald::server::customers::export::CUSTOMER_COLUMNS;
    use herald::server::db::NewCustomer;
    let (app, t) = app().await;
    let vip = t.db.ensure_tag("VIP").await.unwrap();
    let evil = "=HYPERLINK(\"http://evil.example\",\"click\")";
    t.db.insert_customers_bulk(
        &[NewCustomer {
            name: evil.into(),
            phone: Some("+19990000001".into()),
            time_zone: "UTC".into(),
            tag_ids: vec![vip],
            ..Default::default()
        }],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    // More than one export batch in all.
    herald::server::customers::generate(&t.db, 3_000, chrono::Utc::now(), |_| {})
        .await
        .unwrap();

    let r = send(&app, get("/customers/export.csv", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let cookie = sign_in(&app, "manager@herald.test").await;
    let read = |body: &str| {
        let mut rdr = csv::Reader::from_reader(body.as_bytes());
        let head: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(head, CUSTOMER_COLUMNS);
        rdr.records().map(|r| r.unwrap()).collect::<Vec<_>>()
    };

    let r = send(&app, get("/customers/export.csv", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let all = read(&r.body);
    assert_eq!(all.len() as i64, t.db.count_customers().await.unwrap());

    let r = send(&app, get("/customers/export.csv?tag=VIP", Some(&cookie))).await;
    let vips = read(&r.body);
    assert_eq!(
        vips.len() as i64,
        t.db.inspect().count_customers_tagged("VIP").await.unwrap()
    );
    assert!(vips.iter().all(|row| row[5].split(';').any(|t| t == "VIP")));
    let row = vips
        .iter()
        .find(|row| row[1] == *"+19990000001")
        .expect("the planted row");
    assert_eq!(&row[0], format!("'{evil}"), "formula defused");

    let r = send(&app, get("/customers/export.csv?q=smith", Some(&cookie))).await;
    let smiths = read(&r.body);
    assert!(!smiths.is_empty());
    assert!(
        smiths
            .iter()
            .all(|row| row[0].to_lowercase().contains("smith")
                || row[1].contains("smith")
                || row[2].to_lowercase().contains("smith"))
    );
    t.cleanup().await;
}

#[tokio::test]
async fn bulk_tagging_changes_exactly_the_ticked_customers_for_staff_only() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    let page = db
        .list_customers(&herald::model::CustomerQuery::parse(None, None, None, None).0)
        .await
        .unwrap();
    let ids: Vec<i64> = page.rows.iter().take(3).map(|r| r.id).collect();
    let form = |action: &str| {
        let mut f: String = ids.iter().map(|id| format!("id={id}&")).collect();
        f.push_str(&format!(
            "tag=Spring%20promo&action={action}&back=%2Fcustomers%3Fq%3Dx"
        ));
        f
    };
    let tagged = || async {
        db.inspect()
            .count_customers_tagged("Spring promo")
            .await
            .unwrap()
    };
    let audited = || async {
        db.inspect()
            .audit_entries("bulk_tag")
            .await
            .unwrap()
            .into_iter()
            .map(|(_, detail)| detail)
            .collect::<Vec<_>>()
    };

    let r = app.post_form("/customers/tags", &form("add"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let manager = app.sign_in(Role::Manager).await;
    let r = app
        .post_form("/customers/tags", &form("add"), Some(&manager))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(tagged().await, 0, "nothing changed");
    assert!(audited().await.is_empty(), "nothing audited");

    let staff = app.sign_in(Role::Staff).await;
    let r = app
        .post_form("/customers/tags", &form("add"), Some(&staff))
        .await;
    let back = assert_redirect_to(&r, "/customers?q=x&notice=Tagged%203%20customers");
    assert_eq!(tagged().await, 3);
    let page = app.get(&back, Some(&staff)).await;
    assert!(
        page.body
            .contains("Tagged 3 customers “Spring promo” (0 already had it)."),
        "the page shows the notice"
    );
    assert_eq!(audited().await, ["add Spring promo on 3 customers"]);
    // Again: idempotent, and says so.
    let r = app
        .post_form("/customers/tags", &form("add"), Some(&staff))
        .await;
    assert!(assert_redirect_to(&r, "/customers?q=x").contains("Tagged%200%20customers"));
    assert_eq!(tagged().await, 3);

    let r = app
        .post_form("/customers/tags", &form("remove"), Some(&staff))
        .await;
    assert!(assert_redirect_to(&r, "/customers?q=x").contains("Removed"));
    assert_eq!(tagged().await, 0);
    assert_eq!(audited().await.len(), 3, "one entry per change");

    // Nothing ticked: back with a message, nothing changed.
    let r = app
        .post_form(
            "/customers/tags",
            "tag=VIP&action=add&back=%2Fcustomers",
            Some(&staff),
        )
        .await;
    assert_redirect_to(&r, "/customers?error=Tick%20at%20least");
    assert_eq!(audited().await.len(), 3, "a refusal is not audited");
    app.t.cleanup().await;
}

#[tokio::test]
async fn editing_a_customer_saves_everything_or_keeps_what_was_typed() {
    let (app, t) = app().await;
    let rows =
        t.db.list_customers(&herald::model::CustomerQuery::parse(None, None, None, None).0)
            .await
            .unwrap()
            .rows;
    let (id, other_phone) = (rows[0].id, rows[1].phone.clone().unwrap());
    let save = format!("/customers/{id}/save");
    let good = "name=Ada+Lovelace&phone=%2B44+20+7946+0958&email=ADA%40example.org&whatsapp_id=442079460958\
                &telegram_chat_id=-100123&tags=VIP%2C+Pioneers&group=Sales-bot&assignee=&time_zone=Europe%2FLondon&opted_out=on";

    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(&app, post(&save, good, Some(&manager), true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let staff = sign_in(&app, "staff@herald.test").await;
    let r = send(&app, post(&save, good, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/customers/{id}?notice=Saved.").as_str()
    );
    let (c, tags, groups) = t.db.customer_for_edit(id).await.unwrap();
    assert_eq!(c.name, "Ada Lovelace");
    assert_eq!(c.phone.as_deref(), Some("+442079460958"));
    assert_eq!(c.email.as_deref(), Some("ada@example.org"));
    assert_eq!(c.telegram_chat_id.as_deref(), Some("-100123"));
    assert_eq!(
        (c.time_zone.as_str(), c.opted_out, c.assignee_id),
        ("Europe/London", true, None)
    );
    assert_eq!(tags, vec!["Pioneers", "VIP"]);
    assert_eq!(groups, vec!["Sales-bot"]);
    // The new name is searchable at once.
    let found = t
        .db
        .list_customers(&herald::model::CustomerQuery::parse(Some("lovelace"), None, None, None).0)
        .await
        .unwrap();
    assert_eq!(
        found.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![id]
    );

    // Bad input: back to the form with every message and everything typed; nothing stored.
    let bad = "name=Ada+Byron&phone=12345&email=nope&tags=VIP&time_zone=Mars%2FOlympus";
    let r = send(&app, post(&save, bad, Some(&staff), true)).await;
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(loc.starts_with(&format!("/customers/{id}?error=")), "{loc}");
    for part in [
        "not%20a%20phone",
        "not%20an%20email",
        "not%20a%20time%20zone",
        "name=Ada%20Byron",
        "phone=12345",
        "time_zone=Mars%2FOlympus",
    ] {
        assert!(loc.contains(part), "{part} missing from {loc}");
    }
    assert_eq!(
        t.db.customer_for_edit(id).await.unwrap().0.name,
        "Ada Lovelace"
    );
    // The page shows the typed values and the messages.
    let page = send(&app, get(loc, Some(&staff))).await;
    assert!(page.body.contains("value=\"Ada Byron\""), "typed name kept");
    assert!(page.body.contains("is not a time zone"));

    // Another customer's phone: refused by name, nothing stored.
    let taken = format!(
        "name=Ada&phone={}&time_zone=UTC&version=1",
        other_phone.replace('+', "%2B")
    );
    let r = send(&app, post(&save, &taken, Some(&staff), true)).await;
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        loc.contains("another%20customer%20already%20has%20this%20phone"),
        "{loc}"
    );
    assert_eq!(
        t.db.customer_for_edit(id).await.unwrap().0.name,
        "Ada Lovelace"
    );

    // The form carries the version it was opened at.
    let page = send(&app, get(&format!("/customers/{id}"), Some(&staff))).await;
    assert!(
        page.body
            .contains("type=\"hidden\" name=\"version\" value=\"1\""),
        "{}",
        page.body
    );
    // Meanwhile a colleague tags the customer: a save from the form opened before is refused,
    // says what is stored now, keeps what was typed and carries the new version.
    let audit =
        herald::server::db::AuditEntry::new(chrono::Utc::now(), None, "tag", "customers", None);
    t.db.add_tag_to(&[id], "Added meanwhile", &audit)
        .await
        .unwrap();
    let stale = "name=Ada+King&tags=VIP&time_zone=UTC&version=1";
    let r = send(&app, post(&save, stale, Some(&staff), true)).await;
    let loc = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(loc.contains("changed%20since%20you%20opened"), "{loc}");
    assert!(
        loc.contains("Added%20meanwhile")
            && loc.contains("name=Ada%20King")
            && loc.contains("version=2"),
        "{loc}"
    );
    let (c, tags, _) = t.db.customer_for_edit(id).await.unwrap();
    assert_eq!(c.name, "Ada Lovelace");
    assert!(tags.contains(&"Added meanwhile".to_string()), "{tags:?}");
    let page = send(&app, get(&loc, Some(&staff))).await;
    assert!(page.body.contains("value=\"Ada King\""), "typed name kept");
    // Saving again, knowingly, from the form now at version 2 goes through.
    let again = "name=Ada+King&tags=VIP&time_zone=UTC&version=2";
    let r = send(&app, post(&save, again, Some(&staff), true)).await;
    assert_redirect_to(&r, &format!("/customers/{id}?notice=Saved."));
    assert_eq!(t.db.customer_for_edit(id).await.unwrap().0.name, "Ada King");
    t.cleanup().await;
}

#[tokio::test]
async fn importing_through_the_pages_checks_the_upload_and_stores_the_customers() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let before = t.db.count_customers().await.unwrap();
    let csv = "Kunde,Telefon,Tags\nNora Import,+44 20 7946 0101,Imported\nOtto Import,+44 20 7946 0102,Imported\n";

    // Managers may not import, whatever the page shows.
    let r = send(&app, upload(csv.as_bytes(), &manager, None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, get("/customers/import", Some(&manager))).await;
    assert!(!r.body.contains("type=\"file\""), "{}", r.body);

    // Too big (the declared length is enough), or not CSV by its content: a clear message.
    let r = send(&app, upload(csv.as_bytes(), &staff, Some(2 << 30))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let message = location(&r);
    assert!(
        message.contains("2048 MB") && message.contains("largest file"),
        "{message}"
    );
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let message = location(&send(&app, upload(png, &staff, None)).await);
    assert!(message.contains("image"), "{message}");
    let message = location(&send(&app, upload(b"", &staff, None)).await);
    assert!(message.contains("empty"), "{message}");

    // A good file: the preview shows its lines and the guessed mapping ("Kunde" is unknown).
    let r = send(&app, upload(csv.as_bytes(), &staff, None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(page.starts_with("/customers/import/"), "{page}");
    let r = send(&app, get(&page, Some(&staff))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Nora Import") && r.body.contains("Kunde"));
    assert!(
        r.body.contains(r#"<option value="phone" selected"#),
        "Telefon is not guessed as phone: {}",
        r.body
    );

    // Starting without a name column is refused and keeps the choices.
    let r = send(
        &app,
        post(
            &page,
            "col_0=&col_1=phone&col_2=tags&action=start",
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("name"), "{}", location(&r));
    assert_eq!(t.db.count_customers().await.unwrap(), before);

    // Another writer holds the database, so the import is seen running: a progress bar on a
    // page that reloads itself.
    let blocker =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", t.dir().join("herald.db").display()))
            .await
            .unwrap();
    let mut hold = blocker.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let r = send(
        &app,
        post(
            &page,
            "col_0=name&col_1=phone&col_2=tags&action=start",
            Some(&staff),
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let running = send(&app, get(&page, Some(&staff))).await.body;
    assert!(
        running.contains("<progress") && running.contains(r#"http-equiv="refresh""#),
        "{running}"
    );
    sqlx::query("ROLLBACK").execute(&mut *hold).await.unwrap();
    drop(hold);
    blocker.close().await;
    let mut body = String::new();
    for _ in 0..200 {
        body = send(&app, get(&page, Some(&staff))).await.body;
        if !body.contains("<progress") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(body.contains("2 new customers"), "{body}");
    assert_eq!(t.db.count_customers().await.unwrap(), before + 2);
    assert_eq!(
        t.db.inspect()
            .count_customers_tagged("Imported")
            .await
            .unwrap(),
        2
    );
    t.cleanup().await;
}

#[tokio::test]
async fn unsubscribe_links_need_no_sign_in_ask_first_and_opt_out_of_that_kind_only() {
    let (app, t) = app().await;
    let links = test_links();
    let token = links.unsubscribe_token(3, ChannelKind::Email);
    assert_eq!(
        links.unsubscribe_url(3, ChannelKind::Email),
        format!("http://herald.test/unsubscribe/{token}")
    );
    // A GET (link scanners follow those) asks and changes nothing, without a session.
    let r = send(&app, get(&format!("/unsubscribe/{token}"), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Stop receiving email messages from us?"));
    assert!(r.body.contains("<form method=\"post\">"));
    assert!(t.db.channel_opt_outs(3).await.unwrap().is_empty());
    // A mail client's one-click POST (RFC 8058), no cookie, no referer.
    let one_click = Request::post(format!("/unsubscribe/{token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .unwrap();
    let r = send(&app, one_click).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("You are unsubscribed"));
    let kinds: Vec<String> =
        t.db.channel_opt_outs(3)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    assert_eq!(kinds, vec!["email".to_string()]);
    // Again: still fine, nothing more recorded.
    let r = send(&app, post(&format!("/unsubscribe/{token}"), "", None, true)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.db.channel_opt_outs(3).await.unwrap().len(), 1);
    // Tampered, foreign or malformed tokens change nothing.
    let someone_else = token.replacen("3-", "4-", 1);
    let foreign = herald::server::customers::unsubscribe::Links::new("http://x", b"other-key")
        .unsubscribe_token(4, ChannelKind::Email);
    for bad in [
        someone_else.as_str(),
        foreign.as_str(),
        "4-email-xyz",
        "nonsense",
    ] {
        let r = send(&app, post(&format!("/unsubscribe/{bad}"), "", None, true)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(r.body.contains("not valid"));
    }
    assert!(t.db.channel_opt_outs(4).await.unwrap().is_empty());
    t.cleanup().await;
}

#[tokio::test]
async fn deleting_a_tag_asks_first_with_its_count_and_only_the_answer_deletes() {
    use herald::server::db::{LabelKind, NewCustomer};
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let db = &app.state.db;
    let fair = db.ensure_tag("Trade fair").await.unwrap();
    let customer = |phone: &str| NewCustomer {
        name: "Fair Visitor".into(),
        phone: Some(phone.into()),
        time_zone: "UTC".into(),
        tag_ids: vec![fair],
        ..Default::default()
    };
    db.insert_customers_bulk(
        &[customer("+19990000101"), customer("+19990000102")],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let vip = db
        .labels(LabelKind::Tag)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.id == fair)
        .unwrap();
    assert_eq!(vip.customers, 2);
    let form = format!("kind=tag&action=delete&id={}", vip.id);
    let r = app.post_form("/labels", &form, Some(&staff)).await;
    let to = assert_redirect_to(&r, &format!("/labels?confirm=tag-{}", vip.id));
    assert!(
        db.labels(LabelKind::Tag)
            .await
            .unwrap()
            .iter()
            .any(|l| l.id == vip.id),
        "an unanswered delete deletes nothing"
    );
    let question = app.get(&to, Some(&staff)).await.body;
    assert!(
        question.contains("Delete the tag “Trade fair”?")
            && question.contains(&format!(
                "{} customers carry it and will lose it.",
                vip.customers
            )),
        "{question}"
    );
    let r = app
        .post_form("/labels", &format!("{form}&confirmed=yes"), Some(&staff))
        .await;
    assert_redirect_to(&r, "/labels?notice=");
    assert!(
        !db.labels(LabelKind::Tag)
            .await
            .unwrap()
            .iter()
            .any(|l| l.id == vip.id)
    );
}

/// The unsubscribe link's preference page: per kind and purpose what the customer gets now
/// (marketing on SMS only with an opt-in, as the rules say), each change saved as a consent
/// change from the form and audited; choosing a kind they had stopped lifts the stop and
/// writes every purpose there as ticked.
#[tokio::test]
async fn the_preference_page_records_each_choice_as_a_consent_change() {
    use herald::model::consent::{Purpose, Source};
    use herald::server::db::NewCustomer;
    let (app, t) = app().await;
    let rules = herald::model::workspace::Rules {
        quiet: None,
        consent_kinds: vec!["sms".into()],
        ..Default::default()
    };
    t.db.save_workspace_rules(&rules, None, chrono::Utc::now())
        .await
        .unwrap();
    let customer = NewCustomer {
        name: "Pref Erence".into(),
        phone: Some("+447000999111".into()),
        email: Some("pref@example.com".into()),
        whatsapp_id: None,
        telegram_chat_id: None,
        assignee_id: None,
        time_zone: "Europe/London".into(),
        opted_out: false,
        tag_ids: Vec::new(),
        group_ids: Vec::new(),
    };
    t.db.insert_customers_bulk(&[customer], chrono::Utc::now())
        .await
        .unwrap();
    let sql = "SELECT id FROM customers WHERE phone = '+447000999111'";
    let id = t.db.inspect().numbers(sql).await.unwrap()[0];
    let token = test_links().unsubscribe_token(id, ChannelKind::Email);
    let url = format!("/unsubscribe/{token}");
    let page = send(&app, get(&url, None)).await.body;
    let ticked =
        |page: &str, field: &str| page.contains(&format!("name=\"{field}\" value=\"on\" checked"));
    assert!(
        ticked(&page, "want_email_marketing") && ticked(&page, "want_sms_service"),
        "{page}"
    );
    assert!(
        !ticked(&page, "want_sms_marketing"),
        "SMS marketing needs an opt-in: {page}"
    );

    // Email offers off, SMS offers on: two changes, from the form.
    let form = "prefs=1&want_email_service=on&want_sms_marketing=on&want_sms_service=on";
    let r = send(&app, post(&url, form, None, true)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Your choices are saved"));
    let words = t.db.consents_of(id).await.unwrap();
    let word = |kind: &str, p: Purpose| {
        words
            .iter()
            .find(|w| w.0 == kind && w.1 == p)
            .map(|w| (w.2, w.3))
    };
    assert_eq!(
        word("email", Purpose::Marketing),
        Some((false, Source::Form))
    );
    assert_eq!(word("sms", Purpose::Marketing), Some((true, Source::Form)));
    assert_eq!(
        word("sms", Purpose::Service),
        None,
        "unchanged, not written"
    );
    assert_eq!(
        t.db.inspect().audit_entries("consent").await.unwrap().len(),
        2
    );

    // After a STOP on SMS, choosing SMS service only: the stop is lifted, offers stay off.
    t.db.opt_out_on(
        id,
        ChannelKind::Sms,
        "opt-out",
        "replied STOP",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let page = send(&app, get(&url, None)).await.body;
    assert!(!ticked(&page, "want_sms_service") && !ticked(&page, "want_sms_marketing"));
    let form = "prefs=1&want_email_service=on&want_sms_service=on";
    send(&app, post(&url, form, None, true)).await;
    assert!(
        t.db.channel_opt_outs(id).await.unwrap().is_empty(),
        "the stop is lifted"
    );
    let words = t.db.consents_of(id).await.unwrap();
    let word = |kind: &str, p: Purpose| words.iter().find(|w| w.0 == kind && w.1 == p).map(|w| w.2);
    assert_eq!(
        word("sms", Purpose::Marketing),
        Some(false),
        "written as unticked"
    );
    assert_eq!(word("sms", Purpose::Service), Some(true));
    t.cleanup().await;
}
