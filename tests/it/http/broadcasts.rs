//! The wizard, attachments, test sends, cancelling and missed schedules.

use super::*;
use herald::model::{ChannelId, CustomerId, UserId};

#[tokio::test]
async fn attachments_are_checked_by_content_and_served_only_to_signed_in_people() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0";
    let files = || {
        std::fs::read_dir(t.dir().join("attachments"))
            .map(|d| d.count())
            .unwrap_or(0)
    };

    let r = send(
        &app,
        multipart_file("/attachments", "logo.png", png, &manager),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, multipart_file("/attachments", "cat.png", exe, &staff)).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.body.contains("its content is EXE"), "{}", r.body);
    assert_eq!(files(), 0, "a refused upload leaves no file behind");
    let r = send(
        &app,
        multipart_file("/attachments", "../../evil.sh", b"#!/bin/sh", &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = send(
        &app,
        multipart_file("/attachments", "../../logo.png", png, &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["name"], "logo.png");
    assert_eq!(v["mime"], "image/png");
    let url = v["url"].as_str().unwrap().to_string();
    assert_eq!(files(), 1);

    // Served to any signed-in role with its type and nosniff; signed out, the sign-in page.
    let r = send(&app, get(&url, Some(&manager))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    let r = send(&app, get(&url, None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&app, get("/attachments/..%2F..%2Fherald.db", Some(&staff)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let pdf = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";
    let r = send(
        &app,
        multipart_file("/attachments", "menu.pdf", pdf, &staff),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let r = send(&app, get(v["url"].as_str().unwrap(), Some(&staff))).await;
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    t.cleanup().await;
}

#[tokio::test]
async fn the_wizard_saves_each_step_creates_once_and_schedules() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let before = t.db.count_broadcasts().await.unwrap();
    let vip = t.db.ensure_tag("VIP").await.unwrap();
    let channel = t.db.enabled_channels().await.unwrap()[0].id;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();

    let step1 = "step=1&key=k0123456789abcdef0123&name=Winter%20sale&body=Hi%20%7B%7Bfirst_name%7D%7D%20%E2%9D%84&send_at=2099-12-24T09%3A30&go=next";
    let r = send(
        &app,
        post("/broadcasts/wizard", step1, Some(&manager), true),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.ends_with("/edit?step=2"), "{to}");
    let id: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    // The same first save again (a double click): the same broadcast, no second one.
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    assert_eq!(location(&r), to);
    assert_eq!(t.db.count_broadcasts().await.unwrap(), before + 1);
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Draft
    );

    // Step 2 shows the live count; choosing "tag is VIP" narrows it.
    let page = send(&app, get(&to, Some(&staff))).await.body;
    assert!(page.contains("customers match"), "{page}");
    let form =
        format!("step=2&id={id}&match=all&cond_0_field=tag&cond_0_op=is&cond_0_id={vip}&go=next");
    let r = send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    assert!(location(&r).ends_with("/edit?step=3"));
    let page = send(&app, get(&location(&r), Some(&staff))).await.body;
    let vips =
        t.db.audience_breakdown(&t.db.broadcast_for_edit(id).await.unwrap().0.audience, &[])
            .await
            .unwrap()
            .unreachable;
    assert!(
        vips > 0 && page.contains(&format!("of {vips} matching customers")),
        "{page}"
    );

    // Step 3 without a channel: refused with the reason, still a draft.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=3&id={id}&channels_shown=1&go=schedule"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("step=3&error=Choose%20at%20least%20one%20channel"),
        "{}",
        location(&r)
    );
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Draft
    );
    let form =
        format!("step=3&id={id}&channels_shown=1&channel={channel}&prio_{channel}=1&go=schedule");
    let r = send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    assert!(location(&r).starts_with("/?notice="), "{}", location(&r));
    let b = t.db.broadcast(id).await.unwrap();
    assert_eq!(b.status, herald::model::Lifecycle::Scheduled);
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(c.channel_ids, vec![channel]);
    assert!(
        c.audience
            .mentions(herald::model::audience::Field::Tag, vip)
    );
    assert_eq!(c.body, "Hi {{first_name}} ❄");

    // A time in the past is refused at scheduling and sends the person back to step 1.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=1&id={id}&send_at=2020-01-01T10%3A00&go=next"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).ends_with("step=2"));
    let r = send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    assert!(
        location(&r).contains("step=1&error=That%20time%20has%20passed"),
        "{}",
        location(&r)
    );
    t.cleanup().await;
}

#[tokio::test]
async fn the_wizard_keeps_listed_files_reads_condition_kinds_and_counts_live() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();

    // A file uploaded on its own (the drag-and-drop path) joins the draft when the step's form
    // lists it; ids that name no upload are ignored; a file no longer listed is dropped.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let r = send(&app, multipart_file("/attachments", "a.png", png, &staff)).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let file = v["id"].as_str().unwrap().to_string();
    let step1 = format!(
        "step=1&key=k0123456789abcdef9999&name=Files&body=Hi&attachments_shown=1&attachment={file}&attachment=0123456789abcdef0123456789abcdef&go=stay"
    );
    let r = send(&app, post("/broadcasts/wizard", &step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(
        c.attachments
            .iter()
            .map(|a| (a.id.as_str(), a.name.as_str(), a.size))
            .collect::<Vec<_>>(),
        vec![(file.as_str(), "a.png", png.len() as u64)]
    );
    let page = send(&app, get(&location(&r), Some(&staff))).await.body;
    assert!(
        page.contains(&format!("name=\"attachment\" value=\"{file}\"")),
        "{page}"
    );
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=1&id={id}&name=Files&body=Hi&attachments_shown=1&go=stay"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        t.db.broadcast_for_edit(id)
            .await
            .unwrap()
            .0
            .attachments
            .is_empty()
    );

    // An unknown placeholder keeps the draft but does not pass step 1.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=1&id={id}&name=Files&body=Hi%20%7B%7Bnick%7D%7D&go=next"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("step=1&error=Unknown%20placeholder"),
        "{}",
        location(&r)
    );
    assert_eq!(
        t.db.broadcast_for_edit(id).await.unwrap().0.body,
        "Hi {{nick}}"
    );

    // The value names its kind: a robot group picked while the kind menu says "Tag" is a
    // robot-group condition. Row keys need not start at 0 or be consecutive.
    let group = t.db.ensure_robot_group("Onboarding").await.unwrap();
    let form = format!(
        "step=2&id={id}&match=any&cond_7_field=tag&cond_7_op=is_not&cond_7_id=robot_group%3A{group}&cond_9_field=tag&cond_9_op=is&cond_9_id=&go=stay"
    );
    send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    let rule = t.db.broadcast_for_edit(id).await.unwrap().0.audience;
    assert_eq!(rule.matching, herald::model::audience::Match::Any);
    assert_eq!(
        rule.conditions,
        vec![herald::model::audience::Condition {
            field: herald::model::audience::Field::RobotGroup,
            op: herald::model::audience::Op::IsNot,
            id: group
        }]
    );

    // The live count: editors only, and the same number the wizard's own count gives.
    let vip = t.db.ensure_tag("VIP").await.unwrap();
    let json = format!(
        r#"{{"rule":{{"match":"all","conditions":[{{"field":"tag","op":"is","id":{vip}}}]}}}}"#
    );
    let r = send(
        &app,
        post_json("/api/broadcasts/audience-preview", &json, &manager),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(
        &app,
        post_json("/api/broadcasts/audience-preview", &json, &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let rule: herald::model::audience::AudienceRule =
        serde_json::from_str(&json[8..json.len() - 1]).unwrap();
    let expected =
        t.db.audience_breakdown(&rule, &[])
            .await
            .unwrap()
            .unreachable;
    assert!(expected > 0);
    assert_eq!(v["matching"], expected);
    let sample = v["sample"].as_array().unwrap().len();
    assert!((1..=5).contains(&sample), "{sample} names");
    let r = send(
        &app,
        post_json("/api/broadcasts/audience-preview", "{nope", &staff),
    )
    .await;
    assert!(r.status.is_client_error() || r.status.is_server_error());
    assert_ne!(r.status, StatusCode::OK);
    t.cleanup().await;
}

#[tokio::test]
async fn a_test_send_goes_to_one_customer_through_the_channel_and_into_their_conversation() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let channel = t.db.enabled_channels().await.unwrap()[0].id;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let phone = ann.phone.clone().unwrap();
    let step1 = "step=1&key=k0123456789abcdef7777&name=Trial&body=Hi%20%7B%7Bfirst_name%7Cthere%7D%7D!&go=next";
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let test = |who: &str, go: &str| {
        format!(
            "step=3&id={id}&channels_shown=1&channel={channel}&prio_{channel}=1&test_to={}&go={go}",
            herald::model::list_query::encode_component(who)
        )
    };

    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test(&phone, "test"),
            Some(&manager),
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        t.db.inspect()
            .conversation(ann.id)
            .await
            .unwrap()
            .is_empty()
    );

    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test(&phone, "test"),
            Some(&staff),
            true,
        ),
    )
    .await;
    let to = location(&r);
    assert!(
        to.starts_with(&format!(
            "/broadcasts/{id}/edit?step=3&notice=Test%20sent%20to"
        )),
        "{to}"
    );
    let page = send(&app, get(&to, Some(&staff))).await.body;
    assert!(
        page.contains(&format!("Test sent to {}", ann.name)),
        "{page}"
    );
    assert!(
        page.contains(&format!("value=\"{phone}\"")),
        "what was typed is kept"
    );
    let first = herald::model::personalize::first_name(&ann.name);
    let convo = t.db.inspect().conversation(ann.id).await.unwrap();
    assert_eq!(convo.len(), 1);
    assert_eq!(convo[0].0, "out");
    assert_eq!(convo[0].1, format!("Hi {first}!"));
    assert_eq!(convo[0].2, Some(channel));
    assert!(convo[0].3.as_deref().unwrap().starts_with("sbx-"));
    // The broadcast itself is untouched: still a draft, now with its channel saved.
    let b = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(b.1, herald::model::Lifecycle::Draft);
    assert_eq!(b.0.channel_ids, vec![channel]);

    // Nobody by that name; opted out on the channel; no customer with the staff email.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test("Nobody Atall", "test"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("&error=No%20customer%20is%20called"),
        "{}",
        location(&r)
    );
    let bo = t.db.recipient(2).await.unwrap().unwrap();
    t.db.record_inbound(
        ChannelId(channel),
        CustomerId(bo.id),
        "STOP",
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let before = t.db.inspect().conversation(bo.id).await.unwrap().len();
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test(bo.phone.as_deref().unwrap(), "test"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("cannot%20be%20reached"),
        "{}",
        location(&r)
    );
    assert_eq!(
        t.db.inspect().conversation(bo.id).await.unwrap().len(),
        before,
        "nothing sent"
    );
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test("", "test_me"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("No%20customer%20has%20your%20email"),
        "{}",
        location(&r)
    );
    t.cleanup().await;
}

#[tokio::test]
async fn staff_cancel_a_scheduled_broadcast_for_good_and_finished_ones_stay() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let page =
        t.db.list_broadcasts(&herald::model::ListQuery {
            search: "Cyber Monday".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = page.rows[0].id;
    assert_eq!(page.rows[0].status, herald::model::Lifecycle::Scheduled);
    let form = format!("id={id}");
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&manager), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The edit page offers it; posting it as a plain form lands on the list with a notice.
    let edit = send(&app, get(&format!("/broadcasts/{id}/edit"), Some(&staff)))
        .await
        .body;
    assert!(edit.contains("Cancel broadcast"), "{edit}");
    // Without the answer to its question, a cancel only asks it.
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&staff), true),
    )
    .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let to = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert_eq!(to, format!("/broadcasts/{id}/edit?confirm=cancel"));
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Scheduled
    );
    let question = send(&app, get(&to, Some(&staff))).await.body;
    assert!(
        question.contains("Cancel “Cyber Monday reminder”?")
            && question.contains("Nothing has been sent yet, and nothing will be."),
        "{question}"
    );
    let form = format!("id={id}&confirmed=yes");
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&staff), true),
    )
    .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let to = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with("/?notice=Cancelled"), "{to}");
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Cancelled
    );
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body.contains("cancelled broadcast cannot be cancelled"),
        "{}",
        r.body
    );
    let edit = send(&app, get(&format!("/broadcasts/{id}/edit"), Some(&staff)))
        .await
        .body;
    assert!(edit.contains("can no longer be edited") && !edit.contains("Cancel broadcast"));
    t.cleanup().await;
}

