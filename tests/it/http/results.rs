//! A broadcast's results, the recipient table, and the chat.

use super::*;

#[tokio::test]
async fn results_come_from_the_counters_with_unmeasured_rates_named() {
    use herald::server::db::{DeliveryEvent, NewChannel};
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let (wa, b) = sent_on_whatsapp(&t, "results-key-00001").await;
    let total = t.db.inspect().counters(b).await.unwrap()[0];
    assert!(total > 2, "the demo audience on WhatsApp");
    let first = t.db.inspect().deliveries_of(b).await.unwrap()[0]
        .4
        .clone()
        .unwrap();
    t.db.apply_event(wa, &first, &DeliveryEvent::Read, now)
        .await
        .unwrap();

    // Signed out: the page sends to sign-in, the server function refuses.
    let r = send(&app, get(&format!("/broadcasts/{b}"), None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(
        &app,
        post("/api/broadcasts/results", &format!("id={b}"), None, false),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Managers read results.
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post(
            "/api/broadcasts/results",
            &format!("id={b}"),
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["totals"]["audience"], total);
    assert_eq!(v["totals"]["sent"], total);
    assert_eq!(v["totals"]["delivered"], 1);
    assert_eq!(v["totals"]["read"], 1);
    assert_eq!(v["read"]["Measured"]["part"], 1);
    assert_eq!(v["read"]["Measured"]["whole"], total);
    assert_eq!(v["read_covers"], serde_json::json!(["WA"]));
    assert_eq!(v["channels"][0]["name"], "WA");

    // The page renders the numbers on the server; the list links to it.
    let r = send(&app, get(&format!("/broadcasts/{b}"), Some(&manager))).await;
    assert_eq!(r.status, StatusCode::OK);
    for text in [
        "Total audience",
        "Successful receivers",
        "Failed receivers",
        "Received rate",
        "Read rate",
        "Reply rate",
        "Covers WA.",
        "aria-labelledby=\"funnel-title funnel-desc\" class=\"funnel\"",
        "<title id=\"funnel-title\">",
        "<title id=\"timeline-title\">",
    ] {
        assert!(r.body.contains(text), "{text} missing from {}", r.body);
    }
    let r = send(&app, get("/?q=Sent+on", Some(&manager))).await;
    assert!(
        r.body.contains(&format!("href=\"/broadcasts/{b}\"")),
        "a View link"
    );

    // A Telegram-only broadcast measures neither delivery nor reads: "not measured", not 0 %.
    let tg =
        t.db.insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Bot".into(),
                config_json: "{}".into(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let b2 = sent_on(
        &t,
        tg,
        1,
        "x:1".into(),
        |d| format!("x:{d}"),
        "results-key-00002",
    )
    .await;
    let r = send(
        &app,
        post(
            "/api/broadcasts/results",
            &format!("id={b2}"),
            Some(&manager),
            false,
        ),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        v["totals"]["audience"].as_i64().unwrap() > 0,
        "demo customers on Telegram"
    );
    assert_eq!(v["received"], "NotMeasured");
    assert_eq!(v["read"], "NotMeasured");
    let r = send(&app, get(&format!("/broadcasts/{b2}"), Some(&manager))).await;
    for stat in ["received", "read"] {
        let card = r
            .body
            .split(&format!("data-stat=\"{stat}\""))
            .nth(1)
            .unwrap();
        let card = card.split("data-stat=").next().unwrap();
        assert!(
            card.contains("not measured") && !card.contains("0 %"),
            "{card}"
        );
    }

    let r = send(
        &app,
        post(
            "/api/broadcasts/results",
            "id=999999",
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The dashboard puts them side by side; by read rate, the unmeasured one sorts last.
    let r = send(&app, get("/dashboard?sort=read&dir=desc", Some(&manager))).await;
    assert_eq!(r.status, StatusCode::OK);
    let wa_at = r
        .body
        .find(&format!("data-id=\"{b}\""))
        .expect("the WhatsApp one");
    let tg_at = r
        .body
        .find(&format!("data-id=\"{b2}\""))
        .expect("the Telegram one");
    assert!(wa_at < tg_at, "measured before not measured");
    let r = send(&app, get("/dashboard?sort=read&dir=asc", Some(&manager))).await;
    let wa_at = r.body.find(&format!("data-id=\"{b}\"")).unwrap();
    let tg_at = r.body.find(&format!("data-id=\"{b2}\"")).unwrap();
    assert!(wa_at < tg_at, "not measured stays last");
    assert!(r.body.contains("aria-sort=\"ascending\""));
    let r = send(&app, post("/api/broadcasts/dashboard", "", None, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    t.cleanup().await;
}

#[tokio::test]
async fn the_recipient_table_filters_pages_exports_and_retries_failed() {
    use herald::server::db::DeliveryEvent;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let (wa, b) = sent_on_whatsapp(&t, "recipients-key-01").await;
    let rows = t.db.inspect().deliveries_of(b).await.unwrap();
    assert!(rows.len() > 60, "more than a page");
    let evil = DeliveryEvent::Failed {
        reason: "=HYPERLINK(\"http://evil.example\")".into(),
    };
    for r in &rows[..3] {
        t.db.apply_event(wa, r.4.as_deref().unwrap(), &evil, now)
            .await
            .unwrap();
    }
    t.db.apply_event(wa, rows[5].4.as_deref().unwrap(), &DeliveryEvent::Read, now)
        .await
        .unwrap();
    assert_eq!(t.db.finish_done(now).await.unwrap(), vec![b]);
    let staff = sign_in(&app, "staff@herald.test").await;

    // Failed only: the three, with their reason.
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?status=failed"), Some(&staff)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body.matches("data-state=\"failed\"").count(),
        3,
        "{}",
        r.body
    );
    assert!(r.body.contains("HYPERLINK"));
    assert!(r.body.contains("Retry failed (3)"));
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?status=read"), Some(&staff)),
    )
    .await;
    assert_eq!(r.body.matches("<tr data-delivery=").count(), 1);
    // Everyone: 50 a page, then the next page from the cursor, and back.
    let r = send(&app, get(&format!("/broadcasts/{b}"), Some(&staff))).await;
    assert_eq!(r.body.matches("<tr data-delivery=").count(), 50);
    let last = rows[49].0;
    assert!(
        r.body
            .contains(&format!("/broadcasts/{b}?after={last}#recipients")),
        "a next link"
    );
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?after={last}"), Some(&staff)),
    )
    .await;
    assert!(
        r.body
            .contains(&format!("data-delivery=\"{}\"", rows[50].0))
    );
    assert!(
        !r.body
            .contains(&format!("data-delivery=\"{}\"", rows[49].0))
    );
    assert!(
        r.body
            .contains(&format!("/broadcasts/{b}?before={}#recipients", rows[50].0))
    );
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}?before={}", rows[50].0),
            Some(&staff),
        ),
    )
    .await;
    assert_eq!(r.body.matches("<tr data-delivery=").count(), 50);
    assert!(r.body.contains(&format!("data-delivery=\"{}\"", rows[0].0)));
    // Filters combine: failed on another channel is nobody.
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}?status=failed&channel={}", wa + 1000),
            Some(&staff),
        ),
    )
    .await;
    assert!(r.body.contains("No recipients match."));

    // The CSV of the filtered table, formulas defused; signed-in people only.
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}/recipients.csv?status=failed"),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}/recipients.csv?status=failed"),
            Some(&staff),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let mut reader = csv::Reader::from_reader(r.body.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().next(), Some("customer"));
    let lines: Vec<csv::StringRecord> = reader.records().map(|l| l.unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(&lines[0][1], "Failed");
    assert!(lines[0][2].starts_with("'=HYPERLINK"), "{:?}", &lines[0][2]);
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}/recipients.csv"), Some(&staff)),
    )
    .await;
    assert_eq!(
        csv::Reader::from_reader(r.body.as_bytes())
            .records()
            .count(),
        rows.len()
    );

    // Retry failed: not for managers; staff queue exactly the three again, as a new round.
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post(
            "/api/broadcasts/retry-failed",
            &format!("id={b}"),
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let before = t.db.inspect().counters(b).await.unwrap();
    let r = send(
        &app,
        post(
            "/api/broadcasts/retry-failed",
            &format!("id={b}"),
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "3"));
    let after = t.db.inspect().counters(b).await.unwrap();
    assert_eq!(after[5], 0, "no longer failed");
    assert_eq!(after[1], before[1], "the received ones are untouched");
    let states = t.db.inspect().deliveries_of(b).await.unwrap();
    assert_eq!(states.iter().filter(|r| r.3 == "pending").count(), 3);
    assert_eq!(states[5].3, "read");
    assert_eq!(
        t.db.broadcast(b).await.unwrap().status,
        herald::model::Lifecycle::Sending
    );
    assert_eq!(
        t.db.inspect().counters_by_channel(b).await.unwrap(),
        t.db.recount_by_channel(b).await.unwrap()
    );
    // Sending again: not finished, so no second retry.
    let r = send(
        &app,
        post(
            "/api/broadcasts/retry-failed",
            &format!("id={b}"),
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    t.cleanup().await;
}

#[tokio::test]
async fn the_chat_shows_new_messages_live_takes_replies_and_assignments() {
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel =
        t.db.insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Chat sandbox".into(),
                config_json: r#"{"inbound_token":"chat-token"}"#.into(),
                rate_per_sec: 10,
            },
            now,
        )
        .await
        .unwrap();
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let phone = ann.phone.clone().unwrap();
    let inbound = |text: &str, id: &str| {
        Request::post(format!("/webhooks/sandbox/{channel}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-herald-token", "chat-token")
            .body(Body::from(
                serde_json::json!({ "from": phone, "text": text, "id": id }).to_string(),
            ))
            .unwrap()
    };
    assert_eq!(
        send(&app, inbound("Is the sale still on?", "in-1"))
            .await
            .status,
        StatusCode::OK
    );
    let staff = sign_in(&app, "staff@herald.test").await;

    // The page: the message, marked new, and where a reply would go; the mark goes once seen.
    let r = send(&app, get("/customers/1/chat", Some(&staff))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Is the sale still on?"));
    assert!(r.body.contains("class=\"new-marker\""));
    assert!(r.body.contains("Reply on Chat sandbox"));
    let r = send(&app, get("/customers/1/chat", Some(&staff))).await;
    assert!(!r.body.contains("class=\"new-marker\""), "seen now");

    // The event stream sends what comes in after the given message, as it arrives.
    let last =
        t.db.chat_messages(1, 0, None, 1000)
            .await
            .unwrap()
            .last()
            .unwrap()
            .id;
    let res = app
        .clone()
        .oneshot(get(
            &format!("/customers/1/events?after={last}"),
            Some(&staff),
        ))
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    // The stream reads what is there (nothing new) and waits ...
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), body.frame())
            .await
            .is_err(),
        "nothing new yet"
    );
    // ... and the message wakes it at once (it looks on its own only every 5 s).
    assert_eq!(
        send(&app, inbound("Also, do you ship to Oslo?", "in-2"))
            .await
            .status,
        StatusCode::OK
    );
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    while !seen.contains("Oslo") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the event within 1 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(seen.contains("event: message"), "{seen}");
    assert!(
        seen.contains("class=\"msg in\""),
        "the line as HTML: {seen}"
    );
    assert!(!seen.contains("sale still on"), "only what came after");
    let r = send(&app, get("/customers/1/events", None)).await;
    assert_ne!(r.status, StatusCode::OK, "signed-in people only");

    // Replies go out on the channel they wrote on, through its adapter, into the conversation.
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            "customer_id=1&body=Yes%2C+until+Sunday!",
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let html = m["html"].as_str().unwrap();
    assert!(
        html.contains("Yes, until Sunday!") && html.contains("Chat sandbox"),
        "{html}"
    );
    assert!(m["key"].as_str().unwrap().starts_with('m'));
    let convo = t.db.inspect().conversation(1).await.unwrap();
    let out = convo.last().unwrap();
    assert_eq!(
        (out.0.as_str(), out.1.as_str(), out.2),
        ("out", "Yes, until Sunday!", Some(channel))
    );
    assert!(
        out.3.as_deref().unwrap().starts_with("sbx-"),
        "the provider's id"
    );
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            "customer_id=1&body=+",
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            "customer_id=1&body=Hi",
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Someone who never wrote and got no broadcast: no channel to answer on.
    let mut quiet = 2;
    while t.db.reply_channel(quiet).await.unwrap().is_some() {
        quiet += 1;
    }
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            &format!("customer_id={quiet}&body=Hi"),
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Without JavaScript a refused reply comes back with the text kept.
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            &format!("customer_id={quiet}&body=Kept+text"),
            Some(&staff),
            true,
        ),
    )
    .await;
    let to = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with(&format!("/customers/{quiet}/chat?error="))
            && to.contains("draft=Kept%20text"),
        "{to}"
    );

    // Assign to me.
    let r = send(
        &app,
        post("/api/chat/assign", "customer_id=1", Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&app, get("/customers/1/chat", Some(&staff))).await;
    assert!(r.body.contains("Assigned to you"));
    assert!(!r.body.contains(">Assign to me<"));
    t.cleanup().await;
}

