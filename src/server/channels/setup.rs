//! The channels page on the server (admins only): what it shows, with every secret masked, and
//! what its form (`POST /channels`) does: connect, change, enable/disable or test a channel.

use crate::model::AppError;
use crate::model::ChannelId;
use crate::model::channel::{ChannelKind, ChannelView, ChannelsPage, mask};
use crate::model::compose::Compose;
use crate::model::{CurrentUser, Role};
use crate::server::AppState;
use crate::server::broadcast::test_send;
use crate::server::db::{AuditEntry, ChannelRecord, NewChannel};

/// Settings as stored: a JSON object of strings (the sandbox's also holds numbers).
fn settings(config: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(config).unwrap_or_default()
}

fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// How the page shows a stored channel: secrets masked, nothing else of them.
pub fn view(r: &ChannelRecord, base_url: &str) -> Option<ChannelView> {
    let id = r.id;
    let kind = ChannelKind::parse(&r.kind)?;
    let stored = settings(&r.config);
    Some(ChannelView {
        id,
        kind,
        name: r.name.clone(),
        enabled: r.enabled,
        rate_per_sec: r.rate_per_sec,
        settings: kind
            .fields()
            .iter()
            .map(|f| {
                let v = text(stored.get(f.key));
                let shown = if f.secret { mask(&v) } else { v };
                (f.key.to_string(), f.label.to_string(), shown, f.secret)
            })
            .collect(),
        webhook_url: kind
            .has_inbound_webhook()
            .then(|| format!("{base_url}/webhooks/{}/{id}", kind.as_str())),
        templates: Vec::new(),
        connection: None,
    })
}

/// The channels page's data for `user` (admins only).
pub async fn page(
    state: &AppState,
    user: &CurrentUser,
    base_url: &str,
) -> Result<ChannelsPage, AppError> {
    if user.role != Role::Admin {
        return Ok(ChannelsPage {
            channels: Vec::new(),
            can_manage: false,
        });
    }
    let mut channels: Vec<ChannelView> = state
        .db
        .channels()
        .await?
        .iter()
        .filter_map(|r| view(r, base_url))
        .collect();
    for c in &mut channels {
        if c.kind == ChannelKind::Whatsapp {
            c.templates = state.db.templates(c.id).await?;
        }
        c.connection = super::connection::status(state, c).await;
    }
    Ok(ChannelsPage {
        channels,
        can_manage: true,
    })
}

/// The settings JSON after a form: each of the kind's fields as posted (`<prefix><key>`); a
/// secret left empty keeps what was stored, another empty field takes its default. Returns
/// the JSON and the names of the fields that changed (for the audit log: names, not values).
fn merge(
    kind: ChannelKind,
    stored: &str,
    posted: &[(String, String)],
    prefix: &str,
) -> Result<(String, Vec<&'static str>), String> {
    let mut out = settings(stored);
    let mut changed = Vec::new();
    // Where a connected channel sends, if this form moves it, and the secrets not typed.
    let (mut moved, mut kept_secrets) = (Vec::new(), Vec::new());
    for f in kind.fields() {
        let key = format!("{prefix}{}", f.key);
        let value = posted
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let before = text(out.get(f.key));
        if f.secret && value.is_empty() {
            kept_secrets.push(f.label);
        }
        let after = match (value.is_empty(), f.secret) {
            (true, true) => before.clone(),
            (true, false) => f.default.to_string(),
            (false, _) => value,
        };
        if after.chars().count() > 2000 {
            return Err(format!("{} is too long.", f.label));
        }
        if !after.is_empty() {
            f.shape
                .check(&after)
                .map_err(|why| format!("Nothing was saved: “{}” takes {why}.", f.label))?;
        }
        if after != before {
            changed.push(f.key);
            if f.endpoint && !before.is_empty() {
                moved.push(f.label);
            }
        }
        out.insert(f.key.to_string(), serde_json::Value::String(after));
    }
    if let Some(missing) = kind
        .fields()
        .iter()
        .find(|f| text(out.get(f.key)).is_empty())
    {
        return Err(format!("Fill in “{}”.", missing.label));
    }
    // Moving a connected channel's endpoint (API base URL, webhook URL, SMTP host or port)
    // needs every secret typed again in the same form: otherwise a session that is not the
    // operator's (or a forged request) could send the stored credentials to any host.
    if !moved.is_empty() && !kept_secrets.is_empty() {
        return Err(format!(
            "Nothing was saved: you changed where this channel sends ({}), so enter its secrets again: {}.",
            moved.join(", "),
            kept_secrets.join(", ")
        ));
    }
    if kind == ChannelKind::Sandbox && !out.contains_key("inbound_token") {
        // Authenticates the sandbox's inbound webhook (X-Herald-Token).
        out.insert(
            "inbound_token".into(),
            serde_json::Value::String(crate::server::accounts::auth::new_session_token()),
        );
    }
    Ok((serde_json::Value::Object(out).to_string(), changed))
}

