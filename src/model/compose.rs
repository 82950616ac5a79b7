//! What the broadcast wizard saves: content, audience, channels and time, checked before
//! anything is stored. The server turns the typed local time into UTC (it holds the time-zone
//! database) and hands it here as `scheduled_at`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Lifecycle;
use super::audience::AudienceRule;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 4096;

/// What the person asked for with the save button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// Keep it as a draft: only the name must be there.
    Draft,
    /// Send at `scheduled_at`.
    Schedule,
    /// Send as soon as possible.
    SendNow,
}

pub use super::media::AttachmentRef;

/// Most attachments one broadcast may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// The wizard's fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Compose {
    pub name: String,
    pub body: String,
    pub audience: AudienceRule,
    /// Connected channels in priority order.
    pub channel_ids: Vec<i64>,
    /// The chosen send time in UTC, if one was chosen.
    pub scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
    /// On WhatsApp: the approved template it sends (customers outside their 24-hour window
    /// can get nothing else).
    #[serde(default)]
    pub template: Option<super::template::TemplateChoice>,
    #[serde(default)]
    pub timing: Timing,
    /// Marketing or service: consent rules and the frequency cap apply to marketing.
    #[serde(default)]
    pub purpose: super::consent::Purpose,
    /// An A/B test: further variants of the message and how the audience is split. Left out
    /// of the stored JSON when off, so a broadcast stored before keeps its fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab: Option<super::ab::AbPlan>,
}

/// Most hours a broadcast may be set to expire after (30 days).
pub const MAX_EXPIRE_HOURS: u32 = 720;
/// Most hours a channel may be given to deliver before the next one is tried (a week).
pub const MAX_FALLBACK_HOURS: u32 = 168;
/// Longest reason for an exemption from quiet hours.
pub const MAX_REASON_CHARS: usize = 500;

/// How a broadcast meets each recipient's clock, beyond its time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timing {
    /// This wall-clock time in each customer's own zone (the workspace's for customers
    /// without one); `scheduled_at` is then its first wave.
    #[serde(default)]
    pub local_at: Option<chrono::NaiveDateTime>,
    /// What has not gone this many hours after it starts is not sent: expired.
    #[serde(default)]
    pub expire_hours: Option<u32>,
    /// An admin's reason for sending through quiet hours.
    #[serde(default)]
    pub quiet_exempt: Option<String>,
    /// Fallback: a channel that has not delivered within this many hours, or failed for
    /// good, hands the customer to the next picked channel that reaches them. Left out of
    /// the stored JSON when off, so a broadcast stored before keeps its fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_hours: Option<u32>,
}

