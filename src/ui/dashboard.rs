//! The managers' dashboard (`/dashboard`): the 50 most recently started broadcasts with their
//! numbers and rates side by side, sortable by any column (links, so it works without
//! JavaScript). Rates a broadcast's channels cannot report say "not measured" and sort last.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::broadcasts::dashboard;
use crate::model::results::{DASHBOARD_SORTS, Dashboard, thousands as number};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let args = use_query_map().with_untracked(|q| (q.get("sort"), q.get("dir")));
    let data = Resource::new(move || args.clone(), |(s, d)| dashboard(s, d));
    view! {
        <Title text="Dashboard · Herald"/>
        <AppHeader current="dashboard"/>
        <main>
            <h1>"Dashboard"</h1>
            <p class="muted">"The 50 most recently started broadcasts. Select a column heading to sort."</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |d| view! { <Table d=d/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn Table(d: Dashboard) -> impl IntoView {
    let header = |key: &'static str, label: &'static str| {
        let active = d.sort == key;
        // A new column starts high to low (names A to Z); the active one flips.
        let next_desc = if active { !d.desc } else { key != "name" };
        let href = format!(
            "/dashboard?sort={key}&dir={}",
            if next_desc { "desc" } else { "asc" }
        );
        let aria = active.then_some(if d.desc { "descending" } else { "ascending" });
        let arrow = match (active, d.desc) {
            (true, true) => " ↓",
            (true, false) => " ↑",
            _ => "",
        };
        view! { <th scope="col" aria-sort=aria><a href=href data-sort=key>{label}{arrow}</a></th> }
    };
    if d.rows.is_empty() {
        return view! { <p class="muted">"No broadcast has started yet."</p> }.into_any();
    }
    view! {
        <table class="dashboard">
            <caption class="visually-hidden">"Recent broadcasts and their rates"</caption>
            <thead>
                <tr>{DASHBOARD_SORTS.iter().map(|(k, l)| header(k, l)).collect_view()}</tr>
            </thead>
            <tbody>
                {d.rows.into_iter().map(|r| view! {
                    <tr data-id=r.id>
                        <th scope="row"><a href=format!("/broadcasts/{}", r.id)>{r.name.clone()}</a>
                            " " <span class=format!("status status-{}", r.status.css())>{r.status.label()}</span></th>
                        <td>{r.started.clone().unwrap_or_default()}</td>
                        <td class="num">{number(r.totals.audience)}</td>
                        <td class="num">{number(r.totals.sent)}</td>
                        <td class="num">{number(r.totals.failed)}</td>
                        <td class="num" data-rate="received">{r.received.label()}</td>
                        <td class="num" data-rate="read">{r.read.label()}</td>
                        <td class="num" data-rate="reply">{r.reply.label()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
