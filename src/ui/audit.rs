//! The audit log page (admins and managers): who did what, to what, when; filters in the URL
//! (a plain GET form), older entries page by page, and the same selection as CSV.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::staff::audit_page;
use crate::model::audit::{AuditPage, AuditQuery};
use crate::model::list_query::encode_component;
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

/// The query string of `q` (without `before`), for links and the export.
fn query_string(q: &AuditQuery) -> String {
    let mut parts = Vec::new();
    if let Some(a) = q.actor {
        parts.push(format!("actor={a}"));
    }
    for (k, v) in [
        ("action", &q.action),
        ("subject", &q.subject),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", encode_component(v)));
        }
    }
    if let Some(s) = q.subject_id {
        parts.push(format!("subject_id={s}"));
    }
    parts.join("&")
}

#[component]
pub fn AuditPageView() -> impl IntoView {
    let query = use_query_map().with_untracked(|q| {
        let text = |k: &str| q.get(k).filter(|v| !v.is_empty());
        AuditQuery {
            actor: text("actor").and_then(|v| v.parse().ok()),
            action: text("action"),
            subject: text("subject"),
            subject_id: text("subject_id").and_then(|v| v.parse().ok()),
            from: text("from"),
            to: text("to"),
            before: text("before").and_then(|v| v.parse().ok()),
        }
    });
    let data = Resource::new(move || (), move |_| audit_page(query.clone()));
    view! {
        <Title text="Audit log · Herald"/>
        <AppHeader current="audit"/>
        <main>
            <h1>"Audit log"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |p| view! { <Log page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Log(page: AuditPage) -> impl IntoView {
    let q = page.query.clone();
    let qs = query_string(&q);
    let export = if qs.is_empty() {
        "/audit.csv".to_string()
    } else {
        format!("/audit.csv?{qs}")
    };
    let older = page.next.map(|b| {
        if qs.is_empty() {
            format!("/audit?before={b}")
        } else {
            format!("/audit?{qs}&before={b}")
        }
    });
    let selected = |a: &Option<String>, v: &str| a.as_deref() == Some(v);
    view! {
        {page.notice.map(|n| view! { <p class="error" role="alert">{n}</p> })}
        <form method="get" action="/audit" class="filters">
            <label for="audit-actor">"Person"</label>
            <select id="audit-actor" name="actor">
                <option value="" selected=q.actor.is_none()>"Anyone"</option>
                <option value="0" selected=q.actor == Some(0)>"Herald (automatic)"</option>
                {page.people.iter().map(|(id, name)| view! {
                    <option value=id.to_string() selected=q.actor == Some(*id)>{name.clone()}</option>
                }).collect_view()}
            </select>
            <label for="audit-action">"Action"</label>
            <select id="audit-action" name="action">
                <option value="">"Any"</option>
                {page.actions.iter().map(|a| view! {
                    <option value=a.clone() selected=selected(&q.action, a)>{a.clone()}</option>
                }).collect_view()}
            </select>
            <label for="audit-subject">"Object"</label>
            <select id="audit-subject" name="subject">
                <option value="">"Any"</option>
                {page.subjects.iter().map(|s| view! {
                    <option value=s.clone() selected=selected(&q.subject, s)>{s.clone()}</option>
                }).collect_view()}
            </select>
            <label for="audit-from">"From"</label>
            <input id="audit-from" name="from" type="date" value=q.from.clone().unwrap_or_default()/>
            <label for="audit-to">"To"</label>
            <input id="audit-to" name="to" type="date" value=q.to.clone().unwrap_or_default()/>
            <button type="submit">"Filter"</button>
            <a href="/audit">"Clear"</a>
            <a href=export class="button">"Export CSV"</a>
        </form>
        <table class="audit">
            <thead>
                <tr>
                    <th scope="col">"When"</th>
                    <th scope="col">"Who"</th>
                    <th scope="col">"Action"</th>
                    <th scope="col">"Object"</th>
                    <th scope="col">"Detail"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|r| {
                    let action = r.action.clone();
                    view! {
                    <tr data-action=action>
                        <td>{r.at}</td>
                        <td>{r.actor}</td>
                        <td>{r.action}</td>
                        <td>{r.subject}{r.subject_id.map(|i| format!(" #{i}"))}</td>
                        <td>{r.detail}</td>
                    </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {older.map(|href| view! { <a href=href>"Older entries"</a> })}
    }
}
