//! The workspace's Settings page (admins): the time zone for customers without one, quiet
//! hours and their overrides by phone prefix. A plain form to `POST /settings`: it works
//! without JavaScript, and a refused save comes back with what was typed.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::settings::settings_page;
use crate::model::workspace::{CONSENT_KINDS, DEFAULT_QUIET, SettingsPage, hhmm};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

/// What a refused save typed, to show again instead of the stored rules.
#[derive(Clone, Default)]
struct Typed {
    time_zone: String,
    quiet: bool,
    quiet_from: String,
    quiet_to: String,
    prefixes: String,
    /// The kinds ticked for "opt-in required for marketing".
    consent: Vec<String>,
    cap_max: String,
    cap_days: String,
    currency: String,
    prices: String,
    approval_customers: String,
    approval_cost: String,
}

#[component]
pub fn SettingsPageView() -> impl IntoView {
    let (notice, error, typed) = use_query_map().with_untracked(|q| {
        let typed = q.get("typed").map(|_| Typed {
            time_zone: q.get("time_zone").unwrap_or_default(),
            quiet: q.get("quiet").is_some_and(|v| !v.is_empty()),
            quiet_from: q.get("quiet_from").unwrap_or_default(),
            quiet_to: q.get("quiet_to").unwrap_or_default(),
            prefixes: q.get("prefixes").unwrap_or_default(),
            consent: CONSENT_KINDS
                .iter()
                .filter(|k| {
                    q.get(&format!("consent_{k}"))
                        .is_some_and(|v| !v.is_empty())
                })
                .map(|k| k.to_string())
                .collect(),
            cap_max: q.get("cap_max").unwrap_or_default(),
            cap_days: q.get("cap_days").unwrap_or_default(),
            currency: q.get("currency").unwrap_or_default(),
            prices: q.get("prices").unwrap_or_default(),
            approval_customers: q.get("approval_customers").unwrap_or_default(),
            approval_cost: q.get("approval_cost").unwrap_or_default(),
        });
        (q.get("notice"), q.get("error"), typed)
    });
    let data = Resource::new(|| (), |_| settings_page());
    view! {
        <Title text="Settings · Herald"/>
        <AppHeader current="settings"/>
        <main class="narrow">
            <h1>"Settings"</h1>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let typed = typed.clone();
                    Suspend::new(async move {
                        page_or_error(data.await, |p| view! { <RulesForm page=p typed/> }.into_any())
                    })
                }}
            </Suspense>
        </main>
    }
}

#[component]
fn RulesForm(page: SettingsPage, typed: Option<Typed>) -> impl IntoView {
    let r = &page.rules;
    let shown = typed.unwrap_or_else(|| Typed {
        time_zone: r.time_zone.clone(),
        quiet: r.quiet.is_some(),
        quiet_from: hhmm(r.quiet.unwrap_or(DEFAULT_QUIET).start),
        quiet_to: hhmm(r.quiet.unwrap_or(DEFAULT_QUIET).end),
        prefixes: r.prefixes_text(),
        consent: r.consent_kinds.clone(),
        cap_max: r
            .frequency_cap
            .map(|c| c.max.to_string())
            .unwrap_or_default(),
        cap_days: r
            .frequency_cap
            .map(|c| c.days.to_string())
            .unwrap_or_default(),
        currency: r.prices.currency.clone(),
        prices: r.prices.text(),
        approval_customers: r
            .approval
            .and_then(|a| a.customers)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        approval_cost: r
            .approval
            .and_then(|a| a.cost)
            .map(crate::model::cost::amount)
            .unwrap_or_default(),
    });
    view! {
        {page.updated.map(|u| view! { <p class="muted">{u}</p> })}
        <form method="post" action="/settings" class="settings">
            <h2>"Time"</h2>
            <label for="time_zone">"Time zone for customers without one of their own"</label>
            <input id="time_zone" name="time_zone" value=shown.time_zone required maxlength="64"/>
            <fieldset>
                <legend>"Quiet hours, in each customer's local time"</legend>
                <p class="muted">"No broadcast reaches anyone in this window; what would land inside waits until it ends. An admin may let one broadcast through, with a reason."</p>
                <div class="choice">
                    <input type="checkbox" id="quiet" name="quiet" value="on" checked=shown.quiet/>
                    <label for="quiet">"Keep quiet hours"</label>
                </div>
                <label for="quiet_from">"From"</label>
                <input id="quiet_from" name="quiet_from" type="time" value=shown.quiet_from/>
                <label for="quiet_to">"Until"</label>
                <input id="quiet_to" name="quiet_to" type="time" value=shown.quiet_to/>
                <label for="prefixes">"Other quiet hours by phone prefix, one per line (“+1 21:00-08:00”, or “+44 none”)"</label>
                <textarea id="prefixes" name="prefixes" rows="4">{shown.prefixes}</textarea>
            </fieldset>
            <h2>"Consent"</h2>
            <fieldset>
                <legend>"Marketing goes only to customers who opted in, on"</legend>
                <p class="muted">"Meta and the SMS carriers require an opt-in for marketing. Service broadcasts (updates a customer needs) are not held back; a customer who withdrew either kind on a channel is never sent it there."</p>
                {CONSENT_KINDS.iter().map(|k| {
                    let id = format!("consent_{k}");
                    let on = shown.consent.iter().any(|c| c == k);
                    view! {
                        <div class="choice">
                            <input type="checkbox" id=id.clone() name=id.clone() value="on" checked=on/>
                            <label for=id>{kind_label(k)}</label>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            <h2>"Frequency cap"</h2>
            <fieldset>
                <legend>"At most this many marketing broadcasts per customer (both empty for no cap)"</legend>
                <label for="cap_max">"Broadcasts"</label>
                <input id="cap_max" name="cap_max" type="number" min="1" max="100" value=shown.cap_max/>
                <label for="cap_days">"In any span of days"</label>
                <input id="cap_days" name="cap_days" type="number" min="1" max="90" value=shown.cap_days/>
            </fieldset>
            <h2>"Prices"</h2>
            <fieldset>
                <legend>"What messages cost, for the estimate before sending and the results"</legend>
                <p class="muted">"One price per line: the kind of channel, for WhatsApp the template's category (marketing, utility, authentication, service), a phone prefix if the price is for those numbers only, and the amount — per message, per segment for SMS. The longest matching prefix wins. Empty: no cost is shown."</p>
                <label for="currency">"Currency"</label>
                <input id="currency" name="currency" value=shown.currency maxlength="3" size="4"/>
                <label for="prices">"Price table (“sms 0.0079”, “whatsapp marketing 0.025”, “whatsapp marketing +49 0.1365”)"</label>
                <textarea id="prices" name="prices" rows="6">{shown.prices}</textarea>
            </fieldset>
            <h2>"Approval"</h2>
            <fieldset>
                <legend>"Broadcasts need an admin's approval when they reach more customers or cost more than this (both empty: never)"</legend>
                <label for="approval_customers">"More customers than"</label>
                <input id="approval_customers" name="approval_customers" type="number" min="0" value=shown.approval_customers/>
                <label for="approval_cost">"Costing more than (in the price table's currency)"</label>
                <input id="approval_cost" name="approval_cost" inputmode="decimal" value=shown.approval_cost/>
            </fieldset>
            <div class="actions">
                <button type="submit" class="primary">"Save settings"</button>
            </div>
        </form>
    }
}

/// A kind of channel as the Settings page names it.
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "whatsapp" => "WhatsApp",
        "sms" => "SMS",
        "email" => "Email",
        _ => "Telegram",
    }
}