fn rate(posted: Option<&str>, kind: ChannelKind) -> Result<i64, String> {
    match posted.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(kind.default_rate()),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=100_000).contains(&n) => Ok(n),
            _ => Err("The rate must be a whole number of messages a second, 1 to 100,000.".into()),
        },
    }
}

/// What the channels page's form asks for (its `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelAction {
    Create,
    Update,
    Toggle,
    Test,
    /// Read a WhatsApp channel's templates again.
    Sync,
}

impl ChannelAction {
    pub fn parse(s: &str) -> Option<ChannelAction> {
        Some(match s {
            "create" => ChannelAction::Create,
            "update" => ChannelAction::Update,
            "toggle" => ChannelAction::Toggle,
            "test" => ChannelAction::Test,
            "sync" => ChannelAction::Sync,
            _ => return None,
        })
    }
}

/// Does what the channels form `posted` asks (an admin's request): connect, change,
/// enable/disable or test a channel. The notice to show, or why nothing changed.
pub async fn apply(
    state: &AppState,
    user: &CurrentUser,
    posted: &[(String, String)],
) -> Result<String, String> {
    let get = |k: &str| posted.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let id = get("id").and_then(|v| v.parse::<i64>().ok());
    match (get("action").and_then(ChannelAction::parse), id) {
        (Some(ChannelAction::Create), _) => connect(state, user, posted).await,
        (Some(action @ (ChannelAction::Update | ChannelAction::Toggle)), Some(id)) => {
            change(state, user, id, action, posted).await
        }
        (Some(ChannelAction::Test), Some(id)) => {
            test(state, user, id, get("test_to").unwrap_or("")).await
        }
        (Some(ChannelAction::Sync), Some(id)) => {
            let ChannelRecord { name, .. } = stored(state, id).await?;
            let n = sync_templates(state, id).await?;
            Ok(format!("Read {n} templates of “{name}” from WhatsApp."))
        }
        _ => Err("The request was not understood.".into()),
    }
}

/// The first posted value of `key`.
fn field<'a>(posted: &'a [(String, String)], key: &str) -> Option<&'a str> {
    posted
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.as_str())
}

/// A channel's name as posted, checked.
fn posted_name(posted: &[(String, String)]) -> Result<String, String> {
    let name = field(posted, "name").unwrap_or("").trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("Enter a name of up to 100 characters.".into());
    }
    Ok(name)
}

/// Connects a new channel from the connect form.
async fn connect(
    state: &AppState,
    user: &CurrentUser,
    posted: &[(String, String)],
) -> Result<String, String> {
    let kind = field(posted, "kind")
        .and_then(ChannelKind::parse)
        .ok_or("Choose the kind of channel.")?;
    let name = posted_name(posted)?;
    let rate = rate(field(posted, "rate"), kind)?;
    // The connect form names each kind's fields apart (several kinds have a base URL).
    let (config, _) = merge(kind, "{}", posted, &format!("cfg_{}_", kind.as_str()))?;
    let new = NewChannel {
        kind: kind.as_str().into(),
        name: name.clone(),
        config_json: config,
        rate_per_sec: rate,
    };
    let audit = AuditEntry::new(state.clock.now(), Some(user.id), "channel", "channel", None)
        .detail(format!("connected {} {name}", kind.as_str()));
    let id = state.db.connect_channel(&new, &audit).await.map_err(|e| {
        tracing::warn!(error = ?e, "connecting a channel failed");
        "Nothing was saved: is that name taken already?".to_string()
    })?;
    Ok(format!(
        "Connected “{name}”.{}{}",
        synced(state, kind, id).await,
        super::connection::after_save(state, kind, id).await
    ))
}

