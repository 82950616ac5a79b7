//! Customer CSV import on SQLite and PostgreSQL: all or nothing, skipping bad lines, matching on
//! phone or email (re-imports create nothing), and an export → import round trip.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use chrono::{TimeZone, Utc};
use herald::model::import::Mapping;
use herald::model::{CustomerAnchor, CustomerQuery};
use herald::server::customers::export::customers_csv_bytes;
use herald::server::customers::import::{self, Failure, Outcome, Progress};
use herald::server::db::Db;
use herald::server::seed;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn everyone() -> CustomerQuery {
    CustomerQuery {
        search: String::new(),
        tag: None,
        anchor: CustomerAnchor::First,
    }
}

/// Writes `text` to a file that lives as long as the returned guard.
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.csv");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

async fn import(db: &Db, path: &PathBuf, skip_bad: bool) -> Result<Outcome, Failure> {
    let text = std::fs::read(path).unwrap();
    let headers = import::read_header(&text[..]).unwrap();
    let mapping =
        Mapping::from_header(&headers.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let progress = Arc::new(Progress::default());
    let result = import::run(db, path, mapping, skip_bad, progress.clone(), now()).await;
    if result.is_ok() {
        assert_eq!(progress.bytes_done.load(Relaxed), text.len() as u64);
    }
    result
}

/// A customer found by an exact phone number: (name, email, tags, groups, assignee email, zone).
async fn by_phone(
    db: &Db,
    phone: &str,
) -> Option<(
    String,
    Option<String>,
    Vec<String>,
    Vec<String>,
    Option<String>,
    String,
    bool,
)> {
    let q = CustomerQuery {
        search: phone.into(),
        ..everyone()
    };
    let page = db.list_customers(&q).await.unwrap();
    let r = page
        .rows
        .into_iter()
        .find(|r| r.phone.as_deref() == Some(phone))?;
    let (_, tags, groups) = db.customer_for_edit(r.id).await.unwrap();
    Some((
        r.name,
        r.email,
        tags,
        groups,
        r.assignee_email,
        r.time_zone,
        r.opted_out,
    ))
}

const MIXED: &str = "\u{feff}Full Name,Mobile,E-mail,Tags,Groups,Assignee,TZ,Notes,Opted out\n\
    \"Quinn, Q.\",+44 20 7946 0001,quinn@example.org,\"Imported;VIP\",Imported group,staff@herald.test,Europe/London,\"likes, commas\",\n\
    Replaced Name,+15551000000,,Imported,,,,,yes\n\
    Bad Phone,12345,,Imported,,,,,\n\
    \"Multi\nLine\",,multi@example.org,Imported,,,,\"note\non two lines\",no\n\
    Ghost Owner,+44 20 7946 0002,,,,ghost@herald.test,,,\n\
    Wrong Zone,+44 20 7946 0003,,,,,Mars/Base,,\n";

async fn bad_lines_abort_the_whole_import(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let before = db.count_customers().await.unwrap();
    let first = by_phone(db, "+15551000000").await.unwrap();
    let (_dir, path) = file(MIXED);
    let Err(Failure::Lines { count, errors }) = import(db, &path, false).await else {
        panic!("an import with bad lines must fail when not skipping them");
    };
    assert_eq!(count, 3);
    let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![4, 8, 9], "{errors:?}");
    assert!(errors[0].message.contains("not a phone number"));
    assert!(errors[1].message.contains("unknown assignee"));
    assert!(errors[2].message.contains("not a time zone"));
    // Nothing changed: no customer, no tag, no group, no edit.
    assert_eq!(db.count_customers().await.unwrap(), before);
    assert!(!db.tag_names().await.unwrap().contains(&"Imported".into()));
    assert!(
        !db.robot_group_names()
            .await
            .unwrap()
            .contains(&"Imported group".into())
    );
    assert_eq!(by_phone(db, "+15551000000").await.unwrap(), first);
    assert!(by_phone(db, "+442079460001").await.is_none());
}

async fn skipping_bad_lines_imports_the_rest_and_reimporting_changes_nothing(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let before = db.count_customers().await.unwrap();
    let first = by_phone(db, "+15551000000").await.unwrap();
    let (_dir, path) = file(MIXED);
    let o = import(db, &path, true).await.unwrap();
    assert_eq!((o.created, o.updated, o.skipped), (2, 1, 3), "{o:?}");
    assert_eq!(
        o.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![4, 8, 9]
    );
    assert_eq!(db.count_customers().await.unwrap(), before + 2);
    let quinn = by_phone(db, "+442079460001").await.unwrap();
    assert_eq!(quinn.0, "Quinn, Q.");
    assert_eq!(quinn.1.as_deref(), Some("quinn@example.org"));
    assert_eq!(quinn.2, vec!["Imported", "VIP"]);
    assert_eq!(quinn.3, vec!["Imported group"]);
    assert_eq!(quinn.4.as_deref(), Some("staff@herald.test"));
    assert_eq!(quinn.5, "Europe/London");
    assert!(!quinn.6);
    // Matched by phone: the name is replaced, empty cells keep what was there, the tag is
    // added to the ones it had, and the opt-out is set.
    let replaced = by_phone(db, "+15551000000").await.unwrap();
    assert_eq!(replaced.0, "Replaced Name");
    assert_eq!(replaced.1, first.1);
    assert!(replaced.2.contains(&"Imported".to_string()));
    assert!(first.2.iter().all(|t| replaced.2.contains(t)));
    assert_eq!(replaced.4, first.4);
    assert_eq!(replaced.5, first.5);
    assert!(replaced.6);
    let tagged = db
        .inspect()
        .count_customers_tagged("Imported")
        .await
        .unwrap();
    assert_eq!(tagged, 3);

    // The same file again: everything matches, nothing new.
    let again = import(db, &path, true).await.unwrap();
    assert_eq!((again.created, again.updated, again.skipped), (0, 3, 3));
    assert_eq!(db.count_customers().await.unwrap(), before + 2);
    assert_eq!(
        db.inspect()
            .count_customers_tagged("Imported")
            .await
            .unwrap(),
        tagged
    );
}

