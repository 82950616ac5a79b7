//! What Twilio billed for each text. Its status callbacks carry no price; the message resource
//! does, once Twilio has it ("populated after the message has been sent; may not be
//! immediately available"): `GET …/Accounts/{sid}/Messages/{MessageSid}.json`, `price` a
//! negative decimal string in `price_unit`. A reader on each dispatching instance asks for
//! the texts sent a minute ago or more whose price is not known yet, a few at a time, and
//! stops asking after five answers without one. A refused or lost request (Twilio's 429, a
//! 5xx, a timeout) is not an answer: the text is asked about again next round. The results' cost uses these prices where they
//! are known and the price table for the rest.

use std::time::Duration;

use futures::StreamExt;

use crate::model::channel::ChannelKind;
use crate::model::cost::parse_amount;
use crate::server::AppState;
use crate::server::channels::sms::Settings;
use crate::server::channels::{endpoint, read_json};
use crate::server::db::DbError;

/// Texts read per round, and at once.
const PER_ROUND: i64 = 100;
const AT_ONCE: usize = 4;

/// How long after the send a price is first asked for.
const SETTLE: chrono::Duration = chrono::Duration::seconds(60);

/// Asks every 30 s until the process ends.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            if let Err(e) = read_once(&state, SETTLE).await {
                tracing::warn!(error = ?e, "reading what the SMS provider billed failed");
            }
        }
    });
}

/// One round: asks for the price of the texts sent `settle` ago or more that have none yet;
/// how many got one.
pub async fn read_once(state: &AppState, settle: chrono::Duration) -> Result<usize, DbError> {
    let before = state.clock.now() - settle;
    let due = state.db.unpriced_texts(before, PER_ROUND).await?;
    let found = futures::stream::iter(due)
        .map(|(id, channel, sid)| async move {
            let Some(price) = price_of(state, channel, &sid).await else {
                return Ok(false);
            };
            let unit = price.as_ref().map(|(m, u)| (*m, u.as_str()));
            state.db.note_price(id, unit).await.map(|_| price.is_some())
        })
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut priced = 0;
    for f in found {
        priced += usize::from(f?);
    }
    Ok(priced)
}

/// What Twilio said of message `sid` on `channel`: its price (millionths, unit), or that it
/// has none yet (`Some(None)`, also for what Herald cannot read or price); `None` when it
/// did not answer (refused, throttled, lost): ask again later.
async fn price_of(state: &AppState, channel: i64, sid: &str) -> Option<Option<(i64, String)>> {
    let (kind, config) = state.ingest.channel(channel).await.ok()??;
    if kind != ChannelKind::Sms {
        return Some(None);
    }
    let Ok(s) = serde_json::from_str::<Settings>(&config) else {
        return Some(None);
    };
    let url = endpoint::api_url(
        &s.base_url,
        &[
            "2010-04-01",
            "Accounts",
            &s.account_sid,
            "Messages",
            &format!("{sid}.json"),
        ],
    );
    let response = endpoint::client(state.config.allow_private_endpoints)
        .get(url)
        .basic_auth(&s.account_sid, Some(&s.auth_token))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return None;
    }
    if !status.is_success() {
        return Some(None);
    }
    let v = read_json(response, crate::server::channels::ANSWER_CAP).await?;
    Some(
        v["price"]
            .as_str()
            .zip(v["price_unit"].as_str())
            .and_then(|(p, u)| read_price(p, u)),
    )
}

/// Twilio's `"-0.00790"` in `"USD"` as (7,900, `USD`); digits beyond the sixth decimal must
/// be zeros.
pub fn read_price(price: &str, unit: &str) -> Option<(i64, String)> {
    let p = price.trim().trim_start_matches('-');
    let p = match p.split_once('.') {
        Some((w, f)) if f.len() > 6 => {
            let (keep, rest) = f.split_at(6);
            rest.bytes()
                .all(|b| b == b'0')
                .then(|| format!("{w}.{keep}"))?
        }
        _ => p.to_string(),
    };
    let unit = unit.trim().to_ascii_uppercase();
    let ok = unit.len() == 3 && unit.bytes().all(|b| b.is_ascii_uppercase());
    Some((parse_amount(&p)?, unit)).filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_prices_are_read_as_millionths() {
        assert_eq!(read_price("-0.00790", "USD"), Some((7_900, "USD".into())));
        assert_eq!(
            read_price("-0.0158000", "usd"),
            Some((15_800, "USD".into()))
        );
        assert_eq!(read_price("-0.0000001", "USD"), None);
        assert_eq!(read_price("-0.0079", "dollars"), None);
        assert_eq!(read_price("", "USD"), None);
    }
}
