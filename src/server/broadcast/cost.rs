//! What a broadcast costs by the workspace's price table: estimated before sending (the
//! pre-flight, and the approval rule's "costing more than") and so far in the results, from
//! what WhatsApp's status reports said of each message (its category, whether it is
//! billable) where they came, else from the template's category; SMS by segments as the
//! message measures for the audience's longest name.

use crate::model::channel::ChannelKind;
use crate::model::compose::Compose;
use crate::model::consent::Purpose;
use crate::model::cost::{Cost, Prices};
use crate::model::template::Template;
use crate::model::workspace::Rules;
use crate::model::{AppError, fit, personalize};
use crate::server::AppState;

/// How a message of `compose` is priced on each kind: SMS segments, WhatsApp's category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    pub sms_segments: i64,
    /// The template's category, lower case (`marketing`); without a template, the purpose's.
    pub whatsapp_category: String,
}

impl Units {
    /// For `compose` sent with `templates` (the WhatsApp channel's), personalised with
    /// `longest` (the audience's longest name).
    pub fn of(compose: &Compose, templates: &[Template], longest: &str) -> Units {
        let text = personalize::render(compose.body.trim_end(), longest);
        let category = compose
            .template
            .as_ref()
            .and_then(|c| {
                templates
                    .iter()
                    .find(|t| t.name == c.name && t.language == c.language)
            })
            .map(|t| t.category.to_ascii_lowercase())
            .unwrap_or_else(|| match compose.purpose {
                Purpose::Marketing => "marketing".into(),
                Purpose::Service => "utility".into(),
            });
        Units {
            sms_segments: fit::sms(&text).segments.max(1) as i64,
            whatsapp_category: category,
        }
    }
}

/// How a kind is named in a cost line.
fn kind_label(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Sms => "SMS",
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Telegram => "Telegram",
        ChannelKind::Email => "Email",
        ChannelKind::Sandbox => "Sandbox",
        ChannelKind::Webhook => "Webhook",
    }
}

/// Adds `count` messages on `kind` to numbers starting `head` to `cost`, priced by `prices`.
/// WhatsApp's `category` decides its price; `billable == Some(false)` (WhatsApp said the
/// message is free) costs nothing.
fn add(
    cost: &mut Cost,
    prices: &Prices,
    kind: ChannelKind,
    (category, billable, reported): (&str, Option<bool>, bool),
    head: &str,
    count: i64,
    units: &Units,
) {
    if matches!(kind, ChannelKind::Sandbox | ChannelKind::Webhook) {
        return;
    }
    let wa = kind == ChannelKind::Whatsapp;
    let price = prices.find(kind.as_str(), wa.then_some(category), head);
    let mut label = kind_label(kind).to_string();
    if wa {
        label = format!("{label} {category}");
    }
    if let Some(prefix) = price.and_then(|p| p.prefix.as_ref()) {
        label = format!("{label} {prefix}");
    }
    if billable == Some(false) {
        cost.add(
            format!("{label} (free, as WhatsApp reported)"),
            count,
            1,
            Some(0),
            true,
        );
        return;
    }
    let units = if kind == ChannelKind::Sms {
        units.sms_segments
    } else {
        1
    };
    cost.add(label, count, units, price.map(|p| p.micros), reported);
}

/// The pre-flight's estimate for `compose` on `picked` (none when no price is set).
pub async fn estimate(
    state: &AppState,
    rules: &Rules,
    compose: &Compose,
    picked: &[(i64, ChannelKind)],
    templates: &[Template],
) -> Result<Option<Cost>, AppError> {
    let prices = &rules.prices;
    if prices.lines.is_empty() || picked.is_empty() {
        return Ok(None);
    }
    let db = &state.db;
    let longest = db.audience_longest_name(&compose.audience).await?;
    let units = Units::of(compose, templates, longest.as_deref().unwrap_or(""));
    let e = crate::server::dispatch::eligibility(rules, compose.purpose, state.clock.now());
    let lens: Vec<usize> = picked
        .iter()
        .map(|(_, k)| prices.prefix_len(k.as_str()))
        .collect();
    let groups = db.cost_groups(&compose.audience, picked, &e, &lens).await?;
    let mut cost = Cost {
        currency: prices.currency.clone(),
        ..Cost::default()
    };
    let category = units.whatsapp_category.clone();
    for (slot, head, n) in groups {
        let Some((_, kind)) = usize::try_from(slot).ok().and_then(|s| picked.get(s)) else {
            continue;
        };
        add(
            &mut cost,
            prices,
            *kind,
            (&category, None, false),
            &head,
            n,
            &units,
        );
    }
    Ok(Some(cost))
}

/// Broadcast `id`'s cost so far (none when no price is set).
pub async fn so_far(state: &AppState, id: i64) -> Result<Option<Cost>, AppError> {
    let (rules, _) = state.db.workspace_rules().await?;
    let prices = &rules.prices;
    if prices.lines.is_empty() {
        return Ok(None);
    }
    let db = &state.db;
    let (compose, _, _) = db
        .broadcast_for_edit(id)
        .await
        .map_err(|_| AppError::NotFound("No such broadcast.".into()))?;
    let len = prices.prefix_len("whatsapp").max(prices.prefix_len("sms"));
    let groups = db.sent_groups(id, len, &prices.currency).await?;
    let templates = match groups.iter().find(|g| g.kind == "whatsapp") {
        Some(g) => db.templates(g.channel_id).await?,
        None => Vec::new(),
    };
    let longest = db.audience_longest_name(&compose.audience).await?;
    let units = Units::of(&compose, &templates, longest.as_deref().unwrap_or(""));
    let mut cost = Cost {
        currency: prices.currency.clone(),
        ..Cost::default()
    };
    for g in groups {
        let Some(kind) = ChannelKind::parse(&g.kind) else {
            continue;
        };
        if g.billed > 0 {
            let label = format!("{} (as the provider billed)", kind_label(kind));
            cost.add_billed(label, g.billed, g.billed_micros);
        }
        let reported = g.category.is_some();
        let category = g
            .category
            .clone()
            .unwrap_or(units.whatsapp_category.clone());
        let how = (category.as_str(), g.billable, reported);
        let rest = g.count - g.billed;
        add(&mut cost, prices, kind, how, &g.head, rest, &units);
    }
    Ok(Some(cost))
}