/// The stored channel `id`, or why not.
async fn stored(state: &AppState, id: i64) -> Result<ChannelRecord, String> {
    match state.db.channel(id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err("That channel no longer exists.".into()),
        Err(_) => Err("The channel could not be read.".into()),
    }
}

/// Saves a changed channel, or enables/disables it; the dispatcher and the webhooks forget
/// what they cached of it.
async fn change(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    action: ChannelAction,
    posted: &[(String, String)],
) -> Result<String, String> {
    let ChannelRecord {
        kind,
        name: old_name,
        config,
        enabled,
        rate_per_sec: old_rate,
        ..
    } = stored(state, id).await?;
    let kind = ChannelKind::parse(&kind).ok_or("Unknown channel kind.")?;
    let (name, config, enabled, rate, what) = if action == ChannelAction::Toggle {
        let what = if enabled { "disabled" } else { "enabled" };
        (old_name, config, !enabled, old_rate, what.to_string())
    } else {
        let name = posted_name(posted)?;
        let rate = rate(field(posted, "rate"), kind)?;
        let (config, changed) = merge(kind, &config, posted, "cfg_")?;
        let what = format!("changed {}", changed.join(", "));
        (name, config, enabled, rate, what)
    };
    let now = state.clock.now();
    state
        .db
        .update_channel(
            ChannelId(id),
            &name,
            &config,
            enabled,
            rate,
            user.id,
            &what,
            now,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = ?e, "changing a channel failed");
            "Nothing was saved: is that name taken already?".to_string()
        })?;
    // This process forgets at once; every instance (this one again) hears of it.
    state.dispatcher.forget_channels();
    state.ingest.forget_channels();
    state.db.announce_channel(id).await;
    if !enabled {
        pause_broadcasts_on(state, id, &name).await;
    }
    Ok(match action {
        ChannelAction::Toggle if enabled => format!("Enabled “{name}”."),
        ChannelAction::Toggle => format!("Disabled “{name}”: broadcasts no longer offer it."),
        _ => format!(
            "Saved “{name}”.{}{}",
            synced(state, kind, id).await,
            super::connection::after_save(state, kind, id).await
        ),
    })
}

