//! The broadcast wizard on the server: what each step shows, and what a step's post does
//! (`POST /broadcasts/wizard`, which every step's form posts to). Each post stores what was typed in the draft (so leaving
//! midway loses nothing) and moves to the asked step; the last step schedules it.

use crate::model::AppError;
use crate::model::BroadcastId;
use crate::model::audience::{AudienceRule, Condition, Field, MAX_CONDITIONS, Match, Op};
use crate::model::channel::ChannelKind;
use chrono::{DateTime, Utc};

use crate::model::compose::{
    AttachmentRef, AudiencePreview, ChannelChoice, Compose, Intent, MAX_ATTACHMENTS,
    ValidBroadcast, WizardPage,
};
use crate::model::consent::Purpose;
use crate::model::list_query::with_param;
use crate::model::{CurrentUser, Lifecycle, Role};
use crate::server::AppState;
use crate::server::db::{Breakdown, ComposeError, Db, EnabledChannel, LabelKind};
use crate::server::timefmt;

use super::compose_ab::{AbPosted, merge_ab, with_variant};

/// Names shown as a sample of the audience.
const SAMPLE: usize = 5;
/// Condition rows are named `cond_{key}_…`; the editor's keys grow as rows come and go.
const MAX_ROW_KEY: usize = 1000;
/// Channels one post may pick (far more than any workspace connects); more are ignored.
pub const MAX_PICKED_CHANNELS: usize = 64;
/// Template parameter fields one post may carry (3 per parameter).
const MAX_TEMPLATE_FIELDS: usize = 300;

