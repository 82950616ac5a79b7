//! The workspace's Settings page: reading the admin's form into [`Rules`] (every problem at
//! once) and storing them, audited.

use crate::model::workspace::{Rules, Window, parse_hhmm, parse_prefixes};
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
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Rules {
            time_zone: zone.to_string(),
            quiet,
            quiet_by_prefix: prefixes,
        })
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
        };
        let rules = form.rules().unwrap();
        assert_eq!(rules.time_zone, "Europe/Berlin");
        assert_eq!(rules.quiet.unwrap().label(), "21:00–08:00");
        assert_eq!(rules.quiet_by_prefix.len(), 1);
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
            ..form
        };
        assert_eq!(bad.rules().unwrap_err().len(), 3);
    }
}