/// A disabled channel sends nothing more: the broadcasts scheduled or sending on it pause,
/// saying why, here at once and on every instance within their next look.
async fn pause_broadcasts_on(state: &AppState, channel: i64, name: &str) {
    let reason = format!(
        "Paused by Herald: the channel “{name}” was disabled. Enable it, or copy the broadcast without it, then resume."
    );
    let now = state.clock.now();
    match state.db.broadcasts_on_channel(channel).await {
        Ok(ids) => {
            for b in ids {
                state.dispatcher.halt(b.0);
                if let Err(e) = state.db.pause_for_provider(b, &reason, now).await {
                    tracing::warn!(error = ?e, broadcast = b.0, "pausing a broadcast failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = ?e, "reading the broadcasts on a channel failed"),
    }
}

/// After connecting or saving: a WhatsApp channel with its business account reads its
/// templates, and the notice says how that went.
async fn synced(state: &AppState, kind: ChannelKind, id: i64) -> String {
    if kind != ChannelKind::Whatsapp {
        return String::new();
    }
    let Ok(Some(c)) = state.db.channel(id).await else {
        return String::new();
    };
    let has_account = serde_json::from_str::<super::whatsapp::Settings>(&c.config)
        .is_ok_and(|s| !s.waba_id.trim().is_empty());
    if !has_account {
        return " Enter its WhatsApp Business Account ID to use message templates.".into();
    }
    match sync_templates(state, id).await {
        Ok(n) => format!(" Read {n} message templates."),
        Err(why) => format!(" Its templates could not be read: {why}"),
    }
}

/// A test message on channel `id` to the customer `to` names.
/// Reads WhatsApp channel `id`'s templates from its business account and keeps them; how
/// many there are, or why they could not be read (nothing kept is changed then).
pub async fn sync_templates(state: &AppState, id: i64) -> Result<usize, String> {
    let record = stored(state, id).await?;
    if ChannelKind::parse(&record.kind) != Some(ChannelKind::Whatsapp) {
        return Err("Only WhatsApp channels have message templates.".into());
    }
    let settings: super::whatsapp::Settings =
        serde_json::from_str(&record.config).unwrap_or_default();
    let allow_private = state.config.allow_private_endpoints;
    super::endpoint::check_url(&settings.base_url, allow_private)?;
    let wa = super::whatsapp::WhatsApp::new(
        settings,
        super::endpoint::client(allow_private),
        // Checking a connection reads no file.
        crate::server::files::Files::local(std::path::Path::new("data")),
    );
    let templates = wa.templates().await?;
    state
        .db
        .replace_templates(id, &templates, state.clock.now())
        .await
        .map_err(|e| {
            tracing::warn!(error = ?e, "keeping templates failed");
            "The templates were read but could not be kept; try again.".to_string()
        })?;
    Ok(templates.len())
}

/// Syncs every enabled WhatsApp channel's templates (the hourly task); failures are logged.
pub async fn sync_all_templates(state: &AppState) {
    let Ok(channels) = state.db.channels().await else {
        return;
    };
    for c in channels {
        if c.enabled && ChannelKind::parse(&c.kind) == Some(ChannelKind::Whatsapp) {
            let has_account = serde_json::from_str::<super::whatsapp::Settings>(&c.config)
                .is_ok_and(|s| !s.waba_id.trim().is_empty());
            if has_account && let Err(why) = sync_templates(state, c.id).await {
                tracing::warn!(channel = c.id, %why, "syncing WhatsApp templates failed");
            }
        }
    }
}

async fn test(state: &AppState, user: &CurrentUser, id: i64, to: &str) -> Result<String, String> {
    let ChannelRecord { name, enabled, .. } = stored(state, id).await?;
    if !enabled {
        return Err(format!("“{name}” is disabled: enable it to send a test."));
    }
    let compose = Compose {
        name: "Channel test".into(),
        body: "Test message from Herald ✔ (sent from the channels page)".into(),
        channel_ids: vec![id],
        ..Default::default()
    };
    let who = test_send::Who::Typed(to.to_string());
    test_send::test_send(state, user, None, &compose, who).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_secrets_keep_what_is_stored_and_defaults_fill_the_rest() {
        let (json, changed) = merge(
            ChannelKind::Telegram,
            "{}",
            &form(&[("cfg_bot_token", "123:abc"), ("cfg_webhook_secret", "s3")]),
            "cfg_",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["bot_token"], "123:abc");
        assert_eq!(v["base_url"], "https://api.telegram.org");
        assert_eq!(changed, vec!["bot_token", "webhook_secret", "base_url"]);
        let (json, changed) = merge(
            ChannelKind::Telegram,
            &json,
            &form(&[("cfg_bot_token", "")]),
            "cfg_",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["bot_token"], "123:abc", "an empty secret field keeps it");
        assert!(changed.is_empty());
        let e = merge(ChannelKind::Telegram, "{}", &form(&[]), "cfg_").unwrap_err();
        assert!(e.contains("Bot token"), "{e}");
    }

    #[test]
    fn moving_the_endpoint_needs_every_secret_typed_again() {
        let (json, _) = merge(
            ChannelKind::Telegram,
            "{}",
            &form(&[("cfg_bot_token", "123:abc"), ("cfg_webhook_secret", "s3")]),
            "cfg_",
        )
        .unwrap();
        let elsewhere = ("cfg_base_url", "https://evil.example");
        let e = merge(ChannelKind::Telegram, &json, &form(&[elsewhere]), "cfg_").unwrap_err();
        assert!(
            e.contains("API base URL") && e.contains("Bot token") && e.contains("Webhook secret"),
            "{e}"
        );
        let e = merge(
            ChannelKind::Telegram,
            &json,
            &form(&[elsewhere, ("cfg_bot_token", "123:abc")]),
            "cfg_",
        )
        .unwrap_err();
        assert!(
            !e.contains("Bot token") && e.contains("Webhook secret"),
            "{e}"
        );
        let (moved, changed) = merge(
            ChannelKind::Telegram,
            &json,
            &form(&[
                elsewhere,
                ("cfg_bot_token", "123:abc"),
                ("cfg_webhook_secret", "s3"),
            ]),
            "cfg_",
        )
        .unwrap();
        assert_eq!(changed, vec!["base_url"]);
        assert!(moved.contains("evil.example"));
        // Other fields change freely, and posting the same endpoint is no move.
        let same = ("cfg_base_url", "https://api.telegram.org");
        merge(ChannelKind::Telegram, &json, &form(&[same]), "cfg_").unwrap();
        let (_, changed) = merge(
            ChannelKind::Email,
            r#"{"smtp_host":"smtp.example.com","smtp_port":"587","username":"u","password":"p","from":"a@example.com","security":"starttls","max_message_mb":"25"}"#,
            &form(&[("cfg_smtp_host", "smtp.example.com"), ("cfg_username", "v"), ("cfg_from", "a@example.com")]),
            "cfg_",
        )
        .unwrap();
        assert_eq!(changed, vec!["username"]);
        let e = merge(
            ChannelKind::Email,
            r#"{"smtp_host":"smtp.example.com","smtp_port":"587","username":"u","password":"p","from":"a@example.com","security":"starttls","max_message_mb":"25"}"#,
            &form(&[("cfg_smtp_host", "smtp.example.com"), ("cfg_smtp_port", "2525"), ("cfg_username", "u"), ("cfg_from", "a@example.com")]),
            "cfg_",
        )
        .unwrap_err();
        assert!(e.contains("SMTP port") && e.contains("Password"), "{e}");
    }

    #[test]
    fn ids_in_the_providers_url_are_digits_and_count_as_where_it_sends() {
        let posted = |id: &str| {
            form(&[
                ("cfg_phone_number_id", id),
                ("cfg_waba_id", "2002"),
                ("cfg_access_token", "EAAG"),
                ("cfg_app_secret", "s"),
                ("cfg_verify_token", "v"),
            ])
        };
        let e = merge(
            ChannelKind::Whatsapp,
            "{}",
            &posted("2002/subscribed_apps?override_callback_uri=https://evil.example/x#"),
            "cfg_",
        )
        .unwrap_err();
        assert!(
            e.contains("Phone number ID") && e.contains("digits only"),
            "{e}"
        );
        let (json, _) = merge(ChannelKind::Whatsapp, "{}", &posted("1061"), "cfg_").unwrap();
        // Another number with the stored token: the token must be typed again.
        let e = merge(
            ChannelKind::Whatsapp,
            &json,
            &form(&[("cfg_phone_number_id", "1062"), ("cfg_waba_id", "2002")]),
            "cfg_",
        )
        .unwrap_err();
        assert!(
            e.contains("Phone number ID") && e.contains("Access token"),
            "{e}"
        );
        let sid = merge(
            ChannelKind::Sms,
            "{}",
            &form(&[
                ("cfg_account_sid", "AC1/../x"),
                ("cfg_auth_token", "t"),
                ("cfg_from", "+1555"),
            ]),
            "cfg_",
        )
        .unwrap_err();
        assert!(sid.contains("letters and digits"), "{sid}");
    }

    #[test]
    fn sending_the_smtp_password_in_clear_needs_it_typed_again() {
        let stored = r#"{"smtp_host":"smtp.example.com","smtp_port":"587","username":"u","password":"p","from":"a@example.com","security":"starttls","max_message_mb":"25"}"#;
        let keep = [
            ("cfg_smtp_host", "smtp.example.com"),
            ("cfg_username", "u"),
            ("cfg_from", "a@example.com"),
        ];
        let mut clear = keep.to_vec();
        clear.push(("cfg_security", "none"));
        let e = merge(ChannelKind::Email, stored, &form(&clear), "cfg_").unwrap_err();
        assert!(e.contains("Security") && e.contains("Password"), "{e}");
        clear.push(("cfg_password", "p"));
        merge(ChannelKind::Email, stored, &form(&clear), "cfg_").unwrap();
        let mut odd = keep.to_vec();
        odd.push(("cfg_security", "plain"));
        odd.push(("cfg_password", "p"));
        let e = merge(ChannelKind::Email, stored, &form(&odd), "cfg_").unwrap_err();
        assert!(e.contains("one of starttls, tls, none"), "{e}");
    }
}
