//! The workspace's Settings page: reading the admin's form into [`Rules`] (every problem at
//! once) and storing them, audited.

use crate::model::cost::{Prices, parse_amount, parse_prices};
use crate::model::workspace::{
    Approval, CONSENT_KINDS, Cap, MAX_CAP_BROADCASTS, MAX_CAP_DAYS, Rules, Window, parse_hhmm,
    parse_prefixes,
};
use crate::model::{AppError, CurrentUser};
use crate::server::AppState;
use crate::server::timefmt;

/// The Settings form as posted.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub time_zone: String,
    /// `on` when quiet hours apply.
    pub quiet: Option<String>,
    #[serde(default)]
    pub quiet_from: String,
    #[serde(default)]
    pub quiet_to: String,
    #[serde(default)]
    pub prefixes: String,
    /// `on` where marketing needs an opt-in.
    pub consent_whatsapp: Option<String>,
    pub consent_sms: Option<String>,
    pub consent_email: Option<String>,
    pub consent_telegram: Option<String>,
    /// The frequency cap; both empty for none.
    #[serde(default)]
    pub cap_max: String,
    #[serde(default)]
    pub cap_days: String,
    /// The price table's currency (`USD`) and lines.
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub prices: String,
    /// The approval rule: more than this many customers, or this cost; both empty for none.
    #[serde(default)]
    pub approval_customers: String,
    #[serde(default)]
    pub approval_cost: String,
}

/// Longest text a field may hold (the overrides' area included).
pub const MAX_FIELD: usize = 4_000;

impl SettingsForm {
    /// The rules the form sets, or every problem with it.
    pub fn rules(&self) -> Result<Rules, Vec<String>> {
        let mut errors = Vec::new();
        let zone = self.time_zone.trim();
        if !timefmt::is_zone(zone) {
            errors.push(format!(
                "“{}” is not a time zone (for example Europe/Berlin).",
                zone.chars().take(64).collect::<String>()
            ));
        }
        let quiet = if self.quiet.is_some() {
            match (parse_hhmm(&self.quiet_from), parse_hhmm(&self.quiet_to)) {
                (Some(start), Some(end)) if start != end => Some(Window { start, end }),
                _ => {
                    errors.push(
                        "Quiet hours need a start and an end that differ, as 21:00 and 08:00."
                            .into(),
                    );
                    None
                }
            }
        } else {
            None
        };
        let prefixes = if self.prefixes.len() > MAX_FIELD {
            errors.push(format!(
                "The overrides are longer than {MAX_FIELD} characters."
            ));
            Vec::new()
        } else {
            parse_prefixes(&self.prefixes).unwrap_or_else(|e| {
                errors.extend(e);
                Vec::new()
            })
        };
        let frequency_cap = self.cap().unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let prices = self.prices().unwrap_or_else(|e| {
            errors.extend(e);
            Default::default()
        });
        let approval = self.approval().unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        let ticked = [
            &self.consent_whatsapp,
            &self.consent_sms,
            &self.consent_email,
            &self.consent_telegram,
        ];
        let consent_kinds = CONSENT_KINDS
            .iter()
            .zip(ticked)
            .filter(|(_, on)| on.is_some())
            .map(|(k, _)| k.to_string())
            .collect();
        Ok(Rules {
            time_zone: zone.to_string(),
            quiet,
            quiet_by_prefix: prefixes,
            consent_kinds,
            frequency_cap,
            prices,
            approval,
        })
    }

