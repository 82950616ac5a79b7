//! The providers' webhooks, one group with one body limit: delivery reports (handed to
//! [`Ingest`](crate::server::reports::ingest::Ingest), which batches them into the database)
//! and messages customers send in (each finds the customer by address and calls
//! [`Db::record_inbound`](crate::server::db::Db::record_inbound), which stores the message and
//! applies a STOP). Each handler checks the provider's signature or token, reads the provider's
//! wire format into Herald's reports, and answers as the provider expects. The sandbox
//! channel's webhook is here too: it is how a demo or a test plays a customer.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::model::ChannelId;
use crate::model::channel::ChannelKind;
use crate::server::AppState;
use crate::server::db::{DeliveryEvent, Report};
use crate::server::reports;

/// The largest webhook body accepted.
pub const MAX_BODY: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    use axum::routing::{get, post};
    Router::new()
        .route(
            "/webhooks/whatsapp/{channel_id}",
            get(whatsapp_verify).post(whatsapp),
        )
        .route("/webhooks/sms/{channel_id}", post(sms))
        .route("/webhooks/telegram/{channel_id}", post(telegram))
        .route("/webhooks/sandbox/{channel_id}", post(sandbox))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[derive(Debug, Deserialize)]
struct SandboxMessage {
    /// The customer's phone number or email address.
    from: String,
    text: String,
    /// The provider's id for the message, if it has one.
    id: Option<String>,
}

/// Equal without telling by its timing how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn reply(status: StatusCode, json: serde_json::Value) -> Response {
    (status, axum::Json(json)).into_response()
}

