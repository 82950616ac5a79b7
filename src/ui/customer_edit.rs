//! One customer's page: edit name, addresses per channel, tags, robot groups, assignee, time
//! zone and opt-out. A plain form posting to `/customers/{id}/save`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::customers::customer_edit;
use crate::model::customer_edit::{CustomerEdit, CustomerForm};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn CustomerEditPage() -> impl IntoView {
    let id = use_params_map()
        .with_untracked(|p| p.get("id"))
        .and_then(|id| id.parse::<i64>().ok())
        .unwrap_or(0);
    let query = use_query_map();
    // After a refused save the URL carries the message and everything that was typed.
    let (notice, error, typed) = query.with_untracked(|q| {
        let error = q.get("error");
        let typed = error.as_ref().map(|_| CustomerForm {
            name: q.get("name").unwrap_or_default(),
            phone: q.get("phone").unwrap_or_default(),
            email: q.get("email").unwrap_or_default(),
            whatsapp_id: q.get("whatsapp_id").unwrap_or_default(),
            telegram_chat_id: q.get("telegram_chat_id").unwrap_or_default(),
            tags: q.get("tags").unwrap_or_default(),
            groups: q.get_all("group").unwrap_or_default(),
            assignee: q.get("assignee").unwrap_or_default(),
            time_zone: q.get("time_zone").unwrap_or_default(),
            opted_out: q.get("opted_out").is_some(),
            version: q
                .get("version")
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
        });
        (q.get("notice"), error, typed)
    });
    let data = Resource::new(move || id, customer_edit);
    view! {
        <Title text="Customer · Herald"/>
        <AppHeader current="customers"/>
        <main class="narrow">
            <p><a href="/customers">"← All customers"</a> " · " <a href=format!("/customers/{id}/chat")>"Chat"</a></p>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let typed = typed.clone();
                    Suspend::new(async move {
                        page_or_error(data.await, |d| view! { <EditForm data=d typed/> }.into_any())
                    })
                }}
            </Suspense>
        </main>
    }
}

#[component]
fn EditForm(data: CustomerEdit, typed: Option<CustomerForm>) -> impl IntoView {
    let f = typed.unwrap_or(data.form);
    let action = format!("/customers/{}/save", data.id);
    let field = |id: &'static str,
                 label: &'static str,
                 value: String,
                 kind: &'static str,
                 hint: &'static str| {
        view! {
            <label for=id>{label}</label>
            <input id=id name=id type=kind value=value/>
            {(!hint.is_empty()).then(|| view! { <span class="muted small">{hint}</span> })}
        }
    };
    let groups = f.groups.clone();
    view! {
        <h1>{f.name.clone()}</h1>
        <form method="post" action=action class="edit">
            <input type="hidden" name="version" value=f.version.to_string()/>
            <fieldset disabled=!data.can_edit>
                {(!data.can_edit).then(|| view! { <p class="muted">"Managers can look but not change customers."</p> })}
                <label for="name">"Name"</label>
                <input id="name" name="name" value=f.name.clone() required maxlength="200"/>
                {field("phone", "Phone (SMS)", f.phone.clone(), "tel", "With + and the country code.")}
                {field("email", "Email", f.email.clone(), "text", "")}
                {field("whatsapp_id", "WhatsApp id", f.whatsapp_id.clone(), "text", "The phone number's digits, without +.")}
                {field("telegram_chat_id", "Telegram chat id", f.telegram_chat_id.clone(), "text", "")}
                {field("tags", "Tags", f.tags.clone(), "text", "Separated by commas; new ones are created.")}
                <fieldset class="groups">
                    <legend>"Robot groups"</legend>
                    {data.all_groups.into_iter().map(|g| {
                        let checked = groups.contains(&g);
                        view! {
                            <label class="check">
                                <input type="checkbox" name="group" value=g.clone() checked=checked/>
                                {g.clone()}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <label for="assignee">"Assignee"</label>
                <select id="assignee" name="assignee">
                    <option value="" selected=f.assignee.is_empty()>"Nobody"</option>
                    {data.staff.into_iter().map(|(id, name)| {
                        let selected = f.assignee == id.to_string();
                        view! { <option value=id.to_string() selected=selected>{name}</option> }
                    }).collect_view()}
                </select>
                <label for="time_zone">"Time zone"</label>
                <input id="time_zone" name="time_zone" list="zones" value=f.time_zone.clone() required/>
                <datalist id="zones">
                    {data.zones.into_iter().map(|z| view! { <option value=z></option> }).collect_view()}
                </datalist>
                <label for="opted_out" class="check">
                    <input type="checkbox" id="opted_out" name="opted_out" checked=f.opted_out/>
                    "Opted out: never include in a broadcast"
                </label>
                {(!data.channel_opt_outs.is_empty()).then(|| view! {
                    <p class="muted opt-outs">
                        {format!("Replied STOP, so no broadcasts on: {}.", data.channel_opt_outs.join(", "))}
                    </p>
                })}
                <button type="submit" class="primary">"Save"</button>
            </fieldset>
        </form>
        <ConsentSection id=data.id lines=data.consents can_edit=data.can_edit/>
    }
}

/// The customer's consent per kind of channel and purpose, with how Herald knows; staff record
/// a change with a note saying how they know.
#[component]
fn ConsentSection(
    id: i64,
    lines: Vec<crate::model::consent::ConsentLine>,
    can_edit: bool,
) -> impl IntoView {
    use crate::model::consent::{MAX_NOTE_CHARS, Purpose};
    use crate::model::workspace::CONSENT_KINDS;
    view! {
        <section class="consent" aria-labelledby="consent-title">
            <h2 id="consent-title">"Consent"</h2>
            {if lines.is_empty() {
                view! { <p class="muted">"Nothing recorded: marketing goes only where the workspace needs no opt-in."</p> }.into_any()
            } else {
                view! {
                    <table class="consents">
                        <thead><tr><th scope="col">"Channel"</th><th scope="col">"Purpose"</th><th scope="col">"Word"</th><th scope="col">"How"</th><th scope="col">"When"</th></tr></thead>
                        <tbody>
                            {lines.into_iter().map(|l| view! {
                                <tr data-kind=l.kind.clone() data-purpose=l.purpose.as_str()>
                                    <td>{l.kind.clone()}</td>
                                    <td>{l.purpose.as_str()}</td>
                                    <td>{if l.granted { "opted in" } else { "withdrawn" }}</td>
                                    <td>{format!("{}{}", l.source.label(), l.note.map(|n| format!(": {n}")).unwrap_or_default())}</td>
                                    <td>{l.at}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            {can_edit.then(|| view! {
                <form method="post" action=format!("/customers/{id}/consent") class="edit consent-form">
                    <label for="consent-kind">"Channel"</label>
                    <select id="consent-kind" name="kind">
                        {CONSENT_KINDS.iter().map(|k| view! { <option value=*k>{*k}</option> }).collect_view()}
                    </select>
                    <label for="consent-purpose">"Purpose"</label>
                    <select id="consent-purpose" name="purpose">
                        {Purpose::ALL.into_iter().map(|p| view! { <option value=p.as_str()>{p.as_str()}</option> }).collect_view()}
                    </select>
                    <label for="consent-granted">"The customer"</label>
                    <select id="consent-granted" name="granted">
                        <option value="yes">"agreed"</option>
                        <option value="no">"withdrew"</option>
                    </select>
                    <label for="consent-note">"How you know"</label>
                    <input id="consent-note" name="note" required maxlength=MAX_NOTE_CHARS.to_string()/>
                    <button type="submit" class="secondary">"Record consent"</button>
                </form>
            })}
        </section>
    }
}
