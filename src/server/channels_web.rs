//! The channels page on the server (admins only): what it shows, with every secret masked, and
//! `POST /channels`, a plain form that connects, changes, enables/disables or tests a channel
//! and comes back to the page with the outcome.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::auth::require_role_for_handler;
use super::db::{ChannelRecord, NewChannel};
use crate::api::AppError;
use crate::api::form::with_param;
use crate::model::channel::{ChannelKind, ChannelView, ChannelsPage, mask};
use crate::model::compose::Compose;
use crate::model::{CurrentUser, Role};

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
    let channels = state
        .db
        .channels()
        .await?
        .iter()
        .filter_map(|r| view(r, base_url))
        .collect();
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
    for f in kind.fields() {
        let key = format!("{prefix}{}", f.key);
        let value = posted
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let before = text(out.get(f.key));
        let after = match (value.is_empty(), f.secret) {
            (true, true) => before.clone(),
            (true, false) => f.default.to_string(),
            (false, _) => value,
        };
        if after.chars().count() > 2000 {
            return Err(format!("{} is too long.", f.label));
        }
        if after != before {
            changed.push(f.key);
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
    if kind == ChannelKind::Sandbox && !out.contains_key("inbound_token") {
        // Authenticates the sandbox's inbound webhook (X-Herald-Token).
        out.insert(
            "inbound_token".into(),
            serde_json::Value::String(super::auth::new_session_token()),
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

/// `POST /channels`.
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match require_role_for_handler(&state, &headers, &[Role::Admin]).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let posted: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| posted.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let back =
        |key: &str, msg: &str| Redirect::to(&with_param("/channels", key, msg)).into_response();
    let now = state.clock.now();
    let id = get("id").and_then(|v| v.parse::<i64>().ok());
    let name = get("name").unwrap_or("").trim().to_string();
    let outcome: Result<String, String> = async {
        match (get("action").unwrap_or(""), id) {
            ("create", _) => {
                let kind = get("kind")
                    .and_then(ChannelKind::parse)
                    .ok_or("Choose the kind of channel.")?;
                if name.is_empty() || name.chars().count() > 100 {
                    return Err("Enter a name of up to 100 characters.".into());
                }
                let rate = rate(get("rate"), kind)?;
                // The connect form names each kind's fields apart (several kinds have a base URL).
                let (config, _) = merge(kind, "{}", &posted, &format!("cfg_{}_", kind.as_str()))?;
                let new = NewChannel {
                    kind: kind.as_str().into(),
                    name: name.clone(),
                    config_json: config,
                    rate_per_sec: rate,
                };
                let id = state.db.insert_channel(&new, now).await.map_err(|e| {
                    tracing::warn!(error = ?e, "connecting a channel failed");
                    "Nothing was saved: is that name taken already?".to_string()
                })?;
                let _ = state
                    .db
                    .audit(
                        now,
                        Some(user.id),
                        "channel",
                        "channel",
                        Some(id),
                        &format!("connected {} {name}", kind.as_str()),
                    )
                    .await;
                Ok(format!("Connected “{name}”."))
            }
            (action @ ("update" | "toggle"), Some(id)) => {
                let Some(record) = state
                    .db
                    .channel(id)
                    .await
                    .map_err(|_| "The channel could not be read.")?
                else {
                    return Err("That channel no longer exists.".into());
                };
                let ChannelRecord {
                    kind,
                    name: old_name,
                    config,
                    enabled,
                    rate_per_sec: old_rate,
                    ..
                } = record;
                let kind = ChannelKind::parse(&kind).ok_or("Unknown channel kind.")?;
                let (name, config, enabled, rate, what) = if action == "toggle" {
                    let what = if enabled { "disabled" } else { "enabled" };
                    (old_name, config, !enabled, old_rate, what.to_string())
                } else {
                    if name.is_empty() || name.chars().count() > 100 {
                        return Err("Enter a name of up to 100 characters.".into());
                    }
                    let rate = rate(get("rate"), kind)?;
                    let (config, changed) = merge(kind, &config, &posted, "cfg_")?;
                    let what = format!("changed {}", changed.join(", "));
                    (name, config, enabled, rate, what)
                };
                state
                    .db
                    .update_channel(id, &name, &config, enabled, rate, user.id, &what, now)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = ?e, "changing a channel failed");
                        "Nothing was saved: is that name taken already?".to_string()
                    })?;
                state.dispatcher.forget_channels();
                state.ingest.forget_channels();
                Ok(match action {
                    "toggle" if enabled => format!("Enabled “{name}”."),
                    "toggle" => format!("Disabled “{name}”: broadcasts no longer offer it."),
                    _ => format!("Saved “{name}”."),
                })
            }
            ("test", Some(id)) => {
                let Some(ChannelRecord { name, enabled, .. }) = state
                    .db
                    .channel(id)
                    .await
                    .map_err(|_| "The channel could not be read.")?
                else {
                    return Err("That channel no longer exists.".into());
                };
                if !enabled {
                    return Err(format!("“{name}” is disabled: enable it to send a test."));
                }
                let compose = Compose {
                    name: "Channel test".into(),
                    body: "Test message from Herald ✔ (sent from the channels page)".into(),
                    channel_ids: vec![id],
                    ..Default::default()
                };
                let who = super::wizard::Who::Typed(get("test_to").unwrap_or("").to_string());
                super::wizard::test_send(&state, &user, None, &compose, who).await
            }
            _ => Err("The request was not understood.".into()),
        }
    }
    .await;
    match outcome {
        Ok(m) => back("notice", &m),
        Err(e) => back("error", &e),
    }
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
}
