//! The broadcast wizard on the server: what each step shows, and what a step's post does
//! (`POST /broadcasts/wizard`, which every step's form posts to). Each post stores what was typed in the draft (so leaving
//! midway loses nothing) and moves to the asked step; the last step schedules it.

use crate::model::AppError;
use crate::model::audience::{AudienceRule, Condition, Field, MAX_CONDITIONS, Match, Op};
use crate::model::channel::ChannelKind;
use crate::model::compose::{
    AttachmentRef, AudiencePreview, ChannelChoice, Compose, Intent, MAX_ATTACHMENTS, WizardPage,
};
use crate::model::list_query::encode_component;
use crate::model::list_query::with_param;
use crate::model::{CurrentUser, Role};
use crate::server::AppState;
use crate::server::db::ComposeError;
use crate::server::timefmt;

/// Names shown as a sample of the audience.
const SAMPLE: usize = 5;
/// Condition rows are named `cond_{key}_…`; the editor's keys grow as rows come and go.
const MAX_ROW_KEY: usize = 1000;

fn locked_reason(status: &str) -> Option<String> {
    match status {
        "draft" | "scheduled" => None,
        "sending" => Some(
            "This broadcast is sending: it can no longer be edited. You can pause or cancel it, or copy it into a new draft."
                .to_string(),
        ),
        s => Some(format!(
            "This broadcast is {s}: it can no longer be edited. You can copy it into a new draft."
        )),
    }
}

/// What wizard step `step` shows for broadcast `id` (or a new one).
pub async fn page(
    state: &AppState,
    user: &CurrentUser,
    id: Option<i64>,
    step: u8,
) -> Result<WizardPage, AppError> {
    let db = &state.db;
    let (compose, status, paused) = match id {
        Some(id) => {
            let (c, status, _) = db.broadcast_for_edit(id).await.map_err(compose_error)?;
            let paused = db.broadcast(id).await?.paused;
            (c, status, paused)
        }
        None => (Compose::default(), "draft".to_string(), false),
    };
    let tz = timefmt::zone(&user.time_zone);
    let send_at_local = compose
        .scheduled_at
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default();
    let tags = db
        .labels(crate::server::db::LabelKind::Tag)
        .await?
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect();
    let groups = db
        .labels(crate::server::db::LabelKind::RobotGroup)
        .await?
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect();
    let all = db.enabled_channels().await?;
    let picked: Vec<(i64, ChannelKind)> = compose
        .channel_ids
        .iter()
        .filter_map(|id| all.iter().find(|c| c.id == *id).map(|c| (c.id, c.kind)))
        .collect();
    let kinds: Vec<ChannelKind> = picked.iter().map(|(_, k)| *k).collect();
    let step = step.clamp(1, 3);
    // The audience queries take up to seconds at a million customers: only the steps that
    // show them run them (step 2 the count and sample, step 3 the per-channel breakdown).
    let breakdown = if step == 1 {
        crate::server::db::Breakdown::default()
    } else {
        db.audience_breakdown(&compose.audience, if step == 3 { &kinds } else { &[] })
            .await?
    };
    let matching = breakdown.reachable() + breakdown.unreachable;
    // The preview on step 1 is filled in for one customer of the audience.
    let sample_name = if step == 1 {
        db.audience_first_name(&compose.audience).await?
    } else {
        None
    }
    .unwrap_or_else(|| "Ann Example".to_string());
    let sample = if step == 2 {
        db.audience_sample(&compose.audience, &[ChannelKind::Webhook], SAMPLE)
            .await?
    } else {
        Vec::new()
    };
    let channels = all
        .into_iter()
        .map(|c| {
            let priority = picked.iter().position(|(p, _)| *p == c.id);
            ChannelChoice {
                id: c.id,
                name: c.name,
                kind: c.kind.as_str().to_string(),
                priority: priority.map(|p| p + 1),
                reached: priority
                    .and_then(|p| breakdown.per_kind.get(p).copied())
                    .unwrap_or(0),
            }
        })
        .collect();
    Ok(WizardPage {
        id,
        key: crate::server::accounts::auth::new_session_token()[..32].to_string(),
        step,
        locked: locked_reason(&status),
        paused,
        stoppable: status == "scheduled" || status == "sending",
        can_pause: user.role == Role::Admin,
        status,
        compose,
        send_at_local,
        time_zone: user.time_zone.clone(),
        can_edit: user.role.can_edit(),
        tags,
        groups,
        matching,
        sample,
        channels,
        unreachable: breakdown.unreachable,
        sample_name,
    })
}

