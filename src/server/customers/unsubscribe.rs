//! Unsubscribe links in outgoing emails: `<public-url>/unsubscribe/<token>`, where the token
//! names the customer and the kind of channel and carries an HMAC under a key every instance
//! shares (`server_keys`), so nobody can unsubscribe someone else by guessing.
//!
//! `GET` shows a page with one button; `POST` (that button, or a mail client's RFC 8058
//! one-click `List-Unsubscribe=One-Click`) leaves the customer out of audiences on that kind
//! of channel, audited. Neither needs a session: the token is the permission.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::channel::ChannelKind;
use crate::server::db::{Db, DbError};

/// Signs and checks the links Herald puts in messages.
#[derive(Clone)]
pub struct Links {
    /// Where customers reach this Herald (`https://herald.example.com`), without a trailing `/`.
    pub public_url: String,
    key: Arc<[u8]>,
}

/// The key stays out of logs.
impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Default for Links {
    /// A random key, for tests and tools without a database.
    fn default() -> Self {
        Links::new(
            "http://127.0.0.1:3000",
            crate::server::accounts::auth::new_session_token().as_bytes(),
        )
    }
}

impl Links {
    pub fn new(public_url: &str, key: &[u8]) -> Self {
        Links {
            public_url: public_url.trim_end_matches('/').to_string(),
            key: key.into(),
        }
    }

    /// The shared key from the database (made by the first instance that asks).
    pub async fn load(
        db: &crate::server::db::Db,
        public_url: &str,
    ) -> Result<Self, crate::server::db::DbError> {
        let key = db
            .server_key(
                "unsubscribe",
                &crate::server::accounts::auth::new_session_token(),
            )
            .await?;
        Ok(Links::new(public_url, key.as_bytes()))
    }

    fn mac(&self, customer_id: i64, kind: ChannelKind) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("unsubscribe:{customer_id}:{}", kind.as_str()).as_bytes());
        mac
    }

    /// `<customer>-<kind>-<first 16 bytes of the HMAC, hex>`.
    pub fn unsubscribe_token(&self, customer_id: i64, kind: ChannelKind) -> String {
        let tag = self.mac(customer_id, kind).finalize().into_bytes();
        let hex: String = tag[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{customer_id}-{}-{hex}", kind.as_str())
    }

    pub fn unsubscribe_url(&self, customer_id: i64, kind: ChannelKind) -> String {
        format!(
            "{}/unsubscribe/{}",
            self.public_url,
            self.unsubscribe_token(customer_id, kind)
        )
    }

    /// The customer and kind a token was made for, if this server made it.
    pub fn verify(&self, token: &str) -> Option<(i64, ChannelKind)> {
        let mut parts = token.splitn(3, '-');
        let customer_id: i64 = parts.next()?.parse().ok()?;
        let kind = ChannelKind::parse(parts.next()?)?;
        let hex = parts.next()?;
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let tag: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .ok()?;
        self.mac(customer_id, kind)
            .verify_truncated_left(&tag)
            .ok()
            .map(|()| (customer_id, kind))
    }
}

/// Leaves the customer that `token` names out of audiences on its kind of channel (audited);
/// `None` when the token is not one of ours.
pub async fn apply(
    links: &Links,
    db: &Db,
    token: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<ChannelKind>, DbError> {
    let Some((customer_id, kind)) = links.verify(token) else {
        return Ok(None);
    };
    let detail = format!("unsubscribed from {} by link", kind.as_str());
    db.opt_out_on(customer_id, kind, "unsubscribe", &detail, now)
        .await?;
    Ok(Some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_unchanged_and_under_the_same_key() {
        let links = Links::new("https://h.example/", b"key-one");
        let t = links.unsubscribe_token(42, ChannelKind::Email);
        assert_eq!(links.verify(&t), Some((42, ChannelKind::Email)));
        assert_eq!(
            links.unsubscribe_url(42, ChannelKind::Email),
            format!("https://h.example/unsubscribe/{t}")
        );
        let other = t.replacen("42-", "43-", 1);
        assert_eq!(links.verify(&other), None);
        let sms = t.replacen("-email-", "-sms-", 1);
        assert_eq!(links.verify(&sms), None);
        assert_eq!(Links::new("x", b"key-two").verify(&t), None);
        for junk in [
            "",
            "42",
            "42-email",
            "42-email-zz",
            "x-email-00",
            "42-email-é",
        ] {
            assert_eq!(links.verify(junk), None, "{junk:?}");
        }
    }
}