impl Timing {
    /// The timing `intent` keeps ("Send now" is one moment for everyone); its problems go to
    /// `errors`, each with its field.
    fn checked(&self, intent: Intent, errors: &mut Vec<(&'static str, String)>) -> Timing {
        self.problems(errors);
        let mut timing = self.clone();
        if intent == Intent::SendNow {
            timing.local_at = None;
        }
        timing
    }

    /// Problems with the fields, each with its field.
    fn problems(&self, errors: &mut Vec<(&'static str, String)>) {
        if self
            .expire_hours
            .is_some_and(|h| h == 0 || h > MAX_EXPIRE_HOURS)
        {
            errors.push((
                "expire_hours",
                format!("Choose an expiry between 1 and {MAX_EXPIRE_HOURS} hours, or none."),
            ));
        }
        if self
            .fallback_hours
            .is_some_and(|h| h == 0 || h > MAX_FALLBACK_HOURS)
        {
            errors.push((
                "fallback_hours",
                format!("Give the channel between 1 and {MAX_FALLBACK_HOURS} hours to deliver."),
            ));
        }
        if let Some(r) = &self.quiet_exempt
            && (r.trim().is_empty() || r.chars().count() > MAX_REASON_CHARS)
        {
            errors.push((
                "quiet_exempt",
                format!("Give the reason for sending in quiet hours (up to {MAX_REASON_CHARS} characters)."),
            ));
        }
    }
}

/// A broadcast ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidBroadcast {
    pub name: String,
    pub body: String,
    pub audience: AudienceRule,
    pub channel_ids: Vec<i64>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub attachments: Vec<AttachmentRef>,
    pub template: Option<super::template::TemplateChoice>,
    pub timing: Timing,
    pub purpose: super::consent::Purpose,
    pub ab: Option<super::ab::AbPlan>,
    /// `draft` or `scheduled`.
    pub status: Lifecycle,
}

impl Compose {
    /// Checks every field for `intent`; all problems at once, each with its field.
    pub fn validate(
        &self,
        intent: Intent,
        now: DateTime<Utc>,
    ) -> Result<ValidBroadcast, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            errors.push((
                "name",
                format!("Enter a name of up to {MAX_NAME_CHARS} characters."),
            ));
        }
        let body = self.body.trim_end().to_string();
        too_long(&body, "", &mut errors);
        let mut channel_ids = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in &self.channel_ids {
            if seen.insert(*id) {
                channel_ids.push(*id);
            }
        }
        let timing = self.timing.checked(intent, &mut errors);
        if intent != Intent::Draft && timing.fallback_hours.is_some() && channel_ids.len() < 2 {
            errors.push((
                "fallback_hours",
                "A fallback needs a second channel: pick at least two, or turn it off.".into(),
            ));
        }
        let scheduled_at = match intent {
            Intent::Draft => self.scheduled_at,
            Intent::SendNow => Some(now),
            Intent::Schedule => match self.scheduled_at {
                None => {
                    errors.push(("scheduled_at", "Choose when to send it.".into()));
                    None
                }
                Some(t) if t <= now => {
                    errors.push((
                        "scheduled_at",
                        "That time has passed: choose a time in the future, or send now.".into(),
                    ));
                    None
                }
                Some(t) => Some(t),
            },
        };
        if intent != Intent::Draft {
            unsendable(&body, !self.attachments.is_empty(), "", &mut errors);
        }
        let ab = self.checked_ab(intent, &mut errors);
        if intent != Intent::Draft && channel_ids.is_empty() {
            errors.push(("channels", "Choose at least one channel.".into()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidBroadcast {
            name,
            body,
            audience: self.audience.clone(),
            channel_ids,
            scheduled_at,
            attachments: self.attachments.clone(),
            template: self.template.clone(),
            timing,
            purpose: self.purpose,
            ab,
            status: if intent == Intent::Draft {
                Lifecycle::Draft
            } else {
                Lifecycle::Scheduled
            },
        })
    }
}

/// A message text over the limit (`who`: "" for the broadcast's own, "Variant B: " for a
/// variant).
fn too_long(body: &str, who: &str, errors: &mut Vec<(&'static str, String)>) {
    if body.chars().count() > MAX_BODY_CHARS {
        errors.push((
            "body",
            format!("{who}The message is longer than {MAX_BODY_CHARS} characters."),
        ));
    }
}

/// What keeps a message from being sent: empty without files, or a placeholder it cannot
/// fill (a draft keeps whatever was typed).
fn unsendable(body: &str, has_files: bool, who: &str, errors: &mut Vec<(&'static str, String)>) {
    if body.trim().is_empty() && !has_files {
        errors.push(("body", format!("{who}Write the message or attach a file.")));
    }
    if let Some(p) = super::personalize::problem(body) {
        errors.push(("body", format!("{who}{p}")));
    }
}

impl Compose {
    /// The A/B test as kept: each variant's text trimmed at its end and checked like the
    /// broadcast's own, and the plan's settings (a draft keeps unfinished settings).
    fn checked_ab(
        &self,
        intent: Intent,
        errors: &mut Vec<(&'static str, String)>,
    ) -> Option<super::ab::AbPlan> {
        let mut ab = self.ab.clone()?;
        for (i, v) in ab.variants.iter_mut().enumerate() {
            v.body = v.body.trim_end().to_string();
            let who = format!("Variant {}: ", super::ab::letter(i + 1));
            too_long(&v.body, &who, errors);
            if intent != Intent::Draft {
                unsendable(&v.body, !v.attachments.is_empty(), &who, errors);
            }
            if v.attachments.len() > MAX_ATTACHMENTS {
                errors.push((
                    "body",
                    format!("{who}a message can carry at most {MAX_ATTACHMENTS} files."),
                ));
            }
        }
        if intent != Intent::Draft {
            ab.problems(self.timing.expire_hours, errors);
        } else if ab.count() > super::ab::MAX_VARIANTS {
            ab.variants.truncate(super::ab::MAX_VARIANTS - 1);
        }
        Some(ab)
    }

    /// Shows variant `n` (1 is B) as the broadcast's own message: swaps their text, files
    /// and template; the same call swaps them back. False (and nothing swapped) when there
    /// is no such variant.
    pub fn swap_variant(&mut self, n: usize) -> bool {
        let Compose {
            body,
            attachments,
            template,
            ab,
            ..
        } = self;
        let Some(v) = ab
            .as_mut()
            .and_then(|a| a.variants.get_mut(n.wrapping_sub(1)))
        else {
            return false;
        };
        std::mem::swap(body, &mut v.body);
        std::mem::swap(attachments, &mut v.attachments);
        std::mem::swap(template, &mut v.template);
        true
    }

    /// Each variant's message in turn as the broadcast's own (A first): (letter, compose).
    pub fn variant_views(&self) -> Vec<(char, Compose)> {
        let n = self.ab.as_ref().map_or(1, super::ab::AbPlan::count);
        (0..n)
            .map(|i| {
                let mut c = self.clone();
                c.swap_variant(i);
                (super::ab::letter(i), c)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn filled() -> Compose {
        Compose {
            name: " Winter sale ".into(),
            body: "Hi {{first_name}} 👋".into(),
            audience: AudienceRule::default(),
            channel_ids: vec![2, 1, 2],
            scheduled_at: Some(now() + chrono::Duration::hours(1)),
            attachments: Vec::new(),
            template: None,
            timing: Timing::default(),
            purpose: Default::default(),
            ab: None,
        }
    }

    #[test]
    fn a_draft_needs_only_a_name() {
        let v = Compose {
            name: "Idea".into(),
            ..Default::default()
        }
        .validate(Intent::Draft, now())
        .unwrap();
        assert_eq!(v.status, Lifecycle::Draft);
        let e = Compose::default()
            .validate(Intent::Draft, now())
            .unwrap_err();
        assert_eq!(e.iter().map(|(f, _)| *f).collect::<Vec<_>>(), vec!["name"]);
    }

    #[test]
    fn scheduling_needs_text_channels_and_a_future_time() {
        let v = filled().validate(Intent::Schedule, now()).unwrap();
        assert_eq!(v.name, "Winter sale");
        assert_eq!(v.channel_ids, vec![2, 1], "duplicates dropped, order kept");
        assert_eq!(v.status, Lifecycle::Scheduled);
        let past = Compose {
            scheduled_at: Some(now() - chrono::Duration::minutes(1)),
            ..filled()
        };
        let e = past.validate(Intent::Schedule, now()).unwrap_err();
        assert!(e[0].1.contains("passed"), "{e:?}");
        assert_eq!(
            past.validate(Intent::SendNow, now()).unwrap().scheduled_at,
            Some(now())
        );
        let empty = Compose {
            name: "x".into(),
            ..Default::default()
        };
        let fields: Vec<_> = empty
            .validate(Intent::Schedule, now())
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, vec!["scheduled_at", "body", "channels"]);
        let long = Compose {
            body: "x".repeat(MAX_BODY_CHARS + 1),
            ..filled()
        };
        assert_eq!(
            long.validate(Intent::Draft, now()).unwrap_err()[0].0,
            "body"
        );
        let unknown = Compose {
            body: "Hi {{nick}}".into(),
            ..filled()
        };
        let e = unknown.validate(Intent::SendNow, now()).unwrap_err();
        assert_eq!(e[0].0, "body");
        assert!(e[0].1.contains("{{nick}}"), "{e:?}");
    }
}

/// A channel the wizard offers, with how many of the audience it would reach where it stands
/// in the chosen priority order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelChoice {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// Its place in the priority order (1 = first), if picked.
    pub priority: Option<usize>,
    /// Customers reached on it (each on the first picked channel that reaches them).
    pub reached: i64,
}

/// Everything a wizard step shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WizardPage {
    /// `None` while the broadcast has not been saved yet.
    pub id: Option<i64>,
    /// Makes a repeated first save find the same broadcast.
    pub key: String,
    pub step: u8,
    /// The variant steps 1 and 3 show (0 is A): `compose`'s message is that variant's.
    #[serde(default)]
    pub variant: usize,
    pub compose: Compose,
    /// The send time as the person's wall clock (`2026-12-24T09:30`), for the time field.
    pub send_at_local: String,
    pub time_zone: String,
    pub status: Lifecycle,
    /// Why it cannot be edited, once it has started.
    pub locked: Option<String>,
    /// Paused (the list's toggle); only scheduled and sending broadcasts can be.
    pub paused: bool,
    /// Scheduled or sending: it can still be paused or cancelled.
    pub stoppable: bool,
    /// The person may pause and resume (admins).
    /// Messages accepted so far, and those not yet sent (nor failed), for the cancel question.
    pub sent: i64,
    pub unsent: i64,
    pub can_pause: bool,
    pub can_edit: bool,
    pub tags: Vec<(i64, String)>,
    pub groups: Vec<(i64, String)>,
    /// Customers the rule matches, opted-out ones left out.
    pub matching: i64,
    pub sample: Vec<String>,
    pub channels: Vec<ChannelChoice>,
    /// Matching customers no picked channel reaches.
    pub unreachable: i64,
    /// The name the message preview is filled in for: a customer of the audience.
    pub sample_name: String,
    /// A WhatsApp channel is picked: an approved template is needed (step 3).
    pub needs_template: bool,
    /// The first picked WhatsApp channel's templates, as last synced.
    pub templates: Vec<super::template::Template>,
    /// What keeps the chosen template from going, in plain words.
    pub template_problems: Vec<String>,
    /// The chosen template's body filled in for the sample customer.
    pub template_preview: Option<Vec<String>>,
    /// Step 3 with WhatsApp: of the customers WhatsApp reaches (the second figure), how many
    /// wrote to its number within 24 hours (the first).
    pub in_window: Option<(i64, i64)>,
    /// Step 3: who the workspace's rules will leave out, and why (consent, the cap).
    pub left_out: Vec<String>,
    /// A follow-up's frozen audience, in words (`The 1,204 recipients of “X” who did not read
    /// (as of …)`).
    #[serde(default)]
    pub frozen: Option<String>,
    /// A draft's approval: `pending`, `approved` or `rejected`, with why or the comment.
    #[serde(default)]
    pub approval: Option<(String, String)>,
    /// The estimated cost by the workspace's price table (step 3; none without prices).
    #[serde(default)]
    pub cost: Option<String>,
    /// The workspace's quiet hours (`21:00–08:00`), when it has them.
    pub quiet_hours: Option<String>,
    /// The zone customers without one of their own follow.
    pub workspace_zone: String,
    /// How the picked channels carry the files, where it differs from what was attached.
    pub media_notes: Vec<String>,
    /// Files a picked channel cannot carry at all: the broadcast cannot be scheduled.
    pub media_problems: Vec<String>,
}

/// The live count of the audience editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudiencePreview {
    pub matching: i64,
    pub sample: Vec<String>,
}
