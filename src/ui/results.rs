//! A broadcast's results page (`/broadcasts/{id}`): the six numbers DESIGN.md defines, a
//! funnel drawn as accessible SVG, and a breakdown per channel. The numbers live in an island
//! that follows the broadcast's events (`GET /live?results=N`): the server renders them again
//! as sends are recorded and reports and replies arrive, so they rise without a reload.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::broadcasts::{
    ResendUnknown, RetryFailed, broadcast_cost, broadcast_recipients, broadcast_results,
};
use crate::model::delivery::DeliveryState;
use crate::model::results::{RecipientPage, RecipientRow, STATUS_CHOICES, state_label};
use crate::ui::fragments::ResultsBody;
use crate::ui::header::AppHeader;
use crate::ui::live::LiveFragment;
use crate::ui::page_or_error;

#[component]
pub fn ResultsPage() -> impl IntoView {
    let id = use_params_map()
        .with_untracked(|p| p.get("id"))
        .and_then(|id| id.parse::<i64>().ok())
        .unwrap_or(0);
    let data = Resource::new(move || id, broadcast_results);
    let cost = Resource::new(move || id, broadcast_cost);
    let query = use_query_map();
    let (args, notice, error) = query.with_untracked(|q| {
        (
            (
                id,
                q.get("status"),
                q.get("tag"),
                q.get("assignee"),
                q.get("channel"),
                q.get("after"),
                q.get("before"),
            ),
            q.get("notice"),
            q.get("error"),
        )
    });
    let recipients = Resource::new(
        move || args.clone(),
        |(id, status, tag, assignee, channel, after, before)| {
            broadcast_recipients(id, status, tag, assignee, channel, after, before)
        },
    );
    view! {
        <Title text="Results · Herald"/>
        <AppHeader current="broadcasts"/>
        <main>
            <p><a href="/">"← All broadcasts"</a></p>
            {notice.map(|n| view! { <p class="success" role="status">{n}</p> })}
            {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading results…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(data.await, |r| {
                        let follow = r.clone();
                        view! {
                            <div class="page-head">
                                <h1>{r.name.clone()}</h1>
                                <a href=format!("/broadcasts/{}/edit", r.id) class="button">"Message and settings"</a>
                            </div>
                            <LiveFragment src=format!("/live?results={}", r.id) event="results".to_string()>
                                <ResultsBody r=r.clone()/>
                            </LiveFragment>
                            <FollowUps r=follow/>
                        }.into_any()
                    })
                })}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    cost.await.ok().flatten().map(|c| view! { <CostSoFar cost=c/> })
                })}
            </Suspense>
            <Suspense fallback=|| view! { <p class="muted">"Loading recipients…"</p> }>
                {move || Suspend::new(async move {
                    page_or_error(recipients.await, |p| view! { <Recipients page=p/> }.into_any())
                })}
            </Suspense>
        </main>
    }
}

/// What this broadcast follows up, its follow-ups, and "New broadcast to …" (a draft to the
/// recipients with the chosen outcome, frozen when it is made).
#[component]
fn FollowUps(r: crate::model::results::Results) -> impl IntoView {
    use crate::model::retarget::Outcome;
    let id = r.id;
    view! {
        <section aria-labelledby="follow-head" data-testid="follow-ups">
            <h2 id="follow-head">"Follow up"</h2>
            {r.follow_up_of.clone().map(|(of, name)| view! {
                <p>"A follow-up of " <a href=format!("/broadcasts/{of}")>{name}</a> "."</p>
            })}
            {(!r.follow_ups.is_empty()).then(|| view! {
                <ul>
                    {r.follow_ups.clone().into_iter().map(|(f, name)| view! {
                        <li><a href=format!("/broadcasts/{f}")>{name}</a></li>
                    }).collect_view()}
                </ul>
            })}
            {r.can_follow_up.then(|| view! {
                <form method="post" action=format!("/broadcasts/{id}/follow-up") class="inline">
                    <label for="outcome">"New broadcast to the recipients"</label>
                    <select id="outcome" name="outcome">
                        {Outcome::ALL.into_iter().map(|o| view! {
                            <option value=o.as_str()>{o.label()}</option>
                        }).collect_view()}
                    </select>
                    <button type="submit" class="secondary">"Create follow-up"</button>
                </form>
            })}
        </section>
    }
}

/// The cost so far, by the price table: what the providers accepted.
#[component]
fn CostSoFar(cost: crate::model::cost::Cost) -> impl IntoView {
    let reported = cost.lines.iter().any(|l| l.reported);
    view! {
        <section aria-labelledby="cost-head" data-testid="cost">
            <h2 id="cost-head">"Cost so far"</h2>
            <p>{cost.text()}</p>
            <p class="muted">
                {if reported {
                    "WhatsApp messages are priced by the category WhatsApp reported for each; the others by the template's. "
                } else {
                    ""
                }}
                "SMS are counted in segments as the message measures for the audience's longest name. Messages the providers accepted; reload the page for the latest."
            </p>
        </section>
    }
}

