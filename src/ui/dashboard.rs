//! The managers' dashboard (`/dashboard`): the 50 most recently started broadcasts with their
//! numbers and rates side by side, sortable by any column (links, so it works without
//! JavaScript). Rates a broadcast's channels cannot report say "not measured" and sort last.
//! It follows the broadcasts' events (`GET /live?dashboard=1`): the server renders it again
//! as they change.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::broadcasts::dashboard;
use crate::model::rate_chart::{ChartPoint, Mark, RateChart};
use crate::model::results::{DASHBOARD_SORTS, Dashboard, thousands as number};
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

/// The dashboard's table (what the live stream renders again).
#[component]
pub fn DashboardBody(d: Dashboard) -> impl IntoView {
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
    let charts = d.charts.clone();
    view! {
        {(!charts.is_empty()).then(|| view! {
            <section class="rate-charts" aria-labelledby="rates-head">
                <h2 id="rates-head">"Rates over time"</h2>
                <p class="small muted">"Each point is a broadcast, in the order they started; a square is a follow-up, a diamond an A/B test. Point at one, or move to it with Tab, to see which."</p>
                {charts.into_iter().map(|c| view! { <RateChartView c=c/> }).collect_view()}
            </section>
        })}
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

/// One chart of rates: lines per series, and a link per point that names its broadcast when
/// pointed at or focused.
#[component]
fn RateChartView(c: RateChart) -> impl IntoView {
    let title_id = format!("chart-{}", c.title.to_lowercase().replace(' ', "-"));
    let desc_id = format!("{title_id}-desc");
    view! {
        <figure class="rate-chart" data-chart=c.title.clone()>
            <figcaption id=title_id.clone()>{c.title.clone()}</figcaption>
            <svg viewBox=c.view_box.clone() role="group" aria-labelledby=title_id.clone() aria-describedby=desc_id.clone()>
                <desc id=desc_id.clone()>{c.desc.clone()}</desc>
                <g aria-hidden="true">
                    {c.grid.iter().map(|y| view! {
                        <line class="grid" x1=c.grid_x.0.clone() x2=c.grid_x.1.clone() y1=y.clone() y2=y.clone()></line>
                    }).collect_view()}
                    {c.ticks.iter().map(|t| view! {
                        <text class="tick" x=t.x.clone() y=t.y.clone() text-anchor=if t.end { "end" } else { "start" }>{t.text.clone()}</text>
                    }).collect_view()}
                    {c.legend.iter().map(|(k, label, x)| view! {
                        <g class=format!("legend series-{k}")>
                            <rect x=x.clone() y="6" width="12" height="12"></rect>
                            <text x=format!("{}", x.parse::<f64>().unwrap_or(0.0) + 16.0) y="16">{label.clone()}</text>
                        </g>
                    }).collect_view()}
                    {c.lines.iter().map(|(k, pts)| view! {
                        <polyline class=format!("line series-{k}") points=pts.clone()></polyline>
                    }).collect_view()}
                </g>
                {c.points.into_iter().map(|p| view! { <RatePoint p=p/> }).collect_view()}
            </svg>
        </figure>
    }
}

/// A point: a link to its broadcast, drawn by its mark, with its name shown on hover/focus.
#[component]
fn RatePoint(p: ChartPoint) -> impl IntoView {
    let (x, y) = (
        p.x.parse::<f64>().unwrap_or(0.0),
        p.y.parse::<f64>().unwrap_or(0.0),
    );
    let shape = match p.mark {
        Mark::Plain => view! { <circle cx=p.x.clone() cy=p.y.clone() r="4"></circle> }.into_any(),
        Mark::FollowUp => view! { <rect x=format!("{:.1}", x - 4.0) y=format!("{:.1}", y - 4.0) width="8" height="8"></rect> }.into_any(),
        Mark::AbTest => view! {
            <polygon points=format!("{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}", y - 5.0, x + 5.0, y + 5.0, x - 5.0)></polygon>
        }.into_any(),
    };
    let (aria, title) = (p.label.clone(), p.label.clone());
    view! {
        <a href=format!("/broadcasts/{}", p.id) class=format!("point series-{} mark-{}", p.series, p.mark.css()) aria-label=aria>
            <title>{title}</title>
            {shape}
            <text class="tip" x=p.tip_x y=p.tip_y text-anchor=if p.tip_end { "end" } else { "start" }>{p.label}</text>
        </a>
    }
}