fn locked_reason(status: Lifecycle) -> Option<String> {
    match status {
        Lifecycle::Draft | Lifecycle::Scheduled => None,
        Lifecycle::Sending => Some(
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
    variant: usize,
) -> Result<WizardPage, AppError> {
    let db = &state.db;
    let (mut compose, status, paused, sent, unsent) = opened(db, id).await?;
    // Steps 1 and 3 show one variant's message through the broadcast's own fields.
    let variant = if variant > 0 && compose.swap_variant(variant) {
        variant
    } else {
        0
    };
    let tz = timefmt::zone(&user.time_zone);
    let send_at_local = typed_time(&compose, tz);
    let (rules, _) = db.workspace_rules().await?;
    let (tags, groups) = label_choices(db).await?;
    let all = db.enabled_channels().await?;
    let picked = EnabledChannel::picked(&all, &compose.channel_ids);
    let kinds: Vec<ChannelKind> = picked.iter().map(|(_, k)| *k).collect();
    let step = step.clamp(1, 3);
    let (breakdown, sample_name, sample) =
        audience_views(db, &compose.audience, &kinds, step).await?;
    let matching = breakdown.reachable() + breakdown.unreachable;
    let templates = match picked.iter().find(|(_, k)| *k == ChannelKind::Whatsapp) {
        Some((wa, _)) => db.templates(*wa).await?,
        None => Vec::new(),
    };
    let needs_template = kinds.contains(&ChannelKind::Whatsapp);
    let (template_problems, template_preview) =
        template_check(&compose, &templates, needs_template);
    let in_window = match kinds.iter().position(|k| *k == ChannelKind::Whatsapp) {
        Some(at) if step == 3 => {
            let since = state.clock.now() - chrono::Duration::hours(24);
            let n = db.audience_in_window(&compose.audience, &kinds, at, picked[at].0, since);
            Some((n.await?, breakdown.per_kind[at]))
        }
        _ => None,
    };
    let (media_notes, media_problems) = channel_notes(db, &compose, &picked, step).await?;
    let (left_out, cost) = match step {
        3 => (
            left_out_note(state, &rules, &compose, &picked).await?,
            super::cost::estimate(state, &rules, &compose, &picked, &templates).await?,
        ),
        _ => (Vec::new(), None),
    };
    let channels = channel_choices(all, &picked, &breakdown);
    let approval = match id {
        Some(id) if status == Lifecycle::Draft => db
            .approval_of(id)
            .await?
            .map(|a| (a.approval, a.note.unwrap_or_default())),
        _ => None,
    };
    let frozen = match compose.audience.frozen {
        Some(set) => super::retarget::frozen_set(state, user, set)
            .await?
            .map(|f| f.text()),
        None => None,
    };
    Ok(WizardPage {
        variant,
        frozen,
        approval,
        left_out,
        cost: cost.map(|c| c.text()),
        quiet_hours: rules.quiet.map(|w| w.label()),
        workspace_zone: rules.time_zone,
        media_notes,
        media_problems,
        in_window,
        needs_template,
        templates,
        template_problems,
        template_preview,
        id,
        key: crate::server::accounts::auth::new_session_token()[..32].to_string(),
        step,
        locked: locked_reason(status),
        paused,
        stoppable: status.stoppable(),
        sent,
        unsent,
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

/// What step `step` shows of `audience`: the breakdown per picked channel (steps 2 and 3),
/// the name the preview is filled in for (step 1) and a sample of names (step 2).
async fn audience_views(
    db: &Db,
    audience: &AudienceRule,
    kinds: &[ChannelKind],
    step: u8,
) -> Result<(Breakdown, String, Vec<String>), AppError> {
    // The audience queries take up to seconds at a million customers: only the steps that
    // show them run them (step 2 the count and sample, step 3 the per-channel breakdown).
    let breakdown = if step == 1 {
        Breakdown::default()
    } else {
        db.audience_breakdown(audience, if step == 3 { kinds } else { &[] })
            .await?
    };
    // The preview on step 1 is filled in for one customer of the audience.
    let sample_name = if step == 1 {
        db.audience_first_name(audience).await?
    } else {
        None
    }
    .unwrap_or_else(|| "Ann Example".to_string());
    let sample = if step == 2 {
        db.audience_sample(audience, &[ChannelKind::Webhook], SAMPLE)
            .await?
    } else {
        Vec::new()
    };
    Ok((breakdown, sample_name, sample))
}

/// The broadcast the wizard opens (a new one for `None`): its fields, status, whether it is
/// paused, and its messages sent and not yet sent.
async fn opened(
    db: &Db,
    id: Option<i64>,
) -> Result<(Compose, Lifecycle, bool, i64, i64), AppError> {
    let Some(id) = id else {
        return Ok((Compose::default(), Lifecycle::Draft, false, 0, 0));
    };
    let (c, status, _) = db.broadcast_for_edit(id).await.map_err(compose_error)?;
    let b = db.broadcast(id).await?;
    let unsent = (b.audience_total - b.sent_count - b.failed_count).max(0);
    Ok((c, status, b.paused, b.sent_count, unsent))
}

/// The pre-flight's words for who the workspace's `rules` will leave out of `compose` on
/// `picked`: for want of consent, and over the cap.
async fn left_out_note(
    state: &AppState,
    rules: &crate::model::workspace::Rules,
    compose: &Compose,
    picked: &[(i64, ChannelKind)],
) -> Result<Vec<String>, AppError> {
    use crate::model::results::thousands;
    let e = crate::server::dispatch::eligibility(rules, compose.purpose, state.clock.now());
    let (consent, cap) = state
        .db
        .left_out_preview(&compose.audience, picked, &e)
        .await?;
    let mut out = Vec::new();
    if consent > 0 {
        out.push(format!(
            "{} left out for want of consent: no opt-in for marketing on the channel that reaches them, or they withdrew it.",
            thousands(consent)
        ));
    }
    if cap > 0 {
        out.push(format!(
            "{} left out by the frequency cap: they had as many marketing broadcasts as the workspace allows.",
            thousands(cap)
        ));
    }
    out.extend(quiet_note(state, rules, compose, picked, &e).await?);
    Ok(out)
}

/// The pre-flight's words for what quiet hours do at the broadcast's time (or now): how many
/// wait for their end, and how many of those the expiry would catch first.
async fn quiet_note(
    state: &AppState,
    rules: &crate::model::workspace::Rules,
    compose: &Compose,
    picked: &[(i64, ChannelKind)],
    e: &crate::server::db::Eligibility,
) -> Result<Option<String>, AppError> {
    use crate::model::results::thousands;
    if compose.timing.quiet_exempt.is_some()
        || (rules.quiet.is_none() && rules.quiet_by_prefix.iter().all(|p| p.window.is_none()))
    {
        return Ok(None);
    }
    let prefixes = super::waves::prefixes_longest_first(rules);
    let names: Vec<String> = prefixes.iter().map(|p| p.prefix.clone()).collect();
    let groups = state
        .db
        .zone_prefix_counts(&compose.audience, picked, e, &names)
        .await?;
    let start = compose.scheduled_at.unwrap_or_else(|| state.clock.now());
    let held = super::waves::held(rules, &prefixes, start, &compose.timing, &groups);
    if held.moved == 0 {
        return Ok(None);
    }
    let mut note = format!(
        "{} fall in their quiet hours at that time and wait until they end.",
        thousands(held.moved)
    );
    if held.expiring > 0 {
        note.push_str(&format!(
            " {} of them would still be waiting when it expires, and expire.",
            thousands(held.expiring)
        ));
    }
    Ok(Some(note))
}

/// The time field's value: the wall-clock time of a local-time broadcast, else its time in
/// the person's zone `tz`.
fn typed_time(compose: &Compose, tz: chrono_tz::Tz) -> String {
    match compose.timing.local_at {
        Some(n) => n.format("%Y-%m-%dT%H:%M").to_string(),
        None => compose
            .scheduled_at
            .map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default(),
    }
}

/// What the picked channels make of the files and, on step 3, of the text (measured with
/// the audience's longest name): notes, and problems that keep it from being scheduled.
async fn channel_notes(
    db: &Db,
    compose: &Compose,
    picked: &[(i64, ChannelKind)],
    step: u8,
) -> Result<(Vec<String>, Vec<String>), AppError> {
    let kinds: Vec<ChannelKind> = picked.iter().map(|(_, k)| *k).collect();
    let email_limit = email_limit(db, picked).await?;
    let (mut notes, mut problems) = media_notes(compose, &kinds, email_limit);
    if step == 3 {
        let longest = db.audience_longest_name(&compose.audience).await?;
        let (lines, refused) =
            super::fit::text_fit(compose, &kinds, longest.as_deref().unwrap_or(""));
        notes.extend(lines);
        problems.extend(refused);
    }
    Ok((notes, problems))
}

/// The smallest message the picked email channels' servers take (their settings), if any is
/// picked.
async fn email_limit(
    db: &crate::server::db::Db,
    picked: &[(i64, ChannelKind)],
) -> Result<Option<u64>, crate::server::db::DbError> {
    let mut limit = None;
    for (id, kind) in picked {
        if *kind != ChannelKind::Email {
            continue;
        }
        if let Some((_, config)) = db.channel_kind_and_config(*id).await? {
            let settings: crate::server::channels::email::Settings =
                serde_json::from_str(&config).unwrap_or_default();
            let max = settings.max_message_bytes();
            limit = Some(limit.map_or(max, |l: u64| l.min(max)));
        }
    }
    Ok(limit)
}

/// How each picked channel carries the broadcast's files, where it differs from what staff
/// attached (a type or size it shows only as a document, files a template does not carry),
/// and the files a channel cannot carry at all (which keep the broadcast from being
/// scheduled).
fn media_notes(
    compose: &Compose,
    kinds: &[ChannelKind],
    email_limit: Option<u64>,
) -> (Vec<String>, Vec<String>) {
    use crate::model::media::{self, Carry};
    let (mut notes, mut cannot) = (Vec::new(), Vec::new());
    let mut seen = Vec::new();
    for kind in kinds {
        if seen.contains(kind) {
            continue;
        }
        seen.push(*kind);
        if *kind == ChannelKind::Email
            && let Some(limit) = email_limit
        {
            let size = media::email_size(&compose.attachments, compose.body.len() as u64);
            if size > limit {
                cannot.push(format!(
                    "With its files each email is about {} MB, and the email channel's server takes at most {} MB (its setting). Remove files or leave email out.",
                    size.div_ceil(1024 * 1024),
                    limit / (1024 * 1024)
                ));
            }
        }
        let (name, rule): (&str, fn(&AttachmentRef) -> Carry) = match kind {
            ChannelKind::Whatsapp => ("WhatsApp", media::whatsapp),
            ChannelKind::Telegram => ("Telegram", media::telegram),
            _ => continue,
        };
        if *kind == ChannelKind::Whatsapp
            && let Some(t) = &compose.template
        {
            let others = compose
                .attachments
                .iter()
                .filter(|a| t.header_media.as_deref() != Some(a.id.as_str()))
                .count();
            if others > 0 {
                notes.push(format!(
                    "On WhatsApp the template carries only its header's file: {others} other attachment(s) go {}.",
                    if t.free_text_in_window {
                        "only to customers inside their 24-hour window"
                    } else {
                        "to no one there"
                    }
                ));
            }
            if !t.free_text_in_window {
                continue;
            }
        }
        for file in &compose.attachments {
            match rule(file) {
                Carry::Native(_) => {}
                Carry::Document => notes.push(format!(
                    "On {name}, {} goes as a document (its type or size is not shown natively).",
                    file.name
                )),
                Carry::Cannot(why) => cannot.push(format!("{why} Remove it or leave {name} out.")),
            }
        }
    }
    (notes, cannot)
}

/// What keeps `compose`'s template from going on its WhatsApp channel (`templates` as synced),
/// and its body filled in for a sample customer (Ann Example, no email).
fn template_check(
    compose: &Compose,
    templates: &[crate::model::template::Template],
    needed: bool,
) -> (Vec<String>, Option<Vec<String>>) {
    let Some(choice) = compose.template.as_ref().filter(|_| needed) else {
        return (
            if needed {
                vec!["Choose an approved WhatsApp template: WhatsApp takes nothing else from customers who have not written in the last 24 hours.".into()]
            } else {
                Vec::new()
            },
            None,
        );
    };
    let t = templates
        .iter()
        .find(|t| t.name == choice.name && t.language == choice.language);
    let sample = |f: &str| match f {
        "first_name" => Some("Ann".to_string()),
        "name" => Some("Ann Example".to_string()),
        "phone" => Some("+15550001111".to_string()),
        _ => None,
    };
    let header_file = choice
        .header_media
        .as_ref()
        .and_then(|id| compose.attachments.iter().find(|a| a.id == *id))
        .map(|a| a.name.as_str());
    let preview =
        t.map(|t| crate::model::template::render(t, &choice.values(&sample), header_file));
    (choice.problems(t, &compose.attachments), preview)
}

/// The tags and robot groups the audience editor offers: (id, name), by name.
async fn label_choices(db: &Db) -> Result<(Vec<(i64, String)>, Vec<(i64, String)>), AppError> {
    Ok((
        db.label_choices(LabelKind::Tag).await?,
        db.label_choices(LabelKind::RobotGroup).await?,
    ))
}

/// Every enabled channel as step 3 lists it: picked ones with their place in the order and
/// the customers each reaches first.
fn channel_choices(
    all: Vec<EnabledChannel>,
    picked: &[(i64, ChannelKind)],
    breakdown: &Breakdown,
) -> Vec<ChannelChoice> {
    all.into_iter()
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
        .collect()
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
            AppError::Conflict(locked_reason(s).unwrap_or_else(|| "It cannot be edited.".into()))
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
    /// Step 1's timing: `send_mode` (`moment` or `local`), `expire_hours` and, from admins,
    /// `quiet_exempt` (the reason).
    timing_shown: bool,
    send_mode: Option<String>,
    expire_hours: Option<String>,
    quiet_exempt: Option<String>,
    purpose: Option<String>,
    matching: Option<String>,
    conditions: Vec<(usize, ConditionRow)>,
    channel_step: bool,
    channels: Vec<(i64, Option<usize>)>,
    /// Step 3's fallback: the box ticked, and the hours a channel has to deliver.
    fallback: bool,
    fallback_hours: Option<String>,
    /// Step 1 lists the broadcast's files as `attachment` fields (removing one drops its field).
    attachments_shown: bool,
    attachments: Vec<String>,
    /// Who a test goes to (name, phone or email).
    test_to: Option<String>,
    /// Step 3's template section was shown: `template` ("name|language", empty for none) and
    /// each parameter's `tp_src_{p}`, `tp_val_{p}` and `tp_fb_{p}`.
    template_shown: bool,
    template: Option<String>,
    template_fields: Vec<(String, String)>,
    /// The A/B test: the variant shown and the split's settings.
    ab: AbPosted,
}

/// A field whose name carries a number: `prio_{channel}` (its place in the order) or
/// `cond_{row}_{field|op|id}` (part of an audience condition).
fn numbered_field(
    k: &str,
    v: &str,
    conds: &mut std::collections::BTreeMap<usize, ConditionRow>,
    prio: &mut std::collections::HashMap<i64, usize>,
) {
    if let Some(rest) = k.strip_prefix("prio_")
        && let (Ok(id), Ok(n)) = (rest.parse::<i64>(), v.trim().parse::<usize>())
        && prio.len() < MAX_PICKED_CHANNELS
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
                e.0 = match v {
                    "tag" => Some(Field::Tag),
                    "robot_group" => Some(Field::RobotGroup),
                    _ => None,
                }
            }
            "op" => {
                e.1 = match v {
                    "is" => Some(Op::Is),
                    "is_not" => Some(Op::IsNot),
                    _ => None,
                }
            }
            // `tag:3` / `robot_group:5` (the value names its kind), or a bare id.
            "id" => match Field::parse_choice(v) {
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

/// Reads a step's fields (each step posts only its own).
pub fn parse(fields: &[(String, String)]) -> Posted {
    let mut p = Posted {
        step: 1,
        ..Default::default()
    };
    let mut conds: std::collections::BTreeMap<usize, ConditionRow> = Default::default();
    let mut prio: std::collections::HashMap<i64, usize> = Default::default();
    let mut picked = Vec::new();
    let mut seen = std::collections::HashSet::new();
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
            "timing_shown" => p.timing_shown = true,
            "send_mode" => p.send_mode = Some(v),
            "expire_hours" => p.expire_hours = Some(v),
            "quiet_exempt" => p.quiet_exempt = Some(v),
            "purpose" => p.purpose = Some(v),
            "match" => p.matching = Some(v),
            "channels_shown" => p.channel_step = true,
            "fallback" => p.fallback = true,
            "fallback_hours" => p.fallback_hours = Some(v),
            "attachments_shown" => p.attachments_shown = true,
            "test_to" => p.test_to = Some(v),
            "template_shown" => p.template_shown = true,
            "template" => p.template = Some(v),
            k if k.starts_with("tp_") => {
                if p.template_fields.len() < MAX_TEMPLATE_FIELDS {
                    p.template_fields.push((k.to_string(), v))
                }
            }
            "attachment" => {
                if v.len() <= 64
                    && v.chars().all(|c| c.is_ascii_alphanumeric())
                    && p.attachments.len() < 2 * MAX_ATTACHMENTS
                {
                    p.attachments.push(v);
                }
            }
            "channel" => {
                if let Ok(id) = v.parse::<i64>()
                    && picked.len() < MAX_PICKED_CHANNELS
                    && seen.insert(id)
                {
                    picked.push(id);
                }
            }
            k => {
                if !p.ab.take(k, &v) {
                    numbered_field(k, &v, &mut conds, &mut prio)
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
/// same step with an error, or the list with a notice). Always keeps what was typed: a
/// scheduled broadcast stays scheduled while it is still valid as one; anything else is kept
/// as a draft (only a name is needed for that).
pub async fn save(
    state: &AppState,
    user: &CurrentUser,
    p: Posted,
    upload: Option<Upload>,
) -> String {
    let now = state.clock.now();
    let (mut compose, was_scheduled) = match load(state, p.id, p.step).await {
        Ok(loaded) => loaded,
        Err(to) => return to,
    };
    let (problems, shown) = merge_shown(state, user, &p, upload, &mut compose).await;
    let kept = if was_scheduled {
        compose
            .validate(Intent::Schedule, now)
            .or_else(|_| compose.validate(Intent::Draft, now))
    } else {
        compose.validate(Intent::Draft, now)
    };
    let draft = match kept {
        Ok(v) => v,
        Err(errors) => return not_kept(p.id, &compose, &joined(errors)),
    };
    let id = match store(state, user, &p, &draft).await {
        Ok(id) => id,
        Err(to) => return to,
    };
    let own_step = format!("/broadcasts/{id}/edit?step={}", p.step);
    let to = go_on(state, user, id, &p, &compose, &draft, problems, shown).await;
    if matches!(p.go.as_str(), "schedule" | "now") {
        // A refusal names the variant it is about, and shows that one.
        return to;
    }
    with_variant(to, &own_step, shown, &compose)
}

/// Where the browser goes once the step is kept: the step again with its first problem,
/// a test send's outcome, the list, the schedule's outcome, or the next step.
#[allow(clippy::too_many_arguments)]
async fn go_on(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    p: &Posted,
    compose: &Compose,
    draft: &ValidBroadcast,
    problems: Vec<String>,
    shown: usize,
) -> String {
    let now = state.clock.now();
    if let Some(first) = problems.first() {
        return to_step(id, p.step, Some(first));
    }
    if super::approval::void_if_edited(state, user, id).await {
        let m = "Edited after it was approved: it is a draft again and needs approval again.";
        return to_step(id, p.step, Some(m));
    }
    match p.go.as_str() {
        "test" | "test_me" => {
            // A test sends the variant the step shows.
            let mut shown_message = compose.clone();
            shown_message.swap_variant(shown);
            test_from_wizard(state, user, id, p, &shown_message).await
        }
        "draft" => with_param(
            "/",
            "notice",
            &if draft.status == Lifecycle::Scheduled {
                format!("Saved “{}”; it is still scheduled.", draft.name)
            } else {
                format!("Saved the draft “{}”.", draft.name)
            },
        ),
        "schedule" => schedule(state, user, id, compose, Intent::Schedule).await,
        "now" => schedule(state, user, id, compose, Intent::SendNow).await,
        "add_variant" | "remove_variant" => to_step(id, p.step, None),
        go if go.starts_with("variant_") => to_step(id, p.step, None),
        go => next_step(id, p.step, go, compose, now),
    }
}

/// [`merge`] into the variant the step showed (its text, files and template are edited
/// through the broadcast's own fields), then the test's settings and buttons: the problems,
/// and the variant to show next.
async fn merge_shown(
    state: &AppState,
    user: &CurrentUser,
    p: &Posted,
    upload: Option<Upload>,
    compose: &mut Compose,
) -> (Vec<String>, usize) {
    let n = p.ab.variant;
    let mut problems = if n == 0 {
        merge(state, user, p, upload, compose).await
    } else if compose.swap_variant(n) {
        let problems = merge(state, user, p, upload, compose).await;
        compose.swap_variant(n);
        problems
    } else {
        // That variant is gone (removed in another tab): nothing typed for it is kept.
        return (vec!["That variant was removed meanwhile.".into()], 0);
    };
    let shown = merge_ab(&p.ab, &p.go, compose, &mut problems);
    (problems, shown)
}

/// The messages of a failed validation, as one line.
fn joined(errors: Vec<(&'static str, String)>) -> String {
    errors
        .into_iter()
        .map(|(_, m)| m)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The broadcast the step edits (or a new one) and whether it is scheduled now; or where to
/// go instead when it cannot be edited.
async fn load(state: &AppState, id: Option<i64>, step: u8) -> Result<(Compose, bool), String> {
    let Some(id) = id else {
        return Ok((Compose::default(), false));
    };
    match state.db.broadcast_for_edit(id).await {
        Ok((c, status, _)) => match locked_reason(status) {
            Some(reason) => Err(to_step(id, step, Some(&reason))),
            None => Ok((c, status == Lifecycle::Scheduled)),
        },
        Err(_) => Err(with_param("/", "error", "No such broadcast.")),
    }
}

/// Merges what this step sent into `compose`; the problems to show (a time that does not
/// exist, a refused upload), which do not stop the rest from being kept.
async fn merge(
    state: &AppState,
    user: &CurrentUser,
    p: &Posted,
    upload: Option<Upload>,
    compose: &mut Compose,
) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    if let Some(n) = &p.name {
        compose.name = n.clone();
    }
    if let Some(b) = &p.body {
        compose.body = b.clone();
    }
    if p.send_at.is_some() || p.timing_shown {
        problems.extend(merge_timing(state, user, p, compose).await);
    }
    if let Some(m) = &p.matching {
        merge_audience(p, m, compose);
    }
    if p.attachments_shown {
        compose.attachments = listed_attachments(state, p, compose).await;
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
    if p.template_shown {
        compose.template = posted_template(p, compose.template.as_ref());
    }
    if p.channel_step {
        let mut chosen = p.channels.clone();
        // Unnumbered picks go after numbered ones, in the order shown.
        chosen.sort_by_key(|(_, n)| n.unwrap_or(usize::MAX));
        compose.channel_ids = chosen.into_iter().map(|(id, _)| id).collect();
        merge_fallback(p, compose, &mut problems);
    }
    problems
}

/// Step 3's fallback: off, or on with the hours each channel has to deliver (a day unless
/// typed).
fn merge_fallback(p: &Posted, compose: &mut Compose, problems: &mut Vec<String>) {
    compose.timing.fallback_hours = None;
    if !p.fallback {
        return;
    }
    let typed = p.fallback_hours.as_deref().unwrap_or("").trim();
    if typed.is_empty() {
        compose.timing.fallback_hours = Some(DEFAULT_FALLBACK_HOURS);
        return;
    }
    match typed.parse::<u32>() {
        Ok(h) => compose.timing.fallback_hours = Some(h),
        Err(_) => problems.push(format!(
            "“{}” is not a whole number of hours.",
            typed.chars().take(20).collect::<String>()
        )),
    }
}

/// The hours a channel has to deliver before the next is tried, when none are typed.
const DEFAULT_FALLBACK_HOURS: u32 = 24;

/// Step 1's time and timing: one moment in the person's zone, or a wall-clock time in each
/// customer's (`scheduled_at` is then its first wave); the expiry; an admin's exemption from
/// quiet hours. The problems to show.
async fn merge_timing(
    state: &AppState,
    user: &CurrentUser,
    p: &Posted,
    compose: &mut Compose,
) -> Vec<String> {
    let mut problems = Vec::new();
    let local = p.send_mode.as_deref() == Some("local");
    if let Some(typed) = p.send_at.as_deref().map(str::trim) {
        compose.timing.local_at = None;
        if typed.is_empty() {
            compose.scheduled_at = None;
        } else if local {
            match chrono::NaiveDateTime::parse_from_str(typed, "%Y-%m-%dT%H:%M") {
                Ok(n) => {
                    compose.timing.local_at = Some(n);
                    match first_wave(state, n, &compose.audience).await {
                        Ok((t, _)) => compose.scheduled_at = Some(t),
                        Err(e) => problems.push(e.to_string()),
                    }
                }
                Err(_) => problems.push(format!(
                    "“{}” is not a date and time (e.g. 2026-12-24T09:30).",
                    typed.chars().take(40).collect::<String>()
                )),
            }
        } else {
            match timefmt::local_to_utc(typed, timefmt::zone(&user.time_zone)) {
                Ok(t) => compose.scheduled_at = Some(t),
                Err(e) => problems.push(e),
            }
        }
    }
    if !p.timing_shown {
        return problems;
    }
    if let Some(purpose) = p.purpose.as_deref().and_then(Purpose::parse) {
        compose.purpose = purpose;
    }
    let hours = p.expire_hours.as_deref().unwrap_or("").trim();
    compose.timing.expire_hours = None;
    if !hours.is_empty() {
        match hours.parse::<u32>() {
            Ok(h) => compose.timing.expire_hours = Some(h),
            Err(_) => problems.push(format!(
                "“{}” is not a whole number of hours.",
                hours.chars().take(20).collect::<String>()
            )),
        }
    }
    // Only an admin's form has the exemption; anyone else's edit keeps what an admin chose.
    if user.role == Role::Admin {
        let reason = p.quiet_exempt.as_deref().unwrap_or("").trim();
        compose.timing.quiet_exempt = (!reason.is_empty()).then(|| reason.to_string());
    } else if p.quiet_exempt.is_some() {
        problems.push("Only an admin can let a broadcast through quiet hours.".into());
    }
    problems
}

/// When a local-time broadcast at wall-clock `n` to `audience` first reaches anyone, and in
/// which zone.
async fn first_wave(
    state: &AppState,
    n: chrono::NaiveDateTime,
    audience: &AudienceRule,
) -> Result<(DateTime<Utc>, String), AppError> {
    let (rules, _) = state.db.workspace_rules().await?;
    let zones = state.db.audience_zones(audience).await?;
    Ok(super::waves::first_wave(n, &rules, &zones))
}

/// The template step 3 posted: the chosen "name|language", and for each parameter listed the
/// source (a customer field or `text`), the text and the fallback. A different template
/// starts its parameters afresh.
fn posted_template(
    p: &Posted,
    before: Option<&crate::model::template::TemplateChoice>,
) -> Option<crate::model::template::TemplateChoice> {
    use crate::model::template::{ParamChoice, ParamSource, TemplateChoice};
    let chosen = p.template.as_deref()?.trim();
    let (name, language) = chosen.split_once('|')?;
    let (name, language) = (name.trim(), language.trim());
    if name.is_empty() || language.is_empty() || name.len() > 512 || language.len() > 32 {
        return None;
    }
    let same = before.is_some_and(|b| b.name == name && b.language == language);
    let get = |k: String| {
        p.template_fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.chars().take(1024).collect::<String>())
    };
    let mut params = Vec::new();
    if same {
        for (k, src) in &p.template_fields {
            let Some(param) = k.strip_prefix("tp_src_") else {
                continue;
            };
            let value = get(format!("tp_val_{param}")).unwrap_or_default();
            params.push(ParamChoice {
                name: param.chars().take(64).collect(),
                source: if src == "text" {
                    ParamSource::Text(value)
                } else {
                    ParamSource::Field(src.clone())
                },
                fallback: get(format!("tp_fb_{param}")).unwrap_or_default(),
            });
        }
    }
    let header_media = same
        .then(|| get("tp_header_media".into()))
        .flatten()
        .filter(|id| !id.is_empty());
    Some(TemplateChoice {
        name: name.to_string(),
        language: language.to_string(),
        params,
        header_media,
        free_text_in_window: get("tp_window".into()).is_some_and(|v| v == "1"),
    })
}

/// Step 2's rule: ALL or ANY and the complete condition rows, less one the person removed.
fn merge_audience(p: &Posted, matching: &str, compose: &mut Compose) {
    compose.audience.matching = if matching == "any" {
        Match::Any
    } else {
        Match::All
    };
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

/// The files step 1 still lists, in their order: ones the draft had, and ones uploaded since.
async fn listed_attachments(state: &AppState, p: &Posted, compose: &Compose) -> Vec<AttachmentRef> {
    let mut kept = Vec::new();
    for id in p.attachments.iter().take(MAX_ATTACHMENTS) {
        if kept.iter().any(|a: &AttachmentRef| &a.id == id) {
            continue;
        }
        if let Some(a) = compose.attachments.iter().find(|a| &a.id == id) {
            kept.push(a.clone());
        } else if let Ok(Some(a)) = state.db.attachment(id).await {
            kept.push(a);
        }
    }
    kept
}

/// Where a step goes when not even a draft can be kept: back to the step with the messages
/// (a new broadcast's form keeps the typed message).
fn not_kept(id: Option<i64>, compose: &Compose, message: &str) -> String {
    match id {
        Some(id) => to_step(id, 1, Some(message)),
        None => respond_fields(
            "/broadcasts/new",
            &[("error", message), ("body", &compose.body)],
        ),
    }
}

/// `path` with each field added to its query.
fn respond_fields(path: &str, fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .fold(path.to_string(), |url, (k, v)| with_param(&url, k, v))
}

/// Stores the draft: an update of the broadcast, or a new one (once per form key, so a double
/// submit creates one). Its id, or where to go when it could not be stored.
async fn store(
    state: &AppState,
    user: &CurrentUser,
    p: &Posted,
    draft: &ValidBroadcast,
) -> Result<i64, String> {
    let (db, now) = (&state.db, state.clock.now());
    match p.id {
        Some(id) => match db
            .update_broadcast(BroadcastId(id), draft, user.id, now)
            .await
        {
            Ok(()) => Ok(id),
            Err(ComposeError::Started(s)) => Err(to_step(id, p.step, locked_reason(s).as_deref())),
            Err(e) => {
                tracing::error!(error = ?e, "saving a draft failed");
                let retry = "The draft could not be saved; please try again.";
                Err(to_step(id, p.step, Some(retry)))
            }
        },
        None => {
            let key = if p.key.len() >= 16 {
                p.key.clone()
            } else {
                crate::server::accounts::auth::new_session_token()[..32].to_string()
            };
            match db.create_broadcast(draft, user.id, &key, now).await {
                Ok((id, _)) => Ok(id),
                Err(e) => {
                    tracing::error!(error = ?e, "creating a draft failed");
                    let retry = "The draft could not be saved; please try again.";
                    Err(with_param("/broadcasts/new", "error", retry))
                }
            }
        }
    }
}

/// "Send a test" (to a typed customer, or to the signed-in person): back to the step with the
/// outcome, the typed recipient kept.
async fn test_from_wizard(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    p: &Posted,
    compose: &Compose,
) -> String {
    use super::test_send::{Who, test_send};
    let who = if p.go == "test_me" {
        Who::Me
    } else {
        Who::Typed(p.test_to.clone().unwrap_or_default())
    };
    let back = format!("/broadcasts/{id}/edit?step={}", p.step);
    let mut url = match test_send(state, user, Some(id), compose, who).await {
        Ok(notice) => with_param(&back, "notice", &notice),
        Err(e) => with_param(&back, "error", &e),
    };
    if let Some(t) = &p.test_to {
        url = with_param(&url, "test_to", t);
    }
    url
}

/// Where the person goes instead of scheduling, when a picked channel cannot take the
/// message: a WhatsApp template missing or unfilled, a file no channel carries, a text over a
/// hard limit.
async fn refusal(state: &AppState, id: i64, compose: &Compose) -> Option<String> {
    let checks = match Checks::read(state, compose).await {
        Ok(c) => c,
        Err(e) => return Some(to_step(id, 3, Some(&e.to_string()))),
    };
    let tested = compose.ab.is_some();
    for (i, (letter, shown)) in compose.variant_views().into_iter().enumerate() {
        let Some(m) = checks.refusal_of(&shown) else {
            continue;
        };
        let m = if tested {
            format!("Variant {letter}: {m}")
        } else {
            m
        };
        let own = format!("/broadcasts/{id}/edit?step=3");
        return Some(with_variant(to_step(id, 3, Some(&m)), &own, i, compose));
    }
    None
}

/// What each message of a broadcast (its own, and each variant's) is checked against before
/// it is scheduled, read once for all of them.
struct Checks {
    /// The first picked WhatsApp channel's templates, when one is picked.
    templates: Option<Vec<crate::model::template::Template>>,
    kinds: Vec<ChannelKind>,
    email_limit: Option<u64>,
    /// The audience's longest name, which the text must fit with.
    longest: String,
}

impl Checks {
    async fn read(state: &AppState, compose: &Compose) -> Result<Checks, AppError> {
        let all = state.db.enabled_channels().await?;
        let picked = EnabledChannel::picked(&all, &compose.channel_ids);
        let templates = match picked.iter().find(|(_, k)| *k == ChannelKind::Whatsapp) {
            Some((wa, _)) => Some(state.db.templates(*wa).await?),
            None => None,
        };
        Ok(Checks {
            templates,
            kinds: picked.iter().map(|(_, k)| *k).collect(),
            email_limit: email_limit(&state.db, &picked).await?,
            longest: state
                .db
                .audience_longest_name(&compose.audience)
                .await?
                .unwrap_or_default(),
        })
    }

    /// What keeps one message from going (fixed on step 3): WhatsApp takes only an approved
    /// template, every parameter filled, from customers outside their 24-hour window; a
    /// picked channel cannot carry a file at all; the text is over a channel's hard limit
    /// for the audience's longest name.
    fn refusal_of(&self, compose: &Compose) -> Option<String> {
        if let Some(templates) = &self.templates
            && let Some(first) = template_check(compose, templates, true).0.first()
        {
            return Some(first.clone());
        }
        if let Some(first) = media_notes(compose, &self.kinds, self.email_limit)
            .1
            .first()
        {
            return Some(first.clone());
        }
        super::fit::text_fit(compose, &self.kinds, &self.longest)
            .1
            .first()
            .cloned()
    }
}

/// `compose` with a local-time broadcast's first wave as its time (the customers' zones may
/// have changed since it was typed); or where to go when that time has passed.
async fn with_first_wave(
    state: &AppState,
    id: i64,
    compose: &Compose,
    intent: Intent,
    now: DateTime<Utc>,
) -> Result<Compose, String> {
    let mut compose = compose.clone();
    if let (Some(n), Intent::Schedule) = (compose.timing.local_at, intent) {
        // The customers' zones may have changed since it was typed.
        match first_wave(state, n, &compose.audience).await {
            Ok((t, _)) if t > now => compose.scheduled_at = Some(t),
            Ok((_, zone)) => {
                let when = n.format("%H:%M on %-d %b %Y");
                let m = format!(
                    "{when} has already passed in {zone}, where customers live: choose a later date, or one moment for everyone."
                );
                return Err(to_step(id, 1, Some(&m)));
            }
            Err(e) => return Err(to_step(id, 1, Some(&e.to_string()))),
        }
    }
    Ok(compose)
}

/// "Schedule" or "Send now": the whole broadcast checked, stored as scheduled, the dispatcher
/// woken; back to the list with a notice, or to the step that needs fixing.
async fn schedule(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    compose: &Compose,
    intent: Intent,
) -> String {
    let now = state.clock.now();
    if let Some(to) = refusal(state, id, compose).await {
        return to;
    }
    let compose = match with_first_wave(state, id, compose, intent, now).await {
        Ok(c) => c,
        Err(to) => return to,
    };
    let mut v = match compose.validate(intent, now) {
        Ok(v) => v,
        Err(errors) => {
            let step = match errors[0].0 {
                "name" | "body" | "scheduled_at" | "ab" => 1,
                _ => 3,
            };
            return to_step(id, step, Some(&joined(errors)));
        }
    };
    let send_at = (intent == Intent::Schedule)
        .then_some(v.scheduled_at)
        .flatten();
    match super::approval::gate(state, user, id, send_at).await {
        Ok(super::approval::Gate::Go) => {}
        Ok(super::approval::Gate::Held(to)) => return to,
        Err(e) => return to_step(id, 3, Some(&e.to_string())),
    }
    let undo = state.config.send_now_undo_seconds;
    if intent == Intent::SendNow {
        // The undo window: the first message leaves this long from now.
        v.scheduled_at = Some(now + chrono::Duration::seconds(undo));
    }
    if let Err(e) = state
        .db
        .update_broadcast(BroadcastId(id), &v, user.id, now)
        .await
    {
        return to_step(id, 3, Some(&compose_error(e).to_string()));
    }
    state.dispatcher.poke();
    state.db.announce_broadcast(id).await;
    if intent == Intent::SendNow && undo > 0 {
        let notice = format!(
            "“{}” goes in {undo} seconds: undo now if that was a mistake.",
            v.name
        );
        return with_param(&format!("/?undo={id}"), "notice", &notice);
    }
    let notice = if intent == Intent::SendNow {
        format!("“{}” is being sent now.", v.name)
    } else if let Some(n) = v.timing.local_at {
        format!(
            "“{}” is scheduled for {} in each customer's own time zone; the first wave goes at {}.",
            v.name,
            n.format("%-d %b %Y, %H:%M"),
            v.scheduled_at
                .map(|t| timefmt::local(t, timefmt::zone(&user.time_zone)))
                .unwrap_or_default()
        )
    } else {
        format!(
            "“{}” is scheduled for {}.",
            v.name,
            v.scheduled_at
                .map(|t| timefmt::local(t, timefmt::zone(&user.time_zone)))
                .unwrap_or_default()
        )
    };
    with_param("/", "notice", &notice)
}

/// Schedules broadcast `id`, just approved by `admin`, as it was submitted: at its time, or
/// at once (after the undo window). Where to go, with the outcome.
pub async fn schedule_approved(
    state: &AppState,
    admin: &CurrentUser,
    id: i64,
    compose: &Compose,
) -> String {
    let now = state.clock.now();
    let later = compose.timing.local_at.is_some() || compose.scheduled_at.is_some_and(|t| t > now);
    let intent = if later {
        Intent::Schedule
    } else {
        Intent::SendNow
    };
    schedule(state, admin, id, compose, intent).await
}

/// "Next", "Back" or staying on the step; step 1 checks its own fields before moving on.
fn next_step(id: i64, step: u8, go: &str, compose: &Compose, now: DateTime<Utc>) -> String {
    let next = match go {
        "next" => step.saturating_add(1).min(3),
        "back" => step.saturating_sub(1).max(1),
        _ => step,
    };
    if step == 1 && next > 1 {
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
        .copy_broadcast(BroadcastId(id), user.id, state.clock.now())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::template::TemplateChoice;

    fn file(id: &str, mime: &str, mb: u64) -> AttachmentRef {
        AttachmentRef {
            id: id.into(),
            name: format!("{id}.bin"),
            mime: mime.into(),
            size: mb * 1024 * 1024,
        }
    }

    #[test]
    fn the_pre_flight_says_how_each_channel_carries_the_files() {
        let mut c = Compose {
            attachments: vec![
                file("photo", "image/jpeg", 8),
                file("film", "video/mp4", 60),
                file("small", "image/png", 1),
                file("terms", "text/plain", 1),
            ],
            ..Compose::default()
        };
        let (notes, cannot) =
            media_notes(&c, &[ChannelKind::Whatsapp, ChannelKind::Telegram], None);
        assert_eq!(
            notes,
            vec![
                "On WhatsApp, terms.bin goes as a document (its type or size is not shown natively).",
                "On Telegram, terms.bin goes as a document (its type or size is not shown natively).",
            ]
        );
        assert_eq!(cannot.len(), 3, "{cannot:?}");
        assert!(
            cannot[0].contains("photo.bin is larger than the 5 MB"),
            "{cannot:?}"
        );
        assert!(
            cannot[1].contains("film.bin is larger than the 16 MB"),
            "{cannot:?}"
        );
        assert!(
            cannot[2].contains("film.bin is larger than the 50 MB"),
            "{cannot:?}"
        );
        c.template = Some(TemplateChoice {
            header_media: Some("small".into()),
            ..TemplateChoice::default()
        });
        let (notes, _) = media_notes(&c, &[ChannelKind::Whatsapp], None);
        assert_eq!(
            notes,
            vec![
                "On WhatsApp the template carries only its header's file: 3 other attachment(s) go to no one there."
            ]
        );
        // 70 MB of files is about 96 MB in base64: more than a 25 MB server takes, not a 100 MB one.
        let mb = 1024 * 1024;
        let (_, cannot) = media_notes(&c, &[ChannelKind::Email], Some(25 * mb));
        assert_eq!(
            cannot,
            vec![
                "With its files each email is about 96 MB, and the email channel's server takes at most 25 MB (its setting). Remove files or leave email out."
            ]
        );
        assert_eq!(
            media_notes(&c, &[ChannelKind::Email], Some(100 * mb)),
            (vec![], vec![])
        );
    }
}