#[tokio::test]
async fn a_missed_schedule_is_shown_as_such_and_staff_can_send_it_now() {
    use herald::model::compose::{Compose, Intent};
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let channel = t.db.enabled_channels().await.unwrap()[0].id;
    let now = chrono::Utc::now();
    let two_hours_ago = now - chrono::Duration::hours(2);
    let v = Compose {
        name: "Overnight notice".into(),
        body: "We were closed".into(),
        channel_ids: vec![channel],
        scheduled_at: Some(now - chrono::Duration::hours(1)),
        ..Default::default()
    }
    .validate(Intent::Schedule, two_hours_ago)
    .unwrap();
    let id =
        t.db.create_broadcast(&v, UserId(2), "missed-key-000000001", two_hours_ago)
            .await
            .unwrap()
            .0;
    // Herald comes back an hour after the time: past the 15-minute grace.
    assert_eq!(
        t.db.fire(id, now, chrono::Duration::minutes(15))
            .await
            .unwrap(),
        herald::server::db::Fired::Missed
    );
    let list = send(&app, get("/?q=Overnight", Some(&staff))).await.body;
    assert!(list.contains("Missed — send now?"), "{list}");
    assert!(list.contains("Send now: Overnight notice"), "{list}");
    let form = format!("id={id}");
    let r = send(
        &app,
        post("/api/broadcasts/send-missed", &form, Some(&manager), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        post("/api/broadcasts/send-missed", &form, Some(&staff), true),
    )
    .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let b = t.db.broadcast(id).await.unwrap();
    assert!(b.missed_at.is_none());
    assert!(b.scheduled_at.unwrap() >= now, "due now, not an hour ago");
    // Due now: it fires (within the grace period).
    assert!(matches!(
        t.db.fire(id, chrono::Utc::now(), chrono::Duration::minutes(15))
            .await
            .unwrap(),
        herald::server::db::Fired::Started { .. }
    ));
    let r = send(
        &app,
        post("/api/broadcasts/send-missed", &form, Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    t.cleanup().await;
}

/// Picking a WhatsApp channel asks for an approved template; each parameter is mapped to a
/// customer field with a fallback or to a fixed text; what is missing is named and the
/// broadcast cannot be scheduled until it is; the preview shows the filled-in text.
#[tokio::test]
async fn the_wizard_asks_a_whatsapp_broadcast_for_an_approved_template_and_its_parameters() {
    use herald::model::template::Template;
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let wa = whatsapp_channel(&t).await;
    let graph = |name: &str, status: &str| {
        Template::from_graph(&serde_json::json!({
            "name": name, "language": "en_US", "status": status, "category": "MARKETING",
            "components": [{ "type": "BODY", "text": "Hi {{1}}, {{2}} off today" }]
        }))
        .unwrap()
    };
    t.db.replace_templates(
        wa,
        &[
            graph("spring_offer", "APPROVED"),
            graph("old_offer", "PAUSED"),
        ],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let step1 =
        "step=1&key=k0123456789abcdef0999&name=Spring&body=Hi&send_at=2099-12-24T09%3A30&go=next";
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let pick = format!("step=3&id={id}&channels_shown=1&channel={wa}&prio_{wa}=1");
    // Without a template: refused, and the step says why and offers the approved one only.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("{pick}&go=schedule"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("error=Choose%20an%20approved%20WhatsApp%20template"),
        "{}",
        location(&r)
    );
    let page = send(
        &app,
        get(&format!("/broadcasts/{id}/edit?step=3"), Some(&staff)),
    )
    .await
    .body;
    assert!(page.contains("spring_offer (en_US, marketing)"), "{page}");
    assert!(
        !page.contains("old_offer"),
        "paused templates are not offered"
    );
    // Choosing it shows its parameters; a field without a fallback is named.
    let chosen = format!("{pick}&template_shown=1&template=spring_offer%7Cen_US&go=stay");
    send(
        &app,
        post("/broadcasts/wizard", &chosen, Some(&staff), true),
    )
    .await;
    let params = format!(
        "{pick}&template_shown=1&template=spring_offer%7Cen_US&tp_src_1=first_name&tp_val_1=&tp_fb_1=&tp_src_2=text&tp_val_2=20%25&tp_fb_2="
    );
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("{params}&go=schedule"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("fallback"), "{}", location(&r));
    let page = send(
        &app,
        get(&format!("/broadcasts/{id}/edit?step=3"), Some(&staff)),
    )
    .await
    .body;
    assert!(
        page.contains("tp_src_1") && page.contains("tp_fb_2"),
        "both parameters shown"
    );
    assert!(
        page.contains("Hi Ann, 20% off today"),
        "the preview: {page}"
    );
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Draft
    );
    // With the fallback: scheduled, the choice stored.
    let full = params.replace("tp_fb_1=", "tp_fb_1=there");
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("{full}&go=schedule"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).starts_with("/?notice="), "{}", location(&r));
    let (c, status, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(status, herald::model::Lifecycle::Scheduled);
    let choice = c.template.unwrap();
    assert_eq!(
        (choice.name.as_str(), choice.params.len()),
        ("spring_offer", 2)
    );
    assert_eq!(choice.params[0].fallback, "there");
}

/// A template with an image header and a dynamic URL button: the header takes one of the
/// broadcast's images, the button's link its end; the preview shows the message as WhatsApp
/// renders it; asking for the free text inside the 24-hour window shows how many get which.
#[tokio::test]
async fn the_wizard_fills_a_template_s_header_and_buttons_and_counts_the_window() {
    use herald::model::template::Template;
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let wa = whatsapp_channel(&t).await;
    let sale = Template::from_graph(&serde_json::json!({
        "name": "sale", "language": "en", "status": "APPROVED", "category": "MARKETING",
        "components": [
            { "type": "HEADER", "format": "IMAGE" },
            { "type": "BODY", "text": "Hi {{1}}" },
            { "type": "BUTTONS", "buttons": [
                { "type": "URL", "text": "Shop", "url": "https://shop.example/s/{{1}}" } ] }
        ]
    }))
    .unwrap();
    t.db.replace_templates(wa, &[sale], chrono::Utc::now())
        .await
        .unwrap();
    // One customer WhatsApp reaches wrote to the number an hour ago.
    let on_wa =
        t.db.inspect()
            .audience_ids(
                &herald::model::audience::AudienceRule::default(),
                &[herald::model::channel::ChannelKind::Whatsapp],
            )
            .await
            .unwrap();
    assert!(on_wa.len() > 1);
    t.db.record_inbound(
        herald::model::ChannelId(wa),
        herald::model::CustomerId(on_wa[0]),
        "Is the sale on?",
        Some("wamid.in.sale"),
        chrono::Utc::now() - chrono::Duration::hours(1),
    )
    .await
    .unwrap();

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let r = send(
        &app,
        multipart_file("/attachments", "sale.png", png, &staff),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let file = v["id"].as_str().unwrap().to_string();
    let step1 = format!(
        "step=1&key=k0123456789abcdef8888&name=Sale&body=Hi&attachments_shown=1&attachment={file}&send_at=2099-12-24T09%3A30&go=next"
    );
    let r = send(&app, post("/broadcasts/wizard", &step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let pick = format!(
        "step=3&id={id}&channels_shown=1&channel={wa}&prio_{wa}=1&template_shown=1&template=sale%7Cen"
    );
    send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("{pick}&go=stay"),
            Some(&staff),
            true,
        ),
    )
    .await;
    let page = send(
        &app,
        get(&format!("/broadcasts/{id}/edit?step=3"), Some(&staff)),
    )
    .await
    .body;
    assert!(page.contains("name=\"tp_header_media\""), "{page}");
    assert!(page.contains("sale.png"), "the image is offered");
    assert!(
        page.contains("tp_src_url.0"),
        "the button's link is asked for"
    );
    assert!(
        page.contains("Choose the image for the template") && page.contains("Shop"),
        "what is missing is named: {page}"
    );
    assert!(
        page.contains(&format!(
            "all {} customers get the template (1 of them",
            on_wa.len()
        )),
        "{page}"
    );
    let full = format!(
        "{pick}&tp_header_media={file}&tp_src_1=first_name&tp_val_1=&tp_fb_1=there&tp_src_url.0=text&tp_val_url.0=spring&tp_fb_url.0=&tp_window=1"
    );
    send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("{full}&go=stay"),
            Some(&staff),
            true,
        ),
    )
    .await;
    let page = send(
        &app,
        get(&format!("/broadcasts/{id}/edit?step=3"), Some(&staff)),
    )
    .await
    .body;
    assert!(
        !page.contains("data-testid=\"template-problems\""),
        "{page}"
    );
    assert!(page.contains("[image: sale.png]"), "{page}");
    assert!(
        page.contains("[Shop → https://shop.example/s/spring]"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "1 of {} customers wrote within 24 hours and get the free text",
            on_wa.len()
        )),
        "{page}"
    );
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("{full}&go=schedule"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).starts_with("/?notice="), "{}", location(&r));
    let choice =
        t.db.broadcast_for_edit(id)
            .await
            .unwrap()
            .0
            .template
            .unwrap();
    assert_eq!(choice.header_media.as_deref(), Some(file.as_str()));
    assert!(choice.free_text_in_window);
    t.cleanup().await;
}