/// A broadcast Herald paused by itself says why, on the list and on its results, until it
/// is resumed; its failures are grouped by reason with what to do.
#[tokio::test]
async fn a_broadcast_herald_paused_says_why_and_its_failures_group_by_reason() {
    use herald::model::BroadcastId;
    use herald::server::channels::codes;
    use herald::server::db::DeliveryEvent;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let (wa, b) = sent_on_whatsapp(&t, "paused-why-key-00001").await;
    let rows = t.db.inspect().deliveries_of(b).await.unwrap();
    assert!(rows.len() > 4);
    let undeliverable = codes::whatsapp(131026).unwrap().reason("WhatsApp");
    for r in rows.iter().take(3) {
        let failed = DeliveryEvent::Failed {
            reason: undeliverable.clone(),
        };
        t.db.apply_event(wa, r.4.as_deref().unwrap(), &failed, now)
            .await
            .unwrap();
    }
    let odd = DeliveryEvent::Failed {
        reason: "WhatsApp 999999: something else".into(),
    };
    t.db.apply_event(wa, rows[3].4.as_deref().unwrap(), &odd, now)
        .await
        .unwrap();
    let why = codes::whatsapp(132015).unwrap().reason("WhatsApp");
    assert!(
        t.db.pause_for_provider(BroadcastId(b), &why, now)
            .await
            .unwrap()
    );
    assert!(
        !t.db
            .pause_for_provider(BroadcastId(b), "again", now)
            .await
            .unwrap(),
        "already paused: the first reason stays"
    );

    let staff = sign_in(&app, "staff@herald.test").await;
    let list = send(&app, get("/?sort=paused", Some(&staff))).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&why), "the list says why");
    let page = send(&app, get(&format!("/broadcasts/{b}"), Some(&staff))).await;
    assert!(page.body.contains(&why), "the results say why");
    assert!(page.body.contains("Why they failed"));
    let group = page.body.find(&undeliverable).expect("grouped by reason");
    let odd_at = page.body.find("WhatsApp 999999: something else").unwrap();
    assert!(group < odd_at, "the most frequent first");
    assert!(page.body[group..odd_at].contains(">3<"), "three of them");

    // Resumed by an admin: the reason goes.
    t.db.set_paused(BroadcastId(b), false, UserId(1), now)
        .await
        .unwrap();
    let list = send(&app, get("/?sort=paused", Some(&staff))).await;
    assert!(!list.body.contains(&why));
    let page = send(&app, get(&format!("/broadcasts/{b}"), Some(&staff))).await;
    assert!(!page.body.contains(&why));
}

