//! A broadcast's results page (`/broadcasts/{id}`): the six numbers DESIGN.md defines, a
//! funnel drawn as accessible SVG, and a breakdown per channel. The numbers live in an island
//! that asks the server again every 2 s while the broadcast sends and every 10 s after (reports
//! and replies keep arriving), so they rise without a reload.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::broadcasts::{RetryFailed, broadcast_recipients, broadcast_results};
use crate::model::BroadcastStatus;
use crate::model::results::{
    Rate, RecipientPage, RecipientRow, Results, STATUS_CHOICES, state_label,
};
use crate::ui::header::AppHeader;
use crate::ui::page_or_error;

#[component]
pub fn ResultsPage() -> impl IntoView {
    let id = use_params_map()
        .with_untracked(|p| p.get("id"))
        .and_then(|id| id.parse::<i64>().ok())
        .unwrap_or(0);
    let data = Resource::new(move || id, broadcast_results);
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
                    page_or_error(data.await, |r| view! {
                        <div class="page-head">
                            <h1>{r.name.clone()}</h1>
                            <a href=format!("/broadcasts/{}/edit", r.id) class="button">"Message and settings"</a>
                        </div>
                        <LiveResults initial=r/>
                    }.into_any())
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

fn number(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn covers(names: &[String], rate: &Rate) -> String {
    match rate {
        Rate::NotMeasured if names.is_empty() => {
            "None of this broadcast's channels can report this.".into()
        }
        _ => format!("Covers {}.", names.join(", ")),
    }
}

/// The numbers, the funnel and the per-channel table, kept current.
#[island]
fn LiveResults(initial: Results) -> impl IntoView {
    let id = initial.id;
    let state = RwSignal::new(initial);
    Effect::new(move |_| {
        let ticks = std::cell::Cell::new(0u32);
        let handle = set_interval_with_handle(
            move || {
                ticks.set(ticks.get() + 1);
                let s = state.get_untracked();
                let sending = matches!(s.status, BroadcastStatus::Sending);
                // Every 2 s while sending; every 10 s once reports are all that can come.
                if !s.moving() || (!sending && !ticks.get().is_multiple_of(5)) {
                    return;
                }
                leptos::task::spawn_local(async move {
                    if let Ok(now) = broadcast_results(id).await {
                        state.set(now);
                    }
                });
            },
            std::time::Duration::from_millis(2000),
        );
        if let Ok(h) = handle {
            on_cleanup(move || h.clear());
        }
    });
    view! {
        <p class="muted" data-testid="results-status">
            <span class=move || format!("status status-{}", state.get().status.css())>{move || state.get().status.label()}</span>
            {move || state.get().started.map(|s| format!(" · started {s}"))}
            {move || state.get().finished.map(|s| format!(" · finished {s}"))}
        </p>
        <section class="stats" aria-label="Results">
            {move || {
                let r = state.get();
                let t = r.totals;
                let card = |key: &'static str, label: &'static str, value: String, note: String| view! {
                    <div class="stat" data-stat=key>
                        <div class="stat-label">{label}</div>
                        <div class="stat-value">{value}</div>
                        <div class="stat-note small muted">{note}</div>
                    </div>
                };
                view! {
                    {card("audience", "Total audience", number(t.audience), format!("{} waiting", number(t.waiting())))}
                    {card("sent", "Successful receivers", number(t.sent), "Accepted by the provider".to_string())}
                    {card("failed", "Failed receivers", number(t.failed), "Refused or undeliverable".to_string())}
                    {card("received", "Received rate", r.received.label(), covers(&r.received_covers, &r.received))}
                    {card("read", "Read rate", r.read.label(), covers(&r.read_covers, &r.read))}
                    {card("reply", "Reply rate", r.reply.label(), "Of the whole audience".to_string())}
                }
            }}
        </section>
        <h2>"Funnel"</h2>
        {move || view! { <Funnel results=state.get()/> }}
        <h2>"Over time"</h2>
        {move || view! { <Timeline results=state.get()/> }}
        <h2>"By channel"</h2>
        <table class="channels-results">
            <thead>
                <tr>
                    <th scope="col">"Channel"</th>
                    <th scope="col" class="num">"Audience"</th>
                    <th scope="col" class="num">"Successful"</th>
                    <th scope="col" class="num">"Failed"</th>
                    <th scope="col" class="num">"Received"</th>
                    <th scope="col" class="num">"Read"</th>
                    <th scope="col" class="num">"Replied"</th>
                </tr>
            </thead>
            <tbody>
                {move || state.get().channels.into_iter().map(|c| view! {
                    <tr data-channel=c.name.clone()>
                        <th scope="row">{c.name.clone()} " " <span class="small muted">{c.kind.label()}</span></th>
                        <td class="num">{number(c.counts.audience)}</td>
                        <td class="num">{number(c.counts.sent)}</td>
                        <td class="num">{number(c.counts.failed)}</td>
                        <td class="num" data-rate="received">{c.received.label()}</td>
                        <td class="num" data-rate="read">{c.read.label()}</td>
                        <td class="num" data-rate="reply">{c.reply.label()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Horizontal bars, one per step, as an SVG image with a title and a text description.
#[component]
fn Funnel(results: Results) -> impl IntoView {
    let steps = results.funnel();
    let top = steps.first().map(|s| s.1).unwrap_or(0).max(1);
    let row_h = 34;
    let height = steps.len() as i32 * row_h + 4;
    let desc = steps
        .iter()
        .map(|(label, n, measured)| {
            if *measured {
                format!("{label}: {}", number(*n))
            } else {
                format!("{label}: not measured")
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    view! {
        <svg class="funnel" viewBox=format!("0 0 600 {height}") width="100%" role="img" aria-labelledby="funnel-title funnel-desc">
            <title id="funnel-title">"Funnel: audience to replies"</title>
            <desc id="funnel-desc">{desc}</desc>
            {steps.into_iter().enumerate().map(|(i, (label, n, measured))| {
                let y = i as i32 * row_h + 2;
                let w = if measured { (n as f64 / top as f64 * 420.0).max(1.0) } else { 0.0 };
                let text = if measured { number(n) } else { "not measured".to_string() };
                view! {
                    <g class=if measured { "step" } else { "step unmeasured" }>
                        <text x="0" y=y + 21 class="funnel-label">{label}</text>
                        <rect x="100" y=y + 4 width=format!("{w:.1}") height="24" rx="3"></rect>
                        <text x=format!("{:.1}", 108.0 + w) y=y + 21 class="funnel-value">{text}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
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
    let selected = |v: Option<i64>, id: i64| v == Some(id);
    view! {
        <h2 id="recipients">"Recipients"</h2>
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
        {page.can_retry.then(|| view! {
            <form method="post" action=RetryFailed::url() class="inline retry">
                <input type="hidden" name="id" value=id.to_string()/>
                <button type="submit">{format!("Retry failed ({})", page.failed)}</button>
            </form>
        })}
        {if page.rows.is_empty() {
            view! { <p class="muted">"No recipients match."</p> }.into_any()
        } else {
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
                        {page.rows.into_iter().map(|r| view! { <RecipientLine row=r/> }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <nav class="pager" aria-label="Recipient pages">
            {page.prev.map(|h| view! { <a href=h rel="prev">"← Previous"</a> })}
            {page.next.map(|h| view! { <a href=h rel="next">"Next →"</a> })}
        </nav>
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
        <tr data-delivery=row.delivery_id data-state=row.state.clone()>
            <td><a href=format!("/customers/{}", row.customer_id)>{row.name.clone()}</a></td>
            <td>
                <span class=format!("delivery delivery-{}", row.state)>{state_label(&row.state)}</span>
                {row.error.clone().filter(|_| row.state == "failed").map(|e| view! { <div class="small muted reason">{e}</div> })}
            </td>
            <td>{row.tags.join(", ")}</td>
            <td>{match row.assignee.clone() { Some(a) => view! { <span>{a}</span> }.into_any(), None => dash().into_any() }}</td>
            <td>{row.channel.clone()}</td>
            <td>{time(row.sent.clone())}</td>
            <td>{time(row.delivered.clone())}</td>
            <td>{time(row.read.clone())}</td>
            <td>{time(row.replied.clone())}</td>
            <td><a href=format!("/customers/{}/chat", row.customer_id) class="chat-link">"Chat"</a></td>
        </tr>
    }
}

/// A line of the timeline: (css key, label, the value of a point).
type Series = (
    &'static str,
    &'static str,
    fn(&crate::model::results::TimelinePoint) -> i64,
);

/// Cumulative sends, deliveries, reads and replies since sending started, as lines in an SVG
/// image with a title and a text description. Events the channels cannot report are left out.
#[component]
fn Timeline(results: Results) -> impl IntoView {
    let points = results.timeline.clone();
    let (Some(first), Some(last)) = (points.first().cloned(), points.last().cloned()) else {
        return view! { <p class="muted">"Nothing sent yet."</p> }.into_any();
    };
    let (w, h, left, bottom) = (600.0_f64, 200.0_f64, 50.0_f64, 24.0_f64);
    let top = points
        .iter()
        .map(|p| p.sent.max(p.delivered))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let n = points.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + (w - left - 10.0) * (i as f64 / n);
    let y = |v: i64| 8.0 + (h - bottom - 8.0) * (1.0 - v as f64 / top);
    let mut series: Vec<Series> = vec![("sent", "Sent", |p| p.sent)];
    if !results.received_covers.is_empty() {
        series.push(("delivered", "Delivered", |p| p.delivered));
    }
    if !results.read_covers.is_empty() {
        series.push(("read", "Read", |p| p.read));
    }
    series.push(("replied", "Replied", |p| p.replied));
    let desc = format!(
        "From {} to {}: {}.",
        first.label,
        last.label,
        series
            .iter()
            .map(|(_, label, f)| format!("{} {}", number(f(&last)), label.to_lowercase()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let lines = series
        .iter()
        .map(|(key, _, f)| {
            let path = if points.len() == 1 {
                format!(
                    "{:.1},{:.1} {:.1},{:.1}",
                    x(0),
                    y(f(&points[0])),
                    w - 10.0,
                    y(f(&points[0]))
                )
            } else {
                points
                    .iter()
                    .enumerate()
                    .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(f(p))))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            view! { <polyline class=format!("line line-{key}") points=path fill="none"></polyline> }
        })
        .collect_view();
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, (key, label, _))| {
            let lx = left + i as f64 * 110.0;
            view! {
                <g class=format!("legend line-{key}")>
                    <rect x=format!("{lx:.0}") y=h - 14.0 width="12" height="4"></rect>
                    <text x=format!("{:.0}", lx + 16.0) y=h - 8.0>{*label}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="timeline" viewBox=format!("0 0 {w} {}", h + 6.0) width="100%" role="img" aria-labelledby="timeline-title timeline-desc">
            <title id="timeline-title">"Sends, deliveries, reads and replies over time"</title>
            <desc id="timeline-desc">{desc}</desc>
            <line class="axis" x1=left y1=y(0) x2=w - 10.0 y2=y(0)></line>
            <text class="tick" x="0" y=y(top as i64) + 4.0>{number(top as i64)}</text>
            <text class="tick" x="0" y=y(0) + 4.0>"0"</text>
            <text class="tick" x=left y=y(0) + 14.0>{first.label.clone()}</text>
            <text class="tick end" x=w - 10.0 y=y(0) + 14.0 text-anchor="end">{last.label.clone()}</text>
            {lines}
            {legend}
        </svg>
    }
    .into_any()
}
