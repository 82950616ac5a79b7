//! The home page: every broadcast, searchable and sortable, with the pause/resume toggle.
//! Rendered whole on the server; search is a GET form, sorting and paging are links, and the
//! toggle is a form posting to the `set_paused` server function, which comes back here.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::broadcasts::{SendMissedNow, SetPaused, list_broadcasts};
use crate::model::list_query::{MAX_SEARCH_CHARS, RawListParams};
use crate::model::{
    BroadcastRow, BroadcastStatus, ListPage, ListQuery, LiveState, SortDir, SortKey,
};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

const NOT_ADMIN: &str = "Only admins can pause or resume broadcasts.";

#[component]
pub fn BroadcastListPage() -> impl IntoView {
    let query = use_query_map();
    let (notice, undo) = query.with_untracked(|q| {
        (
            q.get("notice"),
            q.get("undo").and_then(|u| u.parse::<i64>().ok()),
        )
    });
    let (params, error) = query.with_untracked(|q| {
        (
            RawListParams {
                q: q.get("q"),
                sort: q.get("sort"),
                dir: q.get("dir"),
                after: q.get("after"),
                before: q.get("before"),
            },
            q.get("error"),
        )
    });
    let search = params.q.clone().unwrap_or_default();
    let (sort, dir) = (params.sort.clone(), params.dir.clone());
    let page = Resource::new(
        move || params.clone(),
        |p| list_broadcasts(p.q, p.sort, p.dir, p.after, p.before),
    );

    view! {
        <Title text="Broadcasts · Herald"/>
        <AppHeader current="broadcasts"/>
        <main>
            <div class="page-head">
                <h1>"Broadcasts"</h1>
                <a href="/broadcasts/new" class="button primary">"New Broadcast"</a>
            </div>
            <form method="get" action="/" class="search" role="search">
                <label for="q" class="visually-hidden">"Search broadcasts"</label>
                <input
                    id="q"
                    type="search"
                    name="q"
                    placeholder="Search by name or message"
                    maxlength=MAX_SEARCH_CHARS.to_string()
                    value=search
                />
                {sort.map(|s| view! { <input type="hidden" name="sort" value=s/> })}
                {dir.map(|d| view! { <input type="hidden" name="dir" value=d/> })}
                <button type="submit">"Search"</button>
            </form>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {undo.map(|id| view! {
                <form method="post" action=format!("/broadcasts/{id}/undo") class="inline">
                    <button type="submit" class="secondary" data-testid="undo">"Undo sending"</button>
                </form>
            })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading broadcasts…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(page.await, |p| view! { <ListView page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

#[component]
fn ListView(page: ListPage) -> impl IntoView {
    let q = page.query.clone();
    let header = move |key: SortKey, label: &'static str| {
        let sorted = q.sort.same_column(key);
        let aria = sorted.then_some(match q.dir {
            SortDir::Asc => "ascending",
            SortDir::Desc => "descending",
        });
        let arrow = match (sorted, q.dir) {
            (false, _) => "",
            (true, SortDir::Asc) => " ▲",
            (true, SortDir::Desc) => " ▼",
        };
        view! {
            <th scope="col" aria-sort=aria>
                <a href=q.sort_href(key) data-sort=key.as_str()>{label}{arrow}</a>
            </th>
        }
    };
    let can_pause = page.can_pause;
    let can_edit = page.can_edit;
    let empty = page.rows.is_empty();
    let searched = page.query.search.clone();
    view! {
        <SortMenu query=page.query.clone()/>
        {page.notices.into_iter().map(|n| view! { <p class="notice" role="status">{n}</p> }).collect_view()}
        {(!can_pause).then(|| view! { <p class="muted small" id="toggle-reason">{NOT_ADMIN}</p> })}
        <table class="broadcasts">
            <caption class="visually-hidden">"Broadcasts"</caption>
            <thead>
                <tr>
                    <th scope="col">"Name"</th>
                    {header(SortKey::Created, "Created")}
                    {header(SortKey::SendDate, "Sending date")}
                    {header(SortKey::SENDING_FIRST, "Status")}
                    <th scope="col">"Active"</th>
                    <th scope="col">"Results"</th>
                </tr>
            </thead>
            <tbody>
                {page.rows.into_iter().map(|r| view! { <Row row=r can_pause can_edit/> }).collect_view()}
            </tbody>
        </table>
        {empty.then(|| {
            let text = if searched.is_empty() {
                "No broadcasts yet.".to_string()
            } else {
                format!("No broadcasts match “{searched}”.")
            };
            view! { <p class="empty">{text}</p> }
        })}
        <nav class="pager" aria-label="Pages">
            {page.prev.map(|h| view! { <a href=h rel="prev">"← Previous"</a> })}
            {page.next.map(|h| view! { <a href=h rel="next">"Next →"</a> })}
        </nav>
        <p class="muted small">"Times are in " {page.time_zone} "."</p>
    }
}

/// "Sort by": every order the list offers, as a GET form so it works without JavaScript; with
/// it, choosing submits at once.
#[component]
fn SortMenu(query: ListQuery) -> impl IntoView {
    let current = query.sort;
    let choices: Vec<(String, String)> = SortKey::menu()
        .into_iter()
        .map(|(key, label)| (key.as_str().to_string(), label))
        .collect();
    view! {
        <form method="get" action="/" class="sort-menu">
            {(!query.search.is_empty()).then(|| view! { <input type="hidden" name="q" value=query.search.clone()/> })}
            <label for="sort">"Sort by"</label>
            <SortSelect current=current.as_str().to_string() choices/>
            <button type="submit" class="secondary">"Sort"</button>
        </form>
    }
}

/// The menu's select; with JavaScript a choice submits its form.
#[island]
fn SortSelect(current: String, choices: Vec<(String, String)>) -> impl IntoView {
    let on_change = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let form = _ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
                .and_then(|s| s.form());
            if let Some(form) = form {
                let _ = form.request_submit();
            }
        }
    };
    view! {
        <select id="sort" name="sort" on:change=on_change>
            {choices.into_iter().map(|(value, label)| {
                let selected = value == current;
                view! { <option value=value selected=selected>{label}</option> }
            }).collect_view()}
        </select>
    }
}

#[component]
fn Row(row: BroadcastRow, can_pause: bool, can_edit: bool) -> impl IntoView {
    let status = row.status;
    let send = match (&row.send_date, row.send_date_actual) {
        (Some(d), true) => view! { <span>{d.clone()}</span> }.into_any(),
        (Some(d), false) => {
            view! { <span>{d.clone()} " " <span class="muted small">"(scheduled)"</span></span> }
                .into_any()
        }
        (None, _) => view! { <span class="muted">"—"</span> }.into_any(),
    };
    view! {
        <tr data-id=row.id data-status=status.css()>
            <td class="name"><a href=format!("/broadcasts/{}/edit", row.id)>{row.name.clone()}</a></td>
            <td>{row.created.clone()}</td>
            <td>{send}</td>
            <td>
                <LiveStatus id=row.id live=row.live.clone()/>
                {row.pause_reason.clone().map(|why| view! { <p class="pause-reason small">{why}</p> })}
                {row.approval.clone().map(|(state, note)| view! {
                    <Approval id=row.id name=row.name.clone() state note can_decide=can_pause from="list"/>
                })}
                {(row.live.missed && can_edit).then(|| view! {
                    <form method="post" action=SendMissedNow::url() class="inline">
                        <input type="hidden" name="id" value=row.id.to_string()/>
                        <button type="submit" class="link" aria-label=format!("Send now: {}", row.name)>"Send now"</button>
                    </form>
                })}
            </td>
            <td>
                <Toggle id=row.id name=row.name.clone() status can_pause/>
            </td>
            <td class="results">
                {(status != BroadcastStatus::Draft).then(|| view! {
                    <a class="view" href=format!("/broadcasts/{}", row.id)>"View"</a>
                })}
            </td>
        </tr>
    }
}

/// A draft's approval: waiting (with why, and for admins the approve and reject form with a
/// comment), rejected with the admin's comment, or approved.
#[component]
pub fn Approval(
    id: i64,
    name: String,
    state: String,
    note: String,
    can_decide: bool,
    from: &'static str,
) -> impl IntoView {
    let (label, class) = match state.as_str() {
        "pending" => ("Awaiting approval", "approval pending small"),
        "rejected" => ("Rejected", "approval rejected small"),
        _ => ("Approved", "approval small"),
    };
    let field = format!("comment-{from}-{id}");
    view! {
        <p class=class data-testid="approval">
            <strong>{label}</strong>
            {(!note.is_empty()).then(|| format!(": {note}"))}
        </p>
        {(can_decide && state == "pending").then(|| view! {
            <form method="post" action=format!("/broadcasts/{id}/approval") class="approve">
                <input type="hidden" name="from" value=from/>
                <label for=field.clone()>{format!("Comment on “{name}” (required to reject)")}</label>
                <textarea id=field name="comment" rows="2" maxlength="1000"></textarea>
                <button type="submit" name="decision" value="approve" class="primary">"Approve"</button>
                <button type="submit" name="decision" value="reject" class="secondary">"Reject"</button>
            </form>
        })}
    }
}

/// The pause/resume switch: "on" means the broadcast is active (will send or is sending).
#[component]
fn Toggle(id: i64, name: String, status: BroadcastStatus, can_pause: bool) -> impl IntoView {
    if !status.toggleable() {
        return view! { <span class="muted" title="Only scheduled or sending broadcasts can be paused">"—"</span> }
            .into_any();
    }
    let active = status != BroadcastStatus::Paused;
    let label = format!("{}: {name}", if active { "Pause" } else { "Resume" });
    let text = if active { "On" } else { "Paused" };
    if !can_pause {
        return view! {
            <button
                type="button"
                class="switch"
                role="switch"
                aria-checked=active.to_string()
                aria-label=label
                aria-describedby="toggle-reason"
                title=NOT_ADMIN
                disabled
            >
                <span class="knob" aria-hidden="true"></span>
                {text}
            </button>
        }
        .into_any();
    }
    view! {
        <form method="post" action=SetPaused::url()>
            <input type="hidden" name="id" value=id.to_string()/>
            <input type="hidden" name="paused" value=active.to_string()/>
            <button type="submit" class="switch" role="switch" aria-checked=active.to_string() aria-label=label>
                <span class="knob" aria-hidden="true"></span>
                {text}
            </button>
        </form>
    }
    .into_any()
}

/// A row's status, with a progress bar while it sends. While it may still change by itself
/// (scheduled, sending, paused) it follows the broadcast's events: the page's moving rows share
/// one stream (`GET /live?rows=…`), opened once they have all hydrated.
#[island]
fn LiveStatus(id: i64, live: LiveState) -> impl IntoView {
    let state = RwSignal::new(live);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if state.get_untracked().moving() {
            rows::follow(id, state);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
    });
    view! {
        <span class=move || format!("status status-{}", state.get().status.css())>{move || state.get().headline()}</span>
        {move || {
            let s = state.get();
            let shown = s.total > 0
                && matches!(s.status, BroadcastStatus::Sending | BroadcastStatus::Paused);
            shown.then(|| {
                let text = format!("{} of {}", s.done(), s.total);
                view! {
                    <progress class="sending" max=s.total.to_string() value=s.done().to_string() aria-label=format!("Sent {text}")></progress>
                    <span class="small muted progress-text">{text}</span>
                }
            })
        }}
    }
}

/// The list's moving rows and their one event stream (the islands share this module's
/// memory in the browser).
#[cfg(feature = "hydrate")]
mod rows {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use leptos::prelude::*;

    use crate::model::LiveState;

    thread_local! {
        static ROWS: RefCell<BTreeMap<i64, RwSignal<LiveState>>> = Default::default();
        /// Rows registered since the last stream was opened.
        static WAITING: RefCell<Vec<i64>> = Default::default();
    }

    #[derive(serde::Deserialize)]
    struct Row {
        id: i64,
        state: LiveState,
    }

    /// Follows row `id` into `state`. Islands hydrate one task after another, so the rows
    /// registered within 50 ms share a stream; a row registered later gets the next one.
    pub fn follow(id: i64, state: RwSignal<LiveState>) {
        ROWS.with(|r| r.borrow_mut().insert(id, state));
        let first = WAITING.with(|w| {
            let mut w = w.borrow_mut();
            w.push(id);
            w.len() == 1
        });
        if first {
            set_timeout(open, std::time::Duration::from_millis(50));
        }
    }

    /// Opens one stream for the rows waiting.
    fn open() {
        let ids: Vec<String> = WAITING.with(|w| w.take().iter().map(i64::to_string).collect());
        if ids.is_empty() {
            return;
        }
        let url = format!("/live?rows={}", ids.join(","));
        crate::ui::live::follow(&url, "row", |data| {
            if let Ok(row) = serde_json::from_str::<Row>(&data) {
                let signal = ROWS.with(|r| r.borrow().get(&row.id).copied());
                if let Some(s) = signal {
                    s.set(row.state);
                }
            }
        });
    }
}
