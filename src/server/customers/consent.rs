//! A staff member records a customer's consent (given or withdrawn) for a kind of channel and
//! a purpose, with a note saying how they know; kept with the customer's history, audited.

use crate::model::CurrentUser;
use crate::model::consent::{MAX_NOTE_CHARS, Purpose, Source};
use crate::model::workspace::CONSENT_KINDS;
use crate::server::AppState;
use crate::server::db::ConsentChange;

/// The consent form as posted.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub purpose: String,
    /// `yes` (given) or `no` (withdrawn).
    #[serde(default)]
    pub granted: String,
    #[serde(default)]
    pub note: String,
}

/// Records what `user` (staff or admin, checked) posted for customer `id`; the notice, or
/// what is wrong.
pub async fn record(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    f: &ConsentForm,
) -> Result<String, String> {
    let kind = CONSENT_KINDS
        .iter()
        .find(|k| **k == f.kind)
        .ok_or("Choose WhatsApp, SMS, email or Telegram.")?;
    let purpose = Purpose::parse(&f.purpose).ok_or("Choose marketing or service.")?;
    let granted = match f.granted.as_str() {
        "yes" => true,
        "no" => false,
        _ => return Err("Choose whether the customer agreed or withdrew.".into()),
    };
    let note = f.note.trim();
    if note.is_empty() || note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!(
            "Say how you know, in up to {MAX_NOTE_CHARS} characters (“asked on the phone, 8 Dec”)."
        ));
    }
    let db = &state.db;
    if db.recipient(id).await.map_err(|e| e.to_string())?.is_none() {
        return Err("That customer no longer exists.".into());
    }
    let now = state.clock.now();
    let change = ConsentChange {
        customer_id: id,
        kind,
        purpose,
        granted,
        source: Source::Staff,
        note: Some(note),
        actor: Some(user.id),
    };
    db.record_consent(&change, now)
        .await
        .map_err(|e| e.to_string())?;
    let word = if granted { "given" } else { "withdrawn" };
    Ok(format!(
        "Consent for {} on {kind}: {word}.",
        purpose.as_str()
    ))
}
