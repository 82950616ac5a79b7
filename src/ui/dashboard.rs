//! The managers' dashboard (`/dashboard`): the 50 most recently started broadcasts with their
//! numbers and rates side by side, sortable by any column (links, so it works without
//! JavaScript). Rates a broadcast's channels cannot report say "not measured" and sort last.
//! It follows the broadcasts' events (`GET /live?dashboard=1`): the server renders it again
//! as they change.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::broadcasts::dashboard;
use crate::model::results::Dashboard;
use crate::ui::fragments::DashboardBody;
use crate::ui::header::AppHeader;
use crate::ui::live::LiveFragment;
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
                    page_or_error(data.await, |d| {
                        let src = live_src(&d);
                        view! {
                            <LiveFragment src=src event="dashboard".to_string()>
                                <DashboardBody d=d/>
                            </LiveFragment>
                        }
                        .into_any()
                    })
                })}
            </Suspense>
        </main>
    }
}

/// The dashboard's event stream, in the order shown.
fn live_src(d: &Dashboard) -> String {
    format!(
        "/live?dashboard=1&sort={}&dir={}",
        d.sort,
        if d.desc { "desc" } else { "asc" }
    )
}