    /// The price table typed: a currency code and one price per line.
    fn prices(&self) -> Result<Prices, Vec<String>> {
        let currency = match self.currency.trim() {
            "" => "USD".to_string(),
            c => c.to_ascii_uppercase(),
        };
        let mut errors = Vec::new();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push("The currency is a three-letter code, as USD or EUR.".to_string());
        }
        if self.prices.len() > MAX_FIELD * 2 {
            errors.push(format!(
                "The price table is longer than {} characters.",
                MAX_FIELD * 2
            ));
            return Err(errors);
        }
        match parse_prices(&self.prices) {
            Ok(lines) if errors.is_empty() => Ok(Prices { currency, lines }),
            Ok(_) => Err(errors),
            Err(e) => Err(errors.into_iter().chain(e).collect()),
        }
    }

    /// The approval rule typed: none when both fields are empty.
    fn approval(&self) -> Result<Option<Approval>, String> {
        let (n, c) = (self.approval_customers.trim(), self.approval_cost.trim());
        if n.is_empty() && c.is_empty() {
            return Ok(None);
        }
        let customers = match n {
            "" => None,
            n => Some(
                n.parse::<i64>()
                    .ok()
                    .filter(|n| (0..=1_000_000_000).contains(n))
                    .ok_or(
                        "Approval needs a number of customers (0 or more), or leave it empty."
                            .to_string(),
                    )?,
            ),
        };
        let cost = match c {
            "" => None,
            c => Some(parse_amount(c).ok_or(
                "Approval needs a cost like 100 or 250.50, or leave it empty.".to_string(),
            )?),
        };
        Ok(Some(Approval { customers, cost }))
    }

    /// The frequency cap typed: none when both fields are empty.
    fn cap(&self) -> Result<Option<Cap>, String> {
        let (max, days) = (self.cap_max.trim(), self.cap_days.trim());
        if max.is_empty() && days.is_empty() {
            return Ok(None);
        }
        match (max.parse::<u32>(), days.parse::<u32>()) {
            (Ok(max), Ok(days))
                if (1..=MAX_CAP_BROADCASTS).contains(&max)
                    && (1..=MAX_CAP_DAYS).contains(&days) =>
            {
                Ok(Some(Cap { max, days }))
            }
            _ => Err(format!(
                "The frequency cap needs a number of broadcasts (1–{MAX_CAP_BROADCASTS}) and of days (1–{MAX_CAP_DAYS}), or neither."
            )),
        }
    }
}

/// Stores what `admin` (whose role was checked) posted; the notice, or the problems.
pub async fn save(
    state: &AppState,
    admin: &CurrentUser,
    form: &SettingsForm,
) -> Result<String, String> {
    let rules = form.rules().map_err(|e| e.join(" "))?;
    let changed = state
        .db
        .save_workspace_rules(&rules, Some(admin.id), state.clock.now())
        .await
        .map_err(|e| AppError::from(e).to_string())?;
    Ok(if changed.is_empty() {
        "Nothing changed.".into()
    } else {
        format!("Saved: {changed}.")
    })
}

/// The Settings page for `viewer` (an admin).
pub async fn page(
    state: &AppState,
    viewer: &CurrentUser,
) -> Result<crate::model::workspace::SettingsPage, AppError> {
    let (rules, updated) = state.db.workspace_rules().await?;
    let tz = timefmt::zone(&viewer.time_zone);
    Ok(crate::model::workspace::SettingsPage {
        rules,
        updated: updated.map(|(at, by)| {
            format!(
                "Last changed {}{}.",
                timefmt::local(at, tz),
                by.map(|b| format!(" by {b}")).unwrap_or_default()
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_rules_or_names_every_problem() {
        let form = SettingsForm {
            time_zone: " Europe/Berlin ".into(),
            quiet: Some("on".into()),
            quiet_from: "21:00".into(),
            quiet_to: "08:00".into(),
            prefixes: "+1 21:00-08:00".into(),
            consent_sms: Some("on".into()),
            cap_max: "2".into(),
            cap_days: "7".into(),
            currency: "eur".into(),
            prices: "sms 0.0079\nwhatsapp marketing +49 0.1365".into(),
            approval_customers: "500".into(),
            ..Default::default()
        };
        let rules = form.rules().unwrap();
        assert_eq!(rules.prices.currency, "EUR");
        assert_eq!(rules.prices.lines.len(), 2);
        assert_eq!(
            rules.approval,
            Some(Approval {
                customers: Some(500),
                cost: None
            })
        );
        assert_eq!(rules.time_zone, "Europe/Berlin");
        assert_eq!(rules.quiet.unwrap().label(), "21:00–08:00");
        assert_eq!(rules.quiet_by_prefix.len(), 1);
        assert_eq!(rules.consent_kinds, vec!["sms".to_string()]);
        assert_eq!(rules.frequency_cap, Some(Cap { max: 2, days: 7 }));
        let off = SettingsForm {
            quiet: None,
            quiet_from: "nonsense".into(),
            ..form.clone()
        };
        assert_eq!(off.rules().unwrap().quiet, None);
        let bad = SettingsForm {
            time_zone: "Mars/Olympus".into(),
            quiet_from: "25:00".into(),
            prefixes: "44 none".into(),
            cap_days: "".into(),
            currency: "dollars".into(),
            prices: "fax 1".into(),
            approval_cost: "lots".into(),
            ..form
        };
        assert_eq!(bad.rules().unwrap_err().len(), 7);
    }
}