/// The per-recipient table: a GET form of filters, one page of rows, page links, the CSV of
/// the filtered rows and "Retry failed".
#[component]
fn Recipients(page: RecipientPage) -> impl IntoView {
    let id = page.broadcast_id;
    let f = page.filter.clone();
    let q = f.query();
    let csv = if q.is_empty() {
        format!("/broadcasts/{id}/recipients.csv")
    } else {
        format!("/broadcasts/{id}/recipients.csv?{q}")
    };
    view! {
        <h2 id="recipients">"Recipients"</h2>
        <RecipientFilters page=page.clone() csv=csv/>
        {page.can_retry.then(|| view! {
            <form method="post" action=RetryFailed::url() class="inline retry">
                <input type="hidden" name="id" value=id.to_string()/>
                <button type="submit">{format!("Retry failed ({})", page.failed)}</button>
            </form>
        })}
        {page.can_resend_unknown.then(|| view! {
            <form method="post" action=ResendUnknown::url() class="inline resend-unknown" data-testid="resend-unknown">
                <input type="hidden" name="id" value=id.to_string()/>
                <label>
                    <input type="checkbox" name="confirmed" value="yes" required=true/>
                    {format!(" Some of these {} customers may have the message already and would get it twice.", page.unknown)}
                </label>
                <button type="submit">{format!("Resend the {} unknown", page.unknown)}</button>
            </form>
        })}
        {if page.rows.is_empty() {
            view! { <p class="muted">"No recipients match."</p> }.into_any()
        } else {
            view! { <RecipientTable rows=page.rows/> }.into_any()
        }}
        <nav class="pager" aria-label="Recipient pages">
            {page.prev.map(|h| view! { <a href=h rel="prev">"← Previous"</a> })}
            {page.next.map(|h| view! { <a href=h rel="next">"Next →"</a> })}
        </nav>
    }
}

/// The table's filters (a GET form, so they work without JavaScript) and its export link.
#[component]
fn RecipientFilters(page: RecipientPage, csv: String) -> impl IntoView {
    let id = page.broadcast_id;
    let f = page.filter.clone();
    let selected = |v: Option<i64>, id: i64| v == Some(id);
    view! {
        <form method="get" action=format!("/broadcasts/{id}#recipients") class="filters" aria-label="Filter recipients">
            <label>"Status "
                <select name="status">
                    <option value="">"Any"</option>
                    {STATUS_CHOICES.iter().map(|(v, label)| view! {
                        <option value=*v selected=f.status.as_deref() == Some(*v)>{*label}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Tag "
                <select name="tag">
                    <option value="">"Any"</option>
                    {page.tags.iter().map(|(t, name)| view! {
                        <option value=t.to_string() selected=selected(f.tag, *t)>{name.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Assignee "
                <select name="assignee">
                    <option value="">"Anyone"</option>
                    <option value="0" selected=selected(f.assignee, 0)>"Nobody"</option>
                    {page.assignees.iter().map(|(a, name)| view! {
                        <option value=a.to_string() selected=selected(f.assignee, *a)>{name.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Channel "
                <select name="channel">
                    <option value="">"Any"</option>
                    {page.channels.iter().map(|(c, name)| view! {
                        <option value=c.to_string() selected=selected(f.channel, *c)>{name.clone()}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Filter"</button>
            <a href=csv class="button" download="">"Export CSV"</a>
        </form>
    }
}

/// The recipients on this page of the table.
#[component]
fn RecipientTable(rows: Vec<RecipientRow>) -> impl IntoView {
    view! {
                <table class="recipients">
                    <thead>
                        <tr>
                            <th scope="col">"Customer"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"Tags"</th>
                            <th scope="col">"Assignee"</th>
                            <th scope="col">"Channel"</th>
                            <th scope="col">"Sent"</th>
                            <th scope="col">"Delivered"</th>
                            <th scope="col">"Read"</th>
                            <th scope="col">"Replied"</th>
                            <th scope="col">"Actions"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(|r| view! { <RecipientLine row=r/> }).collect_view()}
                    </tbody>
                </table>
    }
}

#[component]
fn RecipientLine(row: RecipientRow) -> impl IntoView {
    let dash = || view! { <span class="muted">"—"</span> };
    let time = move |t: Option<String>| match t {
        Some(t) => view! { <span>{t}</span> }.into_any(),
        None => dash().into_any(),
    };
    view! {
        <tr data-delivery=row.delivery_id data-state=row.state.as_str()>
            <td><a href=format!("/customers/{}", row.customer_id)>{row.name.clone()}</a></td>
            <td>
                <span class=format!("delivery delivery-{}", row.state.as_str())>{state_label(row.state)}</span>
                {row.error.clone().filter(|_| matches!(row.state, DeliveryState::Failed | DeliveryState::Unknown)).map(|e| view! { <div class="small muted reason">{e}</div> })}
            </td>
            <td>{row.tags.join(", ")}</td>
            <td>{match row.assignee.clone() { Some(a) => view! { <span>{a}</span> }.into_any(), None => dash().into_any() }}</td>
            <td>
                {row.channel.clone()}
                {row.variant.clone().map(|v| view! { <div class="small muted" data-testid="variant">{v}</div> })}
                {(!row.chain.is_empty()).then(|| view! {
                    <ol class="small muted chain" data-testid="chain" aria-label="Tried before">
                        {row.chain.clone().into_iter().map(|h| view! { <li>{h}</li> }).collect_view()}
                    </ol>
                })}
            </td>
            <td>{time(row.sent.clone())}</td>
            <td>{time(row.delivered.clone())}</td>
            <td>{time(row.read.clone())}</td>
            <td>{time(row.replied.clone())}</td>
            <td><a href=format!("/customers/{}/chat", row.customer_id) class="chat-link">"Chat"</a></td>
        </tr>
    }
}
