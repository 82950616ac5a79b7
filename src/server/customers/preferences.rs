//! The preference page an unsubscribe link opens (no sign-in: the signed link is the
//! permission): per kind of channel the customer can be reached on, and per purpose
//! (marketing, service), whether they still want messages. Each change is recorded as a
//! consent change from the form; choosing a kind again lifts an earlier STOP there.

use chrono::{DateTime, Utc};

use crate::model::channel::ChannelKind;
use crate::model::consent::{Purpose, Source};
use crate::model::workspace::Rules;
use crate::server::db::{ConsentChange, Db, DbError};

/// One choice on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    pub kind: ChannelKind,
    pub purpose: Purpose,
    pub wanted: bool,
    /// They opted out of the whole kind (a STOP, an unsubscribe).
    pub stopped: bool,
}

impl Preference {
    /// The form field's name: `want_sms_marketing`.
    pub fn field(&self) -> String {
        format!("want_{}_{}", self.kind.as_str(), self.purpose.as_str())
    }
}

/// The kinds of channel a customer with these addresses can be reached on, in page order.
fn kinds_of(r: &crate::server::db::Recipient) -> Vec<ChannelKind> {
    let mut kinds = Vec::new();
    if r.email.is_some() {
        kinds.push(ChannelKind::Email);
    }
    if r.phone.is_some() {
        kinds.push(ChannelKind::Sms);
    }
    if r.whatsapp_id.is_some() {
        kinds.push(ChannelKind::Whatsapp);
    }
    if r.telegram_chat_id.is_some() {
        kinds.push(ChannelKind::Telegram);
    }
    kinds
}

/// What customer `id` gets now, per kind and purpose: nothing on a kind they opted out of;
/// nothing they withdrew; marketing on a kind that needs an opt-in only with one.
pub async fn preferences(db: &Db, rules: &Rules, id: i64) -> Result<Vec<Preference>, DbError> {
    let Some(r) = db.recipient(id).await? else {
        return Ok(Vec::new());
    };
    let consents = db.consents_of(id).await?;
    let word = |kind: ChannelKind, purpose: Purpose| {
        consents
            .iter()
            .find(|c| c.0 == kind.as_str() && c.1 == purpose)
            .map(|c| c.2)
    };
    let mut out = Vec::new();
    for kind in kinds_of(&r) {
        let stopped = r.opted_out || r.opted_out_kinds.contains(&kind);
        for purpose in Purpose::ALL {
            let needs_opt_in = purpose == Purpose::Marketing
                && rules.consent_kinds.iter().any(|k| k == kind.as_str());
            let wanted = !stopped
                && match word(kind, purpose) {
                    Some(granted) => granted,
                    None => !needs_opt_in,
                };
            out.push(Preference {
                kind,
                purpose,
                wanted,
                stopped,
            });
        }
    }
    Ok(out)
}

/// Applies what the customer ticked (`chosen`, the fields' names) to what the page showed:
/// each difference becomes a consent change from the form. Returns how many changed.
pub async fn apply(
    db: &Db,
    rules: &Rules,
    id: i64,
    chosen: &[String],
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let shown = preferences(db, rules, id).await?;
    let ticked = |p: &Preference| chosen.contains(&p.field());
    // Choosing a kind they had stopped lifts the stop there, and every purpose on it is then
    // written as ticked (an unticked one must not come back with the stop gone).
    let mut lifted: Vec<ChannelKind> = Vec::new();
    for p in shown.iter().filter(|p| p.stopped && ticked(p)) {
        if !lifted.contains(&p.kind) {
            db.lift_opt_out(id, p.kind, now).await?;
            lifted.push(p.kind);
        }
    }
    let mut changed = 0;
    for p in &shown {
        let wanted = ticked(p);
        if wanted == p.wanted && !lifted.contains(&p.kind) {
            continue;
        }
        let change = ConsentChange {
            customer_id: id,
            kind: p.kind.as_str(),
            purpose: p.purpose,
            granted: wanted,
            source: Source::Form,
            note: None,
            actor: None,
        };
        db.record_consent(&change, now).await?;
        changed += 1;
    }
    Ok(changed)
}