/// Deliveries whose arrival is unknown are counted apart, listed with their reason, and sent
/// again only by an editor who confirms that some may then get the message twice.
#[tokio::test]
async fn unknown_deliveries_are_shown_and_resent_only_when_confirmed() {
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let (_, b) = sent_on_whatsapp(&t, "unknown-key-000001").await;
    let rows = t.db.inspect().deliveries_of(b).await.unwrap();
    let ids: Vec<String> = rows[..2].iter().map(|r| r.0.to_string()).collect();
    t.db.inspect()
        .execute(&format!(
            "UPDATE deliveries SET state = 'unknown', error = 'Telegram answered 502: it may have been sent.' \
             WHERE id IN ({})",
            ids.join(",")
        ))
        .await
        .unwrap();
    t.db.rebuild_counters(b).await.unwrap();
    assert_eq!(t.db.finish_done(now).await.unwrap(), vec![b]);
    assert_eq!(t.db.broadcast(b).await.unwrap().unknown_count, 2);
    let staff = sign_in(&app, "staff@herald.test").await;
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?status=unknown"), Some(&staff)),
    )
    .await;
    assert_eq!(
        r.body.matches("data-state=\"unknown\"").count(),
        2,
        "{}",
        r.body
    );
    assert!(r.body.contains("it may have been sent"));
    assert!(r.body.contains("Unknown — may have arrived: 2"));
    assert!(r.body.contains("Resend the 2 unknown"));

    let resend = |who: &str, form: &str| {
        let (app, form, who) = (app.clone(), form.to_string(), who.to_string());
        async move {
            send(
                &app,
                post("/api/broadcasts/resend-unknown", &form, Some(&who), false),
            )
            .await
        }
    };
    let manager = sign_in(&app, "manager@herald.test").await;
    assert_eq!(
        resend(&manager, &format!("id={b}&confirmed=yes"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        resend(&staff, &format!("id={b}")).await.status,
        StatusCode::BAD_REQUEST,
        "not without the confirmation"
    );
    assert_eq!(t.db.broadcast(b).await.unwrap().unknown_count, 2);
    let r = resend(&staff, &format!("id={b}&confirmed=yes")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "2"));
    let record = t.db.broadcast(b).await.unwrap();
    assert_eq!(record.unknown_count, 0);
    assert_eq!(record.status, herald::model::Lifecycle::Sending);
    let states = t.db.inspect().deliveries_of(b).await.unwrap();
    assert_eq!(states.iter().filter(|r| r.3 == "pending").count(), 2);
    assert_eq!(
        t.db.inspect()
            .audit_count("resend-unknown", b)
            .await
            .unwrap(),
        1
    );
    t.cleanup().await;
}

