//! Channel settings at rest, on SQLite and PostgreSQL: sealed when stored, opened when read,
//! settings stored in clear before sealing existed are sealed by startup's sweep, and a
//! database read with another key refuses rather than returning garbage.

use herald::server::db::secrets::Sealer;
use herald::server::db::{Db, DbError, NewChannel};

async fn channel_settings_are_sealed_at_rest_and_old_clear_ones_get_sealed(db: &Db) {
    let now = chrono::Utc::now();
    let id = db
        .insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Sealed bot".into(),
                config_json: r#"{"bot_token":"1:IN-CLEAR","base_url":"https://api.telegram.org"}"#
                    .into(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let raw = || async {
        db.inspect()
            .stored_channel_config(id)
            .await
            .unwrap()
            .unwrap()
    };
    let stored = raw().await;
    assert!(
        Sealer::is_sealed(&stored) && !stored.contains("IN-CLEAR") && !stored.contains("telegram"),
        "{stored}"
    );
    let read = db.channel(id).await.unwrap().unwrap();
    assert!(read.config.contains("1:IN-CLEAR"), "{}", read.config);

    // Settings written in clear (by an older Herald, or around Herald) are refused until
    // startup's sweep seals them.
    db.inspect()
        .execute(&format!(
            r#"UPDATE channels SET config = '{{"bot_token":"2:OLD"}}' WHERE id = {id}"#
        ))
        .await
        .unwrap();
    assert!(matches!(db.channel(id).await, Err(DbError::Sealed(_))));
    assert_eq!(db.seal_stored_channels().await.unwrap(), 1);
    assert!(!raw().await.contains("2:OLD"));
    assert_eq!(db.seal_stored_channels().await.unwrap(), 0, "sealed once");
    let all = db.channels().await.unwrap();
    assert!(all.iter().any(|c| c.id == id && c.config.contains("2:OLD")));

    // A sealed value copied onto another channel does not open there.
    let other = db
        .insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Other bot".into(),
                config_json: r#"{"bot_token":"3:OTHER"}"#.into(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let copied = raw().await;
    db.inspect()
        .execute(&format!(
            "UPDATE channels SET config = '{copied}' WHERE id = {other}"
        ))
        .await
        .unwrap();
    assert!(matches!(db.channel(other).await, Err(DbError::Sealed(_))));
    db.inspect()
        .execute(&format!(
            "UPDATE channels SET kind = 'webhook' WHERE id = {id}"
        ))
        .await
        .unwrap();
    assert!(
        matches!(db.channel(id).await, Err(DbError::Sealed(_))),
        "bound to its kind too"
    );
    db.inspect()
        .execute(&format!(
            "UPDATE channels SET kind = 'telegram' WHERE id = {id}"
        ))
        .await
        .unwrap();

    // Another key cannot open them, and says so.
    let stranger = db.clone().with_sealer(Sealer::ephemeral());
    assert!(matches!(
        stranger.channel(id).await,
        Err(DbError::Sealed(_))
    ));
    assert!(matches!(
        stranger.channel_kind_and_config(id).await,
        Err(DbError::Sealed(_))
    ));
}

/// The key that signs unsubscribe links is sealed too: a database dump cannot forge them.
/// One kept in clear by an older Herald is used as it is and sealed at once.
async fn server_keys_are_sealed_and_old_clear_ones_get_sealed(db: &Db) {
    let key = db
        .server_key("unsubscribe", "fresh-key-value")
        .await
        .unwrap();
    assert_eq!(key, "fresh-key-value");
    let stored = stored_server_key(db, "unsubscribe").await;
    assert!(
        Sealer::is_sealed(&stored) && !stored.contains("fresh-key-value"),
        "{stored}"
    );
    assert_eq!(
        db.server_key("unsubscribe", "another").await.unwrap(),
        "fresh-key-value"
    );
    db.inspect()
        .execute("INSERT INTO server_keys (name, value) VALUES ('old', 'kept-in-clear')")
        .await
        .unwrap();
    assert_eq!(
        db.server_key("old", "unused").await.unwrap(),
        "kept-in-clear"
    );
    let stored = stored_server_key(db, "old").await;
    assert!(
        Sealer::is_sealed(&stored) && !stored.contains("kept-in-clear"),
        "{stored}"
    );
    let stranger = db.clone().with_sealer(Sealer::ephemeral());
    assert!(stranger.server_key("unsubscribe", "x").await.is_err());
}

async fn stored_server_key(db: &Db, name: &str) -> String {
    db.inspect().server_key_as_stored(name).await.unwrap()
}

on_both_backends!(
    channel_settings_are_sealed_at_rest_and_old_clear_ones_get_sealed,
    server_keys_are_sealed_and_old_clear_ones_get_sealed
);