/// An email channel's server takes messages up to its setting (`max_message_mb`): a broadcast
/// whose files make each email larger cannot be scheduled on it, with the reason on step 3;
/// on a channel that takes it, it can.
#[tokio::test]
async fn an_email_larger_than_its_server_takes_cannot_be_scheduled() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let mut pdf = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    pdf.resize(1024 * 1024, b'0');
    let r = send(
        &app,
        multipart_file("/attachments", "menu.pdf", &pdf, &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let file: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let file = file["id"].as_str().unwrap().to_string();
    let mail = |name: &str, mb: &str| herald::server::db::NewChannel {
        kind: "email".into(),
        name: name.into(),
        config_json: serde_json::json!({
            "smtp_host": "127.0.0.1", "smtp_port": 2525, "security": "none",
            "from": "news@shop.test", "max_message_mb": mb,
        })
        .to_string(),
        rate_per_sec: 10,
    };
    let now = chrono::Utc::now();
    let small =
        t.db.insert_channel(&mail("Small mail", "1"), now)
            .await
            .unwrap();
    let big =
        t.db.insert_channel(&mail("Big mail", "10"), now)
            .await
            .unwrap();

    let step1 = format!(
        "step=1&key=k0123456789abcdef0999&name=Menu&body=Our%20menu&send_at=2099-12-24T09%3A30&attachments_shown=1&attachment={file}&go=next"
    );
    let r = send(&app, post("/broadcasts/wizard", &step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let schedule = |channel: i64| {
        format!("step=3&id={id}&channels_shown=1&channel={channel}&prio_{channel}=1&go=schedule")
    };
    // 1 MB of PDF is about 1.4 MB in base64: more than the small server takes.
    let r = send(
        &app,
        post("/broadcasts/wizard", &schedule(small), Some(&staff), true),
    )
    .await;
    let to = location(&r);
    assert!(to.contains("step=3&error="), "{to}");
    let page = send(&app, get(&to, Some(&staff))).await.body;
    assert!(
        page.contains("each email is about 2 MB")
            && page.contains("takes at most 1 MB (its setting)"),
        "{page}"
    );
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Draft
    );
    let r = send(
        &app,
        post("/broadcasts/wizard", &schedule(big), Some(&staff), true),
    )
    .await;
    assert!(location(&r).starts_with("/?notice="), "{}", location(&r));
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Scheduled
    );
    t.cleanup().await;
}

/// Step 3's fallback: on with two channels and the hours typed, it is stored and shown again;
/// with one channel, or hours that are not a number, the step says why and keeps the rest.
#[tokio::test]
async fn a_fallback_needs_two_channels_and_whole_hours() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let channels = t.db.enabled_channels().await.unwrap();
    let (a, b) = (channels[0].id, channels[1].id);
    let step1 =
        "step=1&key=k0123456789fallback0001&name=Hop&body=Hi&send_at=2099-12-24T09%3A30&go=next";
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();

    let one = format!(
        "step=3&id={id}&channels_shown=1&channel={a}&prio_{a}=1&fallback=1&fallback_hours=6&go=schedule"
    );
    let r = send(&app, post("/broadcasts/wizard", &one, Some(&staff), true)).await;
    assert!(
        location(&r).contains("error=A%20fallback%20needs%20a%20second%20channel"),
        "{}",
        location(&r)
    );
    let typo = format!(
        "step=3&id={id}&channels_shown=1&channel={a}&prio_{a}=1&channel={b}&prio_{b}=2&fallback=1&fallback_hours=six&go=stay"
    );
    let r = send(&app, post("/broadcasts/wizard", &typo, Some(&staff), true)).await;
    assert!(
        location(&r).contains("is%20not%20a%20whole%20number"),
        "{}",
        location(&r)
    );
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(c.channel_ids, vec![a, b], "the picked channels were kept");

    let two = format!(
        "step=3&id={id}&channels_shown=1&channel={a}&prio_{a}=1&channel={b}&prio_{b}=2&fallback=1&fallback_hours=6&go=stay"
    );
    let r = send(&app, post("/broadcasts/wizard", &two, Some(&staff), true)).await;
    let page = send(&app, get(&location(&r), Some(&staff))).await.body;
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(c.timing.fallback_hours, Some(6));
    assert!(
        page.contains(r#"id="fallback_hours""#) && page.contains(r#"value="6""#),
        "{page}"
    );
    // Unticked, it is off again.
    let off = format!(
        "step=3&id={id}&channels_shown=1&channel={a}&prio_{a}=1&channel={b}&prio_{b}=2&go=stay"
    );
    send(&app, post("/broadcasts/wizard", &off, Some(&staff), true)).await;
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(c.timing.fallback_hours, None);
    t.cleanup().await;
}

/// An A/B test from the wizard's forms: variant B is added as a copy of A and edited on its
/// own tab, carries its own WhatsApp template, and a variant without one keeps the broadcast
/// from being scheduled, named and shown.
#[tokio::test]
async fn a_variant_has_its_own_message_and_template_and_is_checked_before_it_goes() {
    use herald::model::template::Template;
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let wa = whatsapp_channel(&t).await;
    let graph = |name: &str, text: &str| {
        Template::from_graph(&serde_json::json!({
            "name": name, "language": "en_US", "status": "APPROVED", "category": "MARKETING",
            "components": [{ "type": "BODY", "text": text }]
        }))
        .unwrap()
    };
    let templates = [
        graph("spring_offer", "Spring is here"),
        graph("winter_offer", "Winter is here"),
    ];
    t.db.replace_templates(wa, &templates, chrono::Utc::now())
        .await
        .unwrap();
    let step1 = "step=1&key=k0123456789abcdef0ab1&name=Which&body=Hi%20A&send_at=2099-12-24T09%3A30&go=next";
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let add = format!("step=1&id={id}&variant=0&body=Hi%20A&go=add_variant");
    let r = send(&app, post("/broadcasts/wizard", &add, Some(&staff), true)).await;
    assert_eq!(
        location(&r),
        format!("/broadcasts/{id}/edit?step=1&variant=1")
    );
    let page = send(&app, get(&location(&r), Some(&staff))).await.body;
    assert!(page.contains("Variant B: its own text and files"), "{page}");
    let edit_b = format!(
        "step=1&id={id}&variant=1&body=Hi%20B&ab_shown=1&ab_split=test&ab_share=30&ab_measure=reply&ab_wait=6&go=next"
    );
    let r = send(
        &app,
        post("/broadcasts/wizard", &edit_b, Some(&staff), true),
    )
    .await;
    assert_eq!(location(&r), format!("/broadcasts/{id}/edit?step=2"));
    let pick = format!("step=3&id={id}&channels_shown=1&channel={wa}&prio_{wa}=1&template_shown=1");
    // A's template chosen, B's not: refused, naming B and showing its tab.
    let a = format!("{pick}&variant=0&template=spring_offer%7Cen_US&go=schedule");
    let r = send(&app, post("/broadcasts/wizard", &a, Some(&staff), true)).await;
    let to = location(&r);
    assert!(
        to.contains("step=3") && to.contains("Variant%20B") && to.ends_with("variant=1"),
        "{to}"
    );
    let b = format!("{pick}&variant=1&template=winter_offer%7Cen_US&go=stay");
    send(&app, post("/broadcasts/wizard", &b, Some(&staff), true)).await;
    let page = send(
        &app,
        get(
            &format!("/broadcasts/{id}/edit?step=3&variant=1"),
            Some(&staff),
        ),
    )
    .await
    .body;
    assert!(
        page.contains("WhatsApp message template of variant B"),
        "{page}"
    );
    assert!(
        page.contains("Winter is here"),
        "B's template shown: {page}"
    );
    let r = send(&app, post("/broadcasts/wizard", &a, Some(&staff), true)).await;
    assert!(location(&r).starts_with("/?notice="), "{}", location(&r));
    let (c, status, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(status, herald::model::Lifecycle::Scheduled);
    assert_eq!(
        (c.body.as_str(), c.template.unwrap().name.as_str()),
        ("Hi A", "spring_offer")
    );
    let plan = c.ab.unwrap();
    assert_eq!(plan.variants.len(), 1);
    assert_eq!(plan.variants[0].body, "Hi B");
    assert_eq!(
        plan.variants[0].template.as_ref().unwrap().name,
        "winter_offer"
    );
    assert_eq!(
        (plan.test_share, plan.measure, plan.wait_hours),
        (Some(30), herald::model::ab::Measure::Reply, 6)
    );
    // A wait longer than the broadcast lives is refused with the reason.
    let expire = format!(
        "step=1&id={id}&variant=0&body=Hi%20A&timing_shown=1&send_mode=moment&send_at=2099-12-24T09%3A30&expire_hours=5&go=schedule"
    );
    let r = send(
        &app,
        post("/broadcasts/wizard", &expire, Some(&staff), true),
    )
    .await;
    assert!(location(&r).contains("expires"), "{}", location(&r));
    t.cleanup().await;
}
