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

    // Settings written in clear by an older Herald read as they are, until sealed.
    db.inspect()
        .execute(&format!(
            r#"UPDATE channels SET config = '{{"bot_token":"2:OLD"}}' WHERE id = {id}"#
        ))
        .await
        .unwrap();
    assert!(
        db.channel(id)
            .await
            .unwrap()
            .unwrap()
            .config
            .contains("2:OLD")
    );
    assert_eq!(db.seal_stored_channels().await.unwrap(), 1);
    assert!(!raw().await.contains("2:OLD"));
    assert_eq!(db.seal_stored_channels().await.unwrap(), 0, "sealed once");
    let all = db.channels().await.unwrap();
    assert!(all.iter().any(|c| c.id == id && c.config.contains("2:OLD")));

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

on_both_backends!(channel_settings_are_sealed_at_rest_and_old_clear_ones_get_sealed);