async fn rows_match_on_phone_or_email_and_conflicts_are_reported(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let before = db.count_customers().await.unwrap();
    let a = by_phone(db, "+15551000000").await.unwrap();
    let a_email = a.1.clone().expect("demo customer 0 has an email");
    // Customer 1's phone with customer 0's email: which one is meant?
    let text = format!(
        "name,phone,email\n\
         Twice,+15550009999,twice@example.org\n\
         Twice Again,+15550009999,\n\
         By Email,,{a_email}\n\
         Torn,+15551000001,{a_email}\n"
    );
    let (_dir, path) = file(&text);
    let o = import(db, &path, true).await.unwrap();
    assert_eq!((o.created, o.updated, o.skipped), (1, 2, 1), "{o:?}");
    assert_eq!(o.errors[0].line, 5);
    assert!(o.errors[0].message.contains("another"), "{:?}", o.errors);
    assert_eq!(db.count_customers().await.unwrap(), before + 1);
    // The second line updated the customer the first one created.
    let twice = by_phone(db, "+15550009999").await.unwrap();
    assert_eq!(twice.0, "Twice Again");
    assert_eq!(twice.1.as_deref(), Some("twice@example.org"));
    assert_eq!(by_phone(db, "+15551000000").await.unwrap().0, "By Email");
}

async fn export_then_import_is_a_round_trip(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let before = db.count_customers().await.unwrap();
    let exported = customers_csv_bytes(db, everyone()).await.unwrap();
    let (_dir, path) = file(std::str::from_utf8(&exported).unwrap());
    let o = import(db, &path, false).await.unwrap();
    assert_eq!(o.created, 0);
    assert_eq!(o.updated as i64, before);
    assert_eq!(o.skipped, 0);
    assert_eq!(db.count_customers().await.unwrap(), before);
    let again = customers_csv_bytes(db, everyone()).await.unwrap();
    assert!(
        exported == again,
        "exporting after re-importing the export gives the same file"
    );
}

/// A marketing opt-in column: kinds by name, or yes for every address in the row; recorded as
/// consent from the import (and in the history); a bad value is the line's error and nothing
/// of the file is stored.
async fn an_opt_in_column_records_consent_from_the_import(db: &Db) {
    use herald::model::consent::{Purpose, Source};
    seed::load(db, now()).await.unwrap();
    let bad = "name,phone,email,whatsapp,opt_in\nAda,+442079460101,,,fax\n";
    let (_dir, path) = file(bad);
    let Err(Failure::Lines { errors, .. }) = import(db, &path, false).await else {
        panic!("a bad opt-in is a bad line");
    };
    assert!(errors[0].message.contains("marketing opt-in"), "{errors:?}");
    let good = "name,phone,email,whatsapp,opt_in\n\
                Ada,+442079460101,,442079460101,\"whatsapp, text\"\n\
                Bo,+442079460102,bo@example.com,,yes\n\
                Cy,+442079460103,,,\n";
    let (_dir, path) = file(good);
    import(db, &path, false).await.unwrap();
    let kinds = |phone: &'static str| async move {
        let sql = format!("SELECT id FROM customers WHERE phone = '{phone}'");
        let id = db.inspect().numbers(&sql).await.unwrap()[0];
        let words = db.consents_of(id).await.unwrap();
        assert!(
            words
                .iter()
                .all(|w| w.1 == Purpose::Marketing && w.2 && w.3 == Source::Import)
        );
        words.into_iter().map(|w| w.0).collect::<Vec<_>>()
    };
    assert_eq!(kinds("+442079460101").await, vec!["sms", "whatsapp"]);
    assert_eq!(kinds("+442079460102").await, vec!["email", "sms"]);
    assert!(kinds("+442079460103").await.is_empty());
    let history = db
        .inspect()
        .numbers("SELECT COUNT(*) FROM consent_changes WHERE source = 'import'")
        .await
        .unwrap();
    assert_eq!(history, vec![4]);
}

on_both_backends!(
    an_opt_in_column_records_consent_from_the_import,
    bad_lines_abort_the_whole_import,
    skipping_bad_lines_imports_the_rest_and_reimporting_changes_nothing,
    rows_match_on_phone_or_email_and_conflicts_are_reported,
    export_then_import_is_a_round_trip,
);
