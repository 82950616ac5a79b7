//! SMS over a Twilio-style Messages API.
//!
//! Sending: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`,
//! `Body` (and `StatusCallback`: this channel's webhook URL with `?delivery=<key>`), HTTP
//! basic auth with the account SID and auth token. 201 with `{"sid": "SM…"}` is acceptance;
//! a refusal's `code` goes by its row in [`codes::TWILIO`], else 429 is retried, 5xx (and a
//! timeout or reset after the request went out) may mean "sent" and waits for the status
//! callback, and other errors fail with the provider's `message`. SMS carries text only: attachments are
//! named at the end.
//!
//! Callbacks (status reports and inbound messages) are form posts signed with
//! `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed by the auth token, over the full URL
//! followed by every parameter's name and value, sorted by name.

use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{Accepted, Channel, Outgoing, SendError, codes};
use crate::model::channel::ChannelKind;

/// The channel's settings (from `channels.config`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub base_url: String,
    /// Where the provider reports statuses: this channel's webhook URL at Herald's public
    /// address unless set otherwise.
    pub status_callback: String,
}

/// Channel `id`'s status callback at Herald's public address: where Twilio posts what became
/// of each message (each request names it, with the delivery's key).
pub fn status_callback_url(public_url: &str, id: i64) -> String {
    format!("{}/webhooks/sms/{id}", public_url.trim_end_matches('/'))
}

pub struct Sms {
    settings: Settings,
    client: reqwest::Client,
}

impl Sms {
    pub fn new(settings: Settings, client: reqwest::Client) -> Self {
        Sms { settings, client }
    }
}

/// `X-Twilio-Signature` for a request to `url` with form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl Channel for Sms {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            let s = &self.settings;
            if s.account_sid.is_empty() || s.auth_token.is_empty() || s.from.is_empty() {
                return Err(SendError::Permanent {
                    reason: "The SMS channel is missing its account, token or number.".into(),
                });
            }
            let base = if s.base_url.is_empty() {
                "https://api.twilio.com"
            } else {
                s.base_url.trim_end_matches('/')
            };
            let mut body = m.body.trim().to_string();
            if !m.attachments.is_empty() {
                let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
                body.push_str(&format!("\n(Files: {})", names.join(", ")));
            }
            let mut form = vec![
                ("To", m.address.as_str()),
                ("From", s.from.as_str()),
                ("Body", body.as_str()),
            ];
            // The callback URL names the delivery, so a status about a send Herald has not
            // recorded (a crash after the request) records it instead of a second message.
            let callback = (!s.status_callback.is_empty()).then(|| {
                let sep = if s.status_callback.contains('?') {
                    '&'
                } else {
                    '?'
                };
                let key: String =
                    form_urlencoded::byte_serialize(m.idempotency_key.as_bytes()).collect();
                format!("{}{sep}delivery={key}", s.status_callback)
            });
            if let Some(url) = &callback {
                form.push(("StatusCallback", url.as_str()));
            }
            let response = self
                .client
                .post(super::endpoint::api_url(
                    base,
                    &["2010-04-01", "Accounts", &s.account_sid, "Messages.json"],
                ))
                .basic_auth(&s.account_sid, Some(&s.auth_token))
                .form(&form)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|e| super::no_answer("The SMS provider", &e))?;
            let status = response.status().as_u16();
            let wait = super::webhook::retry_after(response.headers());
            let v = super::read_json(response, super::ANSWER_CAP)
                .await
                .unwrap_or_default();
            if (200..300).contains(&status) {
                return match v["sid"].as_str() {
                    Some(sid) => Ok(Accepted {
                        provider_message_id: sid.to_string(),
                        replayed: false,
                    }),
                    None => Err(super::unreadable("The SMS provider", status)),
                };
            }
            let code = v["code"].as_i64().unwrap_or(status as i64);
            if let Some(row) = codes::twilio(code) {
                return Err(row.error("SMS", wait));
            }
            let reason = format!(
                "SMS {code}: {}",
                v["message"].as_str().unwrap_or("no message")
            );
            Err(super::refused(status, reason, wait))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_twilio_documents() {
        // The example in Twilio's request-validation snippets (token 12345).
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }
}