/// The audience editor's live count: matching customers (opted-out ones left out) and the
/// first names of them.
pub async fn preview(state: &AppState, rule: AudienceRule) -> Result<AudiencePreview, AppError> {
    if rule.conditions.len() > MAX_CONDITIONS {
        return Err(AppError::BadRequest(format!(
            "A rule may hold at most {MAX_CONDITIONS} conditions."
        )));
    }
    let db = &state.db;
    let breakdown = db.audience_breakdown(&rule, &[]).await?;
    let sample = db
        .audience_sample(&rule, &[ChannelKind::Webhook], SAMPLE)
        .await?;
    Ok(AudiencePreview {
        matching: breakdown.reachable() + breakdown.unreachable,
        sample,
    })
}

fn compose_error(e: ComposeError) -> AppError {
    match e {
        ComposeError::NotFound => AppError::NotFound("No such broadcast.".into()).with_status(),
        ComposeError::Started(s) => {
            AppError::Conflict(locked_reason(&s).unwrap_or_else(|| "It cannot be edited.".into()))
                .with_status()
        }
        ComposeError::Db(e) => e.into(),
    }
}

/// One posted condition row: kind, test and value, each as far as it was chosen.
type ConditionRow = (Option<Field>, Option<Op>, Option<i64>);

/// The posted form, as far as it goes: each step sends only its own fields.
#[derive(Debug, Default)]
pub struct Posted {
    id: Option<i64>,
    key: String,
    step: u8,
    go: String,
    name: Option<String>,
    body: Option<String>,
    send_at: Option<String>,
    matching: Option<String>,
    conditions: Vec<(usize, ConditionRow)>,
    channel_step: bool,
    channels: Vec<(i64, Option<usize>)>,
    /// Step 1 lists the broadcast's files as `attachment` fields (removing one drops its field).
    attachments_shown: bool,
    attachments: Vec<String>,
    /// Who a test goes to (name, phone or email).
    test_to: Option<String>,
}

/// Reads a step's fields (each step posts only its own).
pub fn parse(fields: &[(String, String)]) -> Posted {
    let mut p = Posted {
        step: 1,
        ..Default::default()
    };
    let mut conds: std::collections::BTreeMap<usize, ConditionRow> = Default::default();
    let mut prio: std::collections::HashMap<i64, usize> = Default::default();
    let mut picked = Vec::new();
    for (k, v) in fields {
        let v = v.clone();
        match k.as_str() {
            "id" => p.id = v.parse().ok(),
            "key" => {
                p.key = v
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(64)
                    .collect()
            }
            "step" => p.step = v.parse().unwrap_or(1),
            "go" => p.go = v,
            "name" => p.name = Some(v),
            "body" => p.body = Some(v),
            "send_at" => p.send_at = Some(v),
            "match" => p.matching = Some(v),
            "channels_shown" => p.channel_step = true,
            "attachments_shown" => p.attachments_shown = true,
            "test_to" => p.test_to = Some(v),
            "attachment" => {
                if v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric()) {
                    p.attachments.push(v);
                }
            }
            "channel" => {
                if let Ok(id) = v.parse::<i64>() {
                    picked.push(id);
                }
            }
            k => {
                if let Some(rest) = k.strip_prefix("prio_")
                    && let (Ok(id), Ok(n)) = (rest.parse::<i64>(), v.trim().parse::<usize>())
                {
                    prio.insert(id, n);
                } else if let Some(rest) = k.strip_prefix("cond_")
                    && let Some((n, part)) = rest.split_once('_')
                    && let Ok(n) = n.parse::<usize>()
                    && n < MAX_ROW_KEY
                {
                    let e = conds.entry(n).or_default();
                    match part {
                        "field" if e.2.is_none() => {
                            e.0 = match v.as_str() {
                                "tag" => Some(Field::Tag),
                                "robot_group" => Some(Field::RobotGroup),
                                _ => None,
                            }
                        }
                        "op" => {
                            e.1 = match v.as_str() {
                                "is" => Some(Op::Is),
                                "is_not" => Some(Op::IsNot),
                                _ => None,
                            }
                        }
                        // `tag:3` / `robot_group:5` (the value names its kind), or a bare id.
                        "id" => match Field::parse_choice(&v) {
                            Some((f, id)) => {
                                e.0 = Some(f);
                                e.2 = Some(id);
                            }
                            None => e.2 = v.parse().ok(),
                        },
                        _ => {}
                    }
                }
            }
        }
    }
    p.conditions = conds.into_iter().collect();
    p.channels = picked
        .into_iter()
        .map(|id| (id, prio.get(&id).copied()))
        .collect();
    p
}