/// `POST /webhooks/sandbox/{channel_id}` with `X-Herald-Token` (the channel's `inbound_token`)
/// and a JSON body `{"from": "+4420…", "text": "STOP"}`.
async fn sandbox(
    State(state): State<AppState>,
    Path(channel_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = |status, message: &str| reply(status, serde_json::json!({ "error": message }));
    let channel: serde_json::Value =
        match channel_settings(&state, channel_id, ChannelKind::Sandbox).await {
            Ok(c) => c,
            Err(r) => return r,
        };
    let token = channel
        .get("inbound_token")
        .and_then(|t| t.as_str())
        .map(String::from);
    let token = token.unwrap_or_default();
    let given = headers
        .get("x-herald-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    // No token set (or no such channel) refuses like a wrong token.
    if token.is_empty() || !constant_time_eq(given, token.as_bytes()) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong X-Herald-Token");
    }
    let msg: SandboxMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected JSON {{\"from\": …, \"text\": …}}: {e}"),
            );
        }
    };
    if msg.text.chars().count() > 4096 || msg.from.len() > 254 {
        return error(StatusCode::BAD_REQUEST, "message or sender too long");
    }
    let message = reports::InboundMessage {
        channel_id: ChannelId(channel_id),
        kind: ChannelKind::Sandbox,
        from: msg.from.trim().to_string(),
        text: msg.text,
        provider_id: msg.id,
        answers: None,
    };
    match reports::take_in(&state.db, message, state.clock.now()).await {
        Ok(None) => error(StatusCode::UNPROCESSABLE_ENTITY, "unknown sender"),
        Ok(Some(i)) => reply(
            StatusCode::OK,
            serde_json::json!({ "message_id": i.message_id, "customer_id": i.customer_id, "opted_out": i.opted_out }),
        ),
        Err(e) => {
            tracing::error!(error = ?e, "webhook: storing the message failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// `POST /webhooks/telegram/{channel_id}`: Telegram's updates, authenticated by
/// `X-Telegram-Bot-Api-Secret-Token` (the channel's webhook secret, set with `setWebhook`).
/// A message from a known chat is stored in that customer's conversation; one that answers a
/// broadcast message (`reply_to_message`), or comes within the reply window, marks it replied.
/// Updates Herald has no use for are acknowledged and dropped; a repeated update changes
/// nothing.
async fn telegram(
    State(state): State<AppState>,
    Path(channel_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = |status, message: &str| reply(status, serde_json::json!({ "error": message }));
    let settings: crate::server::channels::telegram::Settings =
        match channel_settings(&state, channel_id, ChannelKind::Telegram).await {
            Ok(s) => s,
            Err(r) => return r,
        };
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if settings.webhook_secret.is_empty()
        || !constant_time_eq(given, settings.webhook_secret.as_bytes())
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-Telegram-Bot-Api-Secret-Token",
        );
    }
    let update: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => return error(StatusCode::BAD_REQUEST, "expected a Telegram Update object"),
    };
    let message = &update["message"];
    let (Some(chat), Some(id)) = (
        message["chat"]["id"].as_i64(),
        message["message_id"].as_i64(),
    ) else {
        return reply(
            StatusCode::OK,
            serde_json::json!({ "ignored": "not a message" }),
        );
    };
    let text = message["text"]
        .as_str()
        .or_else(|| message["caption"].as_str())
        .unwrap_or("(a message without text)");
    if text.chars().count() > 4096 {
        return error(StatusCode::BAD_REQUEST, "message too long");
    }
    let own_id = format!("{chat}:{id}");
    let reply_to = message["reply_to_message"]["message_id"]
        .as_i64()
        .map(|r| format!("{chat}:{r}"));
    let message = reports::InboundMessage {
        channel_id: ChannelId(channel_id),
        kind: ChannelKind::Telegram,
        from: chat.to_string(),
        text: text.to_string(),
        provider_id: Some(own_id),
        answers: reply_to,
    };
    // A repeated update is stored once (and still marks the reply, in case the first try
    // stored the message but failed before that).
    match reports::take_in(&state.db, message, state.clock.now()).await {
        Ok(None) => reply(
            StatusCode::OK,
            serde_json::json!({ "ignored": "unknown chat" }),
        ),
        Ok(Some(i)) if i.repeat => {
            reply(StatusCode::OK, serde_json::json!({ "ignored": "repeat" }))
        }
        Ok(Some(i)) => reply(
            StatusCode::OK,
            serde_json::json!({ "message_id": i.message_id, "replied": i.replied, "opted_out": i.opted_out }),
        ),
        Err(e) => {
            tracing::error!(error = ?e, "webhook: storing the message failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// `POST /webhooks/sms/{channel_id}`: a Twilio-style provider's status callbacks
/// (`MessageSid` + `MessageStatus`) and inbound messages (`From` + `Body`), form-encoded and
/// signed with `X-Twilio-Signature` over this URL. Statuses move the delivery forward
/// (`delivered`; `undelivered`/`failed` with the error code); an inbound text is stored in the
/// customer's conversation (a STOP opts them out of SMS) and may mark a reply.
async fn sms(
    State(state): State<AppState>,
    Path(channel_id): Path<i64>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let error = |status, message: &str| reply(status, serde_json::json!({ "error": message }));
    let settings: crate::server::channels::sms::Settings =
        match channel_settings(&state, channel_id, ChannelKind::Sms).await {
            Ok(s) => s,
            Err(r) => return r,
        };
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let url = signed_url(&state, &headers, &uri);
    let expected = crate::server::channels::sms::signature(&settings.auth_token, &url, &params);
    let given = headers
        .get("x-twilio-signature")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if settings.auth_token.is_empty() || !constant_time_eq(given, expected.as_bytes()) {
        return error(StatusCode::FORBIDDEN, "missing or wrong X-Twilio-Signature");
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let now = state.clock.now();
    // The delivery the status callback's URL names (the adapter puts it there).
    let named = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "delivery")
            .and_then(|(_, v)| crate::server::dispatch::parse_delivery_key(&v))
    });
    let twiml = || {
        (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/xml")],
            "<Response/>",
        )
            .into_response()
    };
    if let (Some(sid), Some(status)) = (get("MessageSid"), get("MessageStatus")) {
        let (event, code) = sms_event(status, get("ErrorCode"));
        let failures: Vec<reports::ReportedFailure> = match (&event, code) {
            (Some(DeliveryEvent::Failed { reason }), Some(code)) => {
                vec![reports::ReportedFailure {
                    provider_message_id: sid.to_string(),
                    code,
                    reason: reason.clone(),
                }]
            }
            _ => Vec::new(),
        };
        let reports = event
            .map(|event| Report {
                channel_id,
                provider_message_id: sid.to_string(),
                event,
                at: now,
            })
            .into_iter()
            .collect();
        // A status the callback URL names records a send Herald has not (a crash after the
        // request), in the same group commit as the statuses.
        let named = named
            .map(|(delivery, round)| (ChannelId(channel_id), delivery, round, sid.to_string()))
            .into_iter()
            .collect();
        if let Err(e) = state.ingest.apply_named(reports, named).await {
            tracing::error!(error = ?e, "webhook: applying a status failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
        }
        if let Err(e) = reports::follow_up(&state, channel_id, ChannelKind::Sms, &failures).await {
            tracing::error!(error = ?e, "webhook: following up a status failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
        }
        return twiml();
    }
    let (Some(from), Some(text)) = (get("From"), get("Body")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected MessageStatus, or From and Body",
        );
    };
    if text.chars().count() > 4096 {
        return error(StatusCode::BAD_REQUEST, "message too long");
    }
    let sid = get("MessageSid").unwrap_or("");
    let message = reports::InboundMessage {
        channel_id: ChannelId(channel_id),
        kind: ChannelKind::Sms,
        from: from.trim().to_string(),
        text: text.to_string(),
        provider_id: (!sid.is_empty()).then(|| sid.to_string()),
        answers: None,
    };
    match reports::take_in(&state.db, message, now).await {
        Ok(_) => twiml(),
        Err(e) => {
            tracing::error!(error = ?e, "webhook: storing the message failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// The settings of channel `channel_id` if it is of `kind`, read as `T`. An unknown channel
/// (or one of another kind) reads as `T::default()`, whose secrets are empty, so it is refused
/// by the signature check exactly as a bad signature is: the answer tells nothing about which
/// channel ids exist. 503 when the database is down.
async fn channel_settings<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    channel_id: i64,
    kind: ChannelKind,
) -> Result<T, Response> {
    match state.ingest.channel(channel_id).await {
        Ok(Some((k, config))) if k == kind => Ok(serde_json::from_str(&config).unwrap_or_default()),
        Ok(_) => Ok(T::default()),
        Err(e) => {
            tracing::error!(error = ?e, "webhook: channel lookup failed");
            Err(reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "error": "database unavailable" }),
            ))
        }
    }
}

/// `GET /webhooks/whatsapp/{channel_id}`: Meta's verification handshake. With
/// `hub.mode=subscribe` and the channel's verify token, the answer is `hub.challenge`.
async fn whatsapp_verify(
    State(state): State<AppState>,
    Path(channel_id): Path<i64>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let settings: crate::server::channels::whatsapp::Settings =
        match channel_settings(&state, channel_id, ChannelKind::Whatsapp).await {
            Ok(s) => s,
            Err(r) => return r,
        };
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or("");
    if q.get("hub.mode").map(String::as_str) == Some("subscribe")
        && !settings.verify_token.is_empty()
        && constant_time_eq(token.as_bytes(), settings.verify_token.as_bytes())
    {
        let challenge: String = q
            .get("hub.challenge")
            .map(|c| c.chars().take(200).collect())
            .unwrap_or_default();
        // The channels page says the handshake is done.
        if let Err(e) = state
            .db
            .note_webhook_verified(channel_id, state.clock.now())
            .await
        {
            tracing::warn!(error = ?e, "noting a verified webhook failed");
        }
        return (StatusCode::OK, challenge).into_response();
    }
    (StatusCode::FORBIDDEN, "verification failed").into_response()
}

/// `POST /webhooks/whatsapp/{channel_id}`: status reports and inbound messages, signed with
/// `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret, compared in
/// constant time). Statuses move deliveries forward (`failed` with the error's code and
/// title); an inbound message is stored once in the customer's conversation, and one whose
/// `context.id` is a broadcast message marks that delivery replied.
async fn whatsapp(
    State(state): State<AppState>,
    Path(channel_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = |status, message: &str| reply(status, serde_json::json!({ "error": message }));
    let settings: crate::server::channels::whatsapp::Settings =
        match channel_settings(&state, channel_id, ChannelKind::Whatsapp).await {
            Ok(s) => s,
            Err(r) => return r,
        };
    let expected = crate::server::channels::webhook::signature(&settings.app_secret, &body);
    let given = headers
        .get("x-hub-signature-256")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if settings.app_secret.is_empty() || !constant_time_eq(given, expected.as_bytes()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-Hub-Signature-256",
        );
    }
    let payload: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected a WhatsApp webhook object",
            );
        }
    };
    let db = &state.db;
    let now = state.clock.now();
    let unavailable = |e: crate::server::db::DbError| {
        tracing::error!(error = ?e, "webhook: storing failed");
        error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    };
    let changes = whatsapp_changes(&payload, channel_id, now);
    for (name, language, status) in &changes.templates {
        if let Err(e) = template_changed(&state, channel_id, name, language, status).await {
            return unavailable(e);
        }
    }
    let mut messages = 0;
    for m in changes.messages {
        match reports::take_in(db, m, now).await {
            Ok(Some(_)) => messages += 1,
            Ok(None) => {}
            Err(e) => return unavailable(e),
        }
    }
    // Statuses are stored together with other requests' (group commit), before the answer. A
    // status that names a send Herald has not recorded (its worker about to, or dead after the
    // request) records it first, so it is not sent again.
    let statuses = changes.statuses.len();
    let named = changes
        .named
        .into_iter()
        .map(|(d, round, pid)| (ChannelId(channel_id), d, round, pid))
        .collect();
    if let Err(e) = state.ingest.apply_named(changes.statuses, named).await {
        tracing::error!(error = ?e, "webhook: storing statuses failed");
        return error(StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    }
    if let Err(e) =
        reports::follow_up(&state, channel_id, ChannelKind::Whatsapp, &changes.failures).await
    {
        return unavailable(e);
    }
    state.ingest.note_details(channel_id, changes.details);
    reply(
        StatusCode::OK,
        serde_json::json!({ "statuses": statuses, "messages": messages }),
    )
}

/// What a WhatsApp webhook's `entry[].changes[].value` carry.
#[derive(Debug, Default)]
struct Changes {
    /// Status reports (`sent` moves nothing and is left out).
    statuses: Vec<Report>,
    /// Pricing and errors from every status, `sent` included.
    details: Vec<crate::server::db::ReportDetail>,
    /// Failures whose code Herald knows, for their follow-up.
    failures: Vec<reports::ReportedFailure>,
    /// The deliveries statuses name (`biz_opaque_callback_data`): (delivery, round, wamid).
    named: Vec<(i64, i64, String)>,
    /// Templates whose status changed (`message_template_status_update`): (name, language,
    /// new status).
    templates: Vec<(String, String, String)>,
    messages: Vec<reports::InboundMessage>,
}

/// Meta changed a template's status: stored, and a paused or disabled template pauses the
/// broadcasts that send it on this channel (every further message would fail), with why.
async fn template_changed(
    state: &AppState,
    channel_id: i64,
    name: &str,
    language: &str,
    status: &str,
) -> Result<(), crate::server::db::DbError> {
    let now = state.clock.now();
    state
        .db
        .set_template_status(channel_id, name, language, status, now)
        .await?;
    if matches!(status, "PAUSED" | "DISABLED") {
        let reason = format!(
            "WhatsApp {} the template {name}: every further message would fail. Edit it in WhatsApp Manager or choose another, then resume.",
            status.to_lowercase()
        );
        for b in state
            .db
            .broadcasts_using_template(channel_id, name, language)
            .await?
        {
            state.dispatcher.halt(b.0);
            state.db.pause_for_provider(b, &reason, now).await?;
            state.db.announce_broadcast(b.0).await;
        }
    }
    Ok(())
}

/// The statuses, their details and failures, and the inbound messages of a WhatsApp webhook.
fn whatsapp_changes(
    payload: &serde_json::Value,
    channel_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Changes {
    let mut out = Changes::default();
    let empty = Vec::new();
    let changes = payload["entry"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .flat_map(|entry| entry["changes"].as_array().unwrap_or(&empty));
    for change in changes {
        let value = &change["value"];
        if change["field"] == "message_template_status_update" {
            let text = |k: &str| {
                value[k]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(512)
                    .collect::<String>()
            };
            let (name, event) = (text("message_template_name"), text("event").to_uppercase());
            if !name.is_empty() && !event.is_empty() {
                out.templates
                    .push((name, text("message_template_language"), event));
            }
            continue;
        }
        for s in value["statuses"].as_array().unwrap_or(&empty) {
            let Some(id) = s["id"].as_str() else { continue };
            if let Some((delivery, round)) = s["biz_opaque_callback_data"]
                .as_str()
                .and_then(crate::server::dispatch::parse_delivery_key)
            {
                out.named.push((delivery, round, id.to_string()));
            }
            let pricing = &s["pricing"];
            let errors = s["errors"]
                .as_array()
                .filter(|e| !e.is_empty())
                .map(|e| serde_json::Value::Array(e.clone()).to_string())
                .map(|e| e.chars().take(2000).collect::<String>());
            let detail = crate::server::db::ReportDetail {
                provider_message_id: id.to_string(),
                pricing_category: pricing["category"]
                    .as_str()
                    .map(|c| c.chars().take(40).collect()),
                billable: pricing["billable"].as_bool(),
                errors,
            };
            if detail.pricing_category.is_some()
                || detail.billable.is_some()
                || detail.errors.is_some()
            {
                out.details.push(detail);
            }
            let event = match s["status"].as_str() {
                Some("delivered") => DeliveryEvent::Delivered,
                Some("read") => DeliveryEvent::Read,
                Some("failed") => {
                    let (reason, row) =
                        crate::server::channels::whatsapp::error_reason(&s["errors"][0], 0);
                    if let Some(code) = row {
                        out.failures.push(reports::ReportedFailure {
                            provider_message_id: id.to_string(),
                            code,
                            reason: reason.clone(),
                        });
                    }
                    DeliveryEvent::Failed { reason }
                }
                _ => continue,
            };
            out.statuses.push(Report {
                channel_id,
                provider_message_id: id.to_string(),
                event,
                at: now,
            });
        }
        for m in value["messages"].as_array().unwrap_or(&empty) {
            let (Some(from), Some(id)) = (m["from"].as_str(), m["id"].as_str()) else {
                continue;
            };
            let text = m["text"]["body"]
                .as_str()
                .or_else(|| m["button"]["text"].as_str())
                .or_else(|| m[m["type"].as_str().unwrap_or("")]["caption"].as_str())
                .unwrap_or("(a message without text)");
            out.messages.push(reports::InboundMessage {
                channel_id: ChannelId(channel_id),
                kind: ChannelKind::Whatsapp,
                from: from.to_string(),
                text: text.chars().take(4096).collect(),
                provider_id: Some(id.to_string()),
                answers: m["context"]["id"].as_str().map(str::to_string),
            });
        }
    }
    out
}

/// A Twilio status callback's `MessageStatus` as a report (queued, sending and sent say
/// nothing new), with its `ErrorCode`'s row in the codes table.
fn sms_event(
    status: &str,
    error_code: Option<&str>,
) -> (
    Option<DeliveryEvent>,
    Option<&'static crate::server::channels::codes::Code>,
) {
    let row = error_code
        .and_then(|c| c.parse().ok())
        .and_then(crate::server::channels::codes::twilio);
    let event = match status {
        "delivered" => Some(DeliveryEvent::Delivered),
        "undelivered" | "failed" => Some(DeliveryEvent::Failed {
            reason: match row {
                Some(row) => row.reason("SMS"),
                None => format!(
                    "SMS {status}{}",
                    error_code
                        .map(|c| format!(" (error {})", crate::server::channels::summary(c)))
                        .unwrap_or_default()
                ),
            },
        }),
        _ => None,
    };
    (event, row)
}

/// The URL the provider signed: as it reached us (scheme from the cookie setting, as the
/// channels page shows it).
fn signed_url(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let scheme = if state.config.secure() {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme}://{host}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