/// "New broadcast to …" from the results: staff make a draft to the recipients who did not
/// read, frozen now, whose count is a recount of the original's deliveries; the wizard names
/// the set and both broadcasts link to each other. Managers cannot; an unknown outcome
/// makes nothing.
#[tokio::test]
async fn a_follow_up_goes_to_the_frozen_outcome_and_both_link_to_each_other() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let db = &app.t.db;
    let started = db
        .inspect()
        .numbers(
            "SELECT b.id FROM broadcasts b WHERE b.started_at IS NOT NULL AND EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.broadcast_id = b.id AND d.state IN ('sent', 'delivered') \
              AND d.replied_at IS NULL) ORDER BY b.id LIMIT 1",
        )
        .await
        .unwrap();
    let id = started[0];
    let not_read = db
        .inspect()
        .numbers(&format!(
            "SELECT COUNT(DISTINCT customer_id) FROM deliveries WHERE broadcast_id = {id} \
             AND state IN ('sent', 'delivered') AND replied_at IS NULL"
        ))
        .await
        .unwrap()[0];
    let before = db.count_broadcasts().await.unwrap();
    let path = format!("/broadcasts/{id}/follow-up");
    let r = app.post_form(&path, "outcome=everyone", Some(&staff)).await;
    assert!(location(&r).contains("Choose whom"), "{}", location(&r));
    assert_eq!(db.count_broadcasts().await.unwrap(), before);

    let r = app.post_form(&path, "outcome=not_read", Some(&staff)).await;
    let to = assert_redirect_to(&r, "/broadcasts/");
    let new: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    assert!(to.contains("step=1"), "{to}");
    let count = herald::model::results::thousands(not_read);
    assert!(to.contains(&encode_count(&count)), "{to}");
    let step2 = app
        .get(&format!("/broadcasts/{new}/edit?step=2"), Some(&staff))
        .await
        .body;
    assert!(
        step2.contains(&format!("The {count} recipients of")) && step2.contains("who did not read"),
        "{step2}"
    );
    let (c, _, _) = db.broadcast_for_edit(new).await.unwrap();
    let ids = db
        .inspect()
        .audience_ids(
            &c.audience,
            &[ChannelKind::Sandbox, ChannelKind::Email, ChannelKind::Sms],
        )
        .await
        .unwrap();
    assert!(
        ids.len() as i64 <= not_read && !ids.is_empty(),
        "{} of {not_read}",
        ids.len()
    );
    let original = app
        .get(&format!("/broadcasts/{id}"), Some(&staff))
        .await
        .body;
    assert!(
        original.contains(&format!("href=\"/broadcasts/{new}\"")),
        "{original}"
    );
    app.t.cleanup().await;
}

fn encode_count(count: &str) -> String {
    herald::model::list_query::encode_component(count)
}