fn to_step(id: i64, step: u8, error: Option<&str>) -> String {
    let url = format!("/broadcasts/{id}/edit?step={step}");
    match error {
        Some(e) => with_param(&url, "error", e),
        None => url,
    }
}

/// A file attached on step 1 (multipart posts): stored, or why not.
pub type Upload = Result<AttachmentRef, String>;

/// Stores what a wizard step posted and says where the browser goes next (the next step, the
/// same step with an error, or the list with a notice).
pub async fn save(
    state: &AppState,
    user: &CurrentUser,
    p: Posted,
    upload: Option<Upload>,
) -> String {
    let now = state.clock.now();
    let db = &state.db;
    let mut was_scheduled = false;
    let mut compose = match p.id {
        Some(id) => match db.broadcast_for_edit(id).await {
            Ok((c, status, _)) => {
                if let Some(reason) = locked_reason(&status) {
                    return to_step(id, p.step, Some(&reason));
                }
                was_scheduled = status == "scheduled";
                c
            }
            Err(_) => return with_param("/", "error", "No such broadcast."),
        },
        None => Compose::default(),
    };
    // Merge what this step sent.
    let mut problems: Vec<String> = Vec::new();
    if let Some(n) = p.name {
        compose.name = n;
    }
    if let Some(b) = p.body {
        compose.body = b;
    }
    if let Some(s) = &p.send_at {
        if s.trim().is_empty() {
            compose.scheduled_at = None;
        } else {
            match timefmt::local_to_utc(s, timefmt::zone(&user.time_zone)) {
                Ok(t) => compose.scheduled_at = Some(t),
                Err(e) => problems.push(e),
            }
        }
    }
    if let Some(m) = &p.matching {
        compose.audience.matching = if m == "any" { Match::Any } else { Match::All };
        let remove: Option<usize> = p.go.strip_prefix("remove_").and_then(|n| n.parse().ok());
        compose.audience.conditions = p
            .conditions
            .iter()
            .filter(|(n, _)| Some(*n) != remove)
            .filter_map(|(_, (f, o, i))| {
                Some(Condition {
                    field: (*f)?,
                    op: (*o)?,
                    id: (*i)?,
                })
            })
            .take(MAX_CONDITIONS)
            .collect();
    }
    if p.attachments_shown {
        // Files still listed, in their order: ones the draft had, and ones uploaded since.
        let mut kept = Vec::new();
        for id in p.attachments.iter().take(MAX_ATTACHMENTS) {
            if kept.iter().any(|a: &AttachmentRef| &a.id == id) {
                continue;
            }
            if let Some(a) = compose.attachments.iter().find(|a| &a.id == id) {
                kept.push(a.clone());
            } else if let Ok(Some(a)) = db.attachment(id).await {
                kept.push(a);
            }
        }
        compose.attachments = kept;
    }
    match upload {
        Some(Ok(a)) if compose.attachments.len() < MAX_ATTACHMENTS => compose.attachments.push(a),
        Some(Ok(_)) => problems.push(format!(
            "A broadcast can carry at most {MAX_ATTACHMENTS} files."
        )),
        Some(Err(m)) => problems.push(m),
        None => {}
    }
    if let Some(gone) = p.go.strip_prefix("detach_") {
        compose.attachments.retain(|a| a.id != gone);
    }
    if p.channel_step {
        let mut chosen = p.channels.clone();
        // Unnumbered picks go after numbered ones, in the order shown.
        chosen.sort_by_key(|(_, n)| n.unwrap_or(usize::MAX));
        compose.channel_ids = chosen.into_iter().map(|(id, _)| id).collect();
    }
    let intent = match p.go.as_str() {
        "schedule" => Intent::Schedule,
        "now" => Intent::SendNow,
        _ => Intent::Draft,
    };
    // Always keep what was typed: a scheduled broadcast stays scheduled while it is still
    // valid as one; anything else is kept as a draft (only a name is needed for that).
    let kept = if was_scheduled {
        compose
            .validate(Intent::Schedule, now)
            .or_else(|_| compose.validate(Intent::Draft, now))
    } else {
        compose.validate(Intent::Draft, now)
    };
    let draft = match kept {
        Ok(v) => v,
        Err(errors) => {
            let message = errors
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join(" ");
            let url = match p.id {
                Some(id) => format!(
                    "/broadcasts/{id}/edit?step=1&error={}",
                    encode_component(&message)
                ),
                None => format!(
                    "/broadcasts/new?error={}&body={}",
                    encode_component(&message),
                    encode_component(&compose.body)
                ),
            };
            return url;
        }
    };
    let id = match p.id {
        Some(id) => match db.update_broadcast(id, &draft, user.id, now).await {
            Ok(()) => id,
            Err(ComposeError::Started(s)) => {
                return to_step(id, p.step, locked_reason(&s).as_deref());
            }
            Err(e) => {
                tracing::error!(error = ?e, "saving a draft failed");
                return to_step(
                    id,
                    p.step,
                    Some("The draft could not be saved; please try again."),
                );
            }
        },
        None => {
            let key = if p.key.len() >= 16 {
                p.key.clone()
            } else {
                crate::server::accounts::auth::new_session_token()[..32].to_string()
            };
            match db.create_broadcast(&draft, user.id, &key, now).await {
                Ok((id, _)) => id,
                Err(e) => {
                    tracing::error!(error = ?e, "creating a draft failed");
                    return with_param(
                        "/broadcasts/new",
                        "error",
                        "The draft could not be saved; please try again.",
                    );
                }
            }
        }
    };
    if let Some(first) = problems.first() {
        return to_step(id, p.step, Some(first));
    }
    if p.go == "test" || p.go == "test_me" {
        let who = if p.go == "test_me" {
            super::test_send::Who::Me
        } else {
            super::test_send::Who::Typed(p.test_to.clone().unwrap_or_default())
        };
        let back = format!("/broadcasts/{id}/edit?step={}", p.step);
        let mut url = back.clone();
        match super::test_send::test_send(state, user, Some(id), &compose, who).await {
            Ok(notice) => url.push_str(&format!("&notice={}", encode_component(&notice))),
            Err(e) => url.push_str(&format!("&error={}", encode_component(&e))),
        }
        if let Some(t) = &p.test_to {
            url.push_str(&format!("&test_to={}", encode_component(t)));
        }
        return url;
    }
    let next = match p.go.as_str() {
        "next" => p.step.saturating_add(1).min(3),
        "back" => p.step.saturating_sub(1).max(1),
        "draft" => {
            return with_param(
                "/",
                "notice",
                &if draft.status == "scheduled" {
                    format!("Saved “{}”; it is still scheduled.", draft.name)
                } else {
                    format!("Saved the draft “{}”.", draft.name)
                },
            );
        }
        "schedule" | "now" => {
            return match compose.validate(intent, now) {
                Ok(v) => match db.update_broadcast(id, &v, user.id, now).await {
                    Ok(()) => {
                        state.dispatcher.poke();
                        let notice = if intent == Intent::SendNow {
                            format!("“{}” is being sent now.", v.name)
                        } else {
                            format!(
                                "“{}” is scheduled for {}.",
                                v.name,
                                v.scheduled_at
                                    .map(|t| timefmt::local(t, timefmt::zone(&user.time_zone)))
                                    .unwrap_or_default()
                            )
                        };
                        format!("/?notice={}", encode_component(&notice))
                    }
                    Err(e) => to_step(id, 3, Some(&compose_error(e).to_string())),
                },
                Err(errors) => {
                    let (field, _) = errors[0];
                    let step = match field {
                        "name" | "body" | "scheduled_at" => 1,
                        _ => 3,
                    };
                    let message = errors
                        .into_iter()
                        .map(|(_, m)| m)
                        .collect::<Vec<_>>()
                        .join(" ");
                    to_step(id, step, Some(&message))
                }
            };
        }
        _ => p.step,
    };
    // Step 1 checks its own fields before moving on.
    if p.step == 1 && next > 1 {
        let check = compose
            .validate(Intent::SendNow, now)
            .err()
            .unwrap_or_default();
        if let Some((_, m)) = check.into_iter().find(|(f, _)| *f == "body") {
            return to_step(id, 1, Some(&m));
        }
    }
    to_step(id, next, None)
}

/// A new draft from any broadcast; where to open it (the wizard's first step).
pub async fn copy(state: &AppState, user: &CurrentUser, id: i64) -> String {
    match state
        .db
        .copy_broadcast(id, user.id, state.clock.now())
        .await
    {
        Ok(copy) => to_step(copy, 1, None),
        Err(ComposeError::NotFound) => with_param("/", "error", "No such broadcast."),
        Err(e) => {
            tracing::error!(error = ?e, "copying a broadcast failed");
            with_param(
                "/",
                "error",
                "The copy could not be made; please try again.",
            )
        }
    }
}
