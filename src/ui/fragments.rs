//! The HTML the server renders for islands to swap or append (the results body, the
//! dashboard's table and charts, a chat line), and the server-rendered pages that embed them. It depends on `model` alone, so the
//! server functions that render fragments (`api`) and the pages (`ui`) both use it without
//! depending on each other.

use leptos::prelude::*;

use crate::model::ab::AbResults;
use crate::model::chat::ChatMessage;
use crate::model::rate_chart::{ChartPoint, Mark, RateChart};
use crate::model::results::{
    Charts, DASHBOARD_SORTS, Dashboard, Rate, Results, thousands as number,
};

fn covers(names: &[String], rate: &Rate) -> String {
    match rate {
        Rate::NotMeasured if names.is_empty() => {
            "None of this broadcast's channels can report this.".into()
        }
        _ => format!("Covers {}.", names.join(", ")),
    }
}

/// The numbers, the funnel, the timeline and the per-channel table, as the server renders
/// them (first in the page, then as fragments the live island swaps in).
#[component]
pub fn ResultsBody(r: Results) -> impl IntoView {
    view! {
        <p class="muted" data-testid="results-status">
            <span class=format!("status status-{}", r.status.css())>{r.status.label()}</span>
            {r.next_wave.clone().map(|w| view! { <span data-testid="next-wave">{format!(" — {w}")}</span> })}
            {r.started.clone().map(|s| format!(" · started {s}"))}
            {r.finished.clone().map(|s| format!(" · finished {s}"))}
            {(r.resent > 0).then(|| view! {
                <span data-testid="resent" title="Their request may have reached the provider (Herald stopped, or the answer was lost), and no report named them within the reconciliation window.">
                    {format!(" · resent when no report came: {}", number(r.resent))}
                </span>
            })}
        </p>
        {(r.unknown > 0).then(|| view! {
            <p class="unknown-note" role="status" data-testid="unknown">
                {format!(
                    "Unknown — may have arrived: {}. Their request went out and the answer was lost, and the channel cannot tell whether it arrived, so Herald does not send them again on its own. See them with the “Unknown” filter below.",
                    number(r.unknown)
                )}
            </p>
        })}
        {(r.expired > 0).then(|| view! {
            <p class="muted" role="status" data-testid="expired">
                {format!("Expired: {}. They were not sent before the broadcast's expiry, and are not failures. See them with the “Expired” filter below.", number(r.expired))}
            </p>
        })}
        {(r.left_out_consent + r.left_out_cap > 0).then(|| view! { <LeftOutList r=r.clone()/> })}
        {r.pause_reason.clone().map(|why| view! {
            <p class="pause-reason" role="status" data-testid="pause-reason">{why}</p>
        })}
        <section class="stats" aria-label="Results">
            {{
                let t = r.totals;
                // While it sends, the rates are of what was sent so far.
                let so_far = if r.status == crate::model::BroadcastStatus::Sending { " So far." } else { "" };
                let card = |key: &'static str, label: &'static str, value: String, note: String| view! {
                    <div class="stat" data-stat=key>
                        <div class="stat-label">{label}</div>
                        <div class="stat-value">{value}</div>
                        <div class="stat-note small muted">{note}</div>
                    </div>
                };
                view! {
                    {card("audience", "Total audience", number(t.audience), format!("{} waiting", number(r.waiting())))}
                    {card("sent", "Successful receivers", number(t.sent), "Accepted by the provider".to_string())}
                    {card("failed", "Failed receivers", number(t.failed), "Refused or undeliverable".to_string())}
                    {card("received", "Received rate", r.received.label(), format!("Of those sent. {}{so_far}", covers(&r.received_covers, &r.received)))}
                    {card("read", "Read rate", r.read.label(), format!("Of those sent. {}{so_far}", covers(&r.read_covers, &r.read)))}
                    {card("reply", "Reply rate", r.reply.label(), format!("Of those sent.{so_far}"))}
                }
            }}
        </section>
        {r.ab.clone().map(|ab| view! { <AbSection ab/> })}
        <h2>"Funnel"</h2>
        <Funnel charts=r.charts.clone()/>
        <h2>"Over time"</h2>
        <Timeline charts=r.charts.clone()/>
        <ByChannel r=r.clone()/>
        {(!r.failure_reasons.is_empty()).then(|| view! {
            <h2>"Why they failed"</h2>
            <table class="failure-reasons" data-testid="failure-reasons">
                <thead>
                    <tr>
                        <th scope="col">"Reason, and what to do"</th>
                        <th scope="col" class="num">"Failed"</th>
                    </tr>
                </thead>
                <tbody>
                    {r.failure_reasons.clone().into_iter().map(|(reason, n)| view! {
                        <tr>
                            <td>{if reason.is_empty() { "No reason given.".to_string() } else { reason }}</td>
                            <td class="num">{number(n)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {(r.more_reasons > 0).then(|| view! {
                <p class="small muted">{format!("And {} other reasons.", number(r.more_reasons))}</p>
            })}
        })}
        {r.held.clone().map(|(n, from)| view! {
            <p class="small muted" data-testid="held-failures">{format!(
                "{} of the failures can be retried from {from}: the provider asked to wait. \"Retry failed\" leaves them until then.",
                number(n)
            )}</p>
        })}
    }
}

/// An A/B test's variants side by side: counts and rates, the winner, and whether the
/// difference by the test's measure is more than chance.
#[component]
fn AbSection(ab: AbResults) -> impl IntoView {
    let split = match ab.test_share {
        Some(p) => format!(
            "{p} % of the audience was split evenly between {} variants; the winner by {} goes to the rest.",
            ab.variants.len(),
            ab.measure.label()
        ),
        None => format!(
            "The audience was split evenly between {} variants; compared by {}.",
            ab.variants.len(),
            ab.measure.label()
        ),
    };
    view! {
        <section class="ab-results" aria-labelledby="ab-title" data-testid="ab-results">
            <h2 id="ab-title">"A/B test"</h2>
            <p class="small muted">{split}</p>
            <table class="ab-variants">
                <thead>
                    <tr>
                        <th scope="col">"Variant"</th>
                        <th scope="col" class="num">"Audience"</th>
                        <th scope="col" class="num">"Successful"</th>
                        <th scope="col" class="num">"Failed"</th>
                        <th scope="col" class="num">"Received rate"</th>
                        <th scope="col" class="num">"Read rate"</th>
                        <th scope="col" class="num">"Reply rate"</th>
                    </tr>
                </thead>
                <tbody>
                    {ab.variants.clone().into_iter().map(|v| view! {
                        <tr data-variant=v.letter().to_string() class=v.winner.then_some("winner")>
                            <th scope="row">
                                {format!("{}{}", v.letter(), if v.winner { " (winner)" } else { "" })}
                                " " <span class="small muted">{v.preview.clone()}</span>
                            </th>
                            <td class="num" data-count="audience">{number(v.counts.audience)}</td>
                            <td class="num" data-count="sent">{number(v.counts.sent)}</td>
                            <td class="num" data-count="failed">{number(v.counts.failed)}</td>
                            <td class="num" data-rate="received">{rate_cell(&v.received)}</td>
                            <td class="num" data-rate="read">{rate_cell(&v.read)}</td>
                            <td class="num" data-rate="reply">{rate_cell(&v.reply)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            {(ab.waiting > 0).then(|| view! {
                <p class="small muted" data-testid="ab-waiting">{format!("{} recipients wait for the winner.", number(ab.waiting))}</p>
            })}
            <p data-testid="ab-verdict">{ab.verdict.clone()}</p>
            {ab.decision.clone().map(|d| view! { <p class="notice" data-testid="ab-decision">{d}</p> })}
        </section>
    }
    .into_any()
}

/// A rate with its counts ("12 % (30 of 250)").
fn rate_cell(r: &Rate) -> String {
    match r {
        Rate::Measured { part, whole, text } => {
            format!("{text} ({} of {})", number(*part), number(*whole))
        }
        Rate::NotMeasured => "not measured".into(),
    }
}

/// Horizontal bars, one per step, as an SVG image with a title and a text description (the
/// geometry comes from the server).
/// Each channel's counters and rates, and its part in a fallback.
#[component]
fn ByChannel(r: Results) -> impl IntoView {
    let fallback = r.fallback_hours.is_some();
    view! {
        <h2>"By channel"</h2>
        {r.fallback_hours.map(|h| view! {
            <p class="small muted" data-testid="fallback-note">{format!("With fallback: a channel that refused a message as undeliverable, or had not delivered it within {h} hours, handed the customer to the next picked channel that reaches them. Each customer is counted once, on the channel of their last try.")}</p>
        })}
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
                    {fallback.then(|| view! {
                        <th scope="col" class="num">"Reached first-hand"</th>
                        <th scope="col" class="num">"Reached by fallback"</th>
                        <th scope="col" class="num">"Handed on"</th>
                    })}
                </tr>
            </thead>
            <tbody>
                {r.channels.clone().into_iter().map(|c| view! {
                    <tr data-channel=c.name.clone()>
                        <th scope="row">{c.name.clone()} " " <span class="small muted">{c.kind.label()}</span></th>
                        <td class="num">{number(c.counts.audience)}</td>
                        <td class="num">{number(c.counts.sent)}</td>
                        <td class="num">{number(c.counts.failed)}</td>
                        <td class="num" data-rate="received">{c.received.label()}</td>
                        <td class="num" data-rate="read">{c.read.label()}</td>
                        <td class="num" data-rate="reply">{c.reply.label()}</td>
                        {c.fallback.map(|f| view! {
                            <td class="num" data-fallback="first-hand">{number(f.first_hand)}</td>
                            <td class="num" data-fallback="by-fallback">{number(f.by_fallback)}</td>
                            <td class="num" data-fallback="handed-on">{number(f.handed_on)}</td>
                        })}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn Funnel(charts: Charts) -> impl IntoView {
    view! {
        <svg class="funnel" viewBox=charts.funnel_view_box width="100%" role="img" aria-labelledby="funnel-title funnel-desc">
            <title id="funnel-title">"Funnel: audience to replies"</title>
            <desc id="funnel-desc">{charts.funnel_desc}</desc>
            {charts.funnel.into_iter().map(|b| view! {
                <g class=if b.measured { "step" } else { "step unmeasured" }>
                    <text x="0" y=b.text_y.clone() class="funnel-label">{b.label}</text>
                    <rect x="100" y=b.bar_y width=b.width height="24" rx="3"></rect>
                    <text x=b.value_x y=b.text_y class="funnel-value">{b.value}</text>
                </g>
            }).collect_view()}
        </svg>
    }
}

/// Cumulative sends, deliveries, reads and replies since sending started, as lines in an SVG
/// image with a title and a text description. Events the channels cannot report are left out.
#[component]
fn Timeline(charts: Charts) -> impl IntoView {
    let Some(t) = charts.timeline else {
        return view! { <p class="muted">"Nothing sent yet."</p> }.into_any();
    };
    let (x1, y1, x2, y2) = t.axis;
    view! {
        <svg class="timeline" viewBox=t.view_box width="100%" role="img" aria-labelledby="timeline-title timeline-desc">
            <title id="timeline-title">"Sends, deliveries, reads and replies over time"</title>
            <desc id="timeline-desc">{t.desc}</desc>
            <line class="axis" x1=x1 y1=y1 x2=x2 y2=y2></line>
            {t.ticks.into_iter().map(|k| view! {
                <text class="tick" x=k.x y=k.y text-anchor=if k.end { "end" } else { "start" }>{k.text}</text>
            }).collect_view()}
            {t.lines.into_iter().map(|(key, pts)| view! {
                <polyline class=format!("line line-{key}") points=pts fill="none"></polyline>
            }).collect_view()}
            {t.legend.into_iter().map(|(key, label, x)| {
                let y = t.legend_y.clone();
                view! {
                    <g class=format!("legend line-{key}")>
                        <rect x=x.clone() y=y.clone() width="12" height="4"></rect>
                        <text x=x y=y dx="16" dy="6">{label}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
    }
    .into_any()
}

/// One message of a conversation, with the "New" marker before it when it is the first
/// unread.
pub fn chat_line(m: ChatMessage, first_unread: bool) -> impl IntoView {
    let who = if m.inbound {
        "Customer".to_string()
    } else if let Some((_, b)) = &m.broadcast {
        format!("Broadcast “{b}”")
    } else {
        m.staff.clone().unwrap_or_else(|| "Staff".into())
    };
    let class = if m.inbound { "msg in" } else { "msg out" };
    view! {
        {first_unread.then(|| view! { <li class="new-marker">"New messages"</li> })}
        <li class=class data-key=m.key.clone() data-unread=m.unread.to_string()>
            <div class="meta small muted">
                <span class="who">{who}</span> " · " {m.channel.clone()} " · " <time>{m.at.clone()}</time>
                {m.status.clone().map(|s| view! { " · " <span class="delivery-status">{s}</span> })}
            </div>
            <div class="text">{m.body.clone()}</div>
        </li>
    }
}

/// One message as HTML, for the live stream and replies (rendered on the server).
#[cfg(feature = "ssr")]
pub fn chat_line_html(m: ChatMessage) -> String {
    use leptos::tachys::view::RenderHtml;
    Owner::new().with(|| chat_line(m, false).to_html())
}

/// Who a broadcast left out when it fired, with why, the first of them by name.
#[component]
fn LeftOutList(r: Results) -> impl IntoView {
    let total = r.left_out_consent + r.left_out_cap;
    let more = total - r.left_out_first.len() as i64;
    view! {
        <details class="left-out" data-testid="left-out">
            <summary>{format!(
                "Left out: {} for want of consent, {} by the frequency cap",
                number(r.left_out_consent),
                number(r.left_out_cap)
            )}</summary>
            <ul>
                {r.left_out_first.into_iter().map(|(id, name, reason)| view! {
                    <li><a href=format!("/customers/{id}")>{name}</a>{format!(" — {reason}")}</li>
                }).collect_view()}
            </ul>
            {(more > 0).then(|| view! { <p class="muted">{format!("and {} more", number(more))}</p> })}
        </details>
    }
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
                {charts.into_iter().map(|c| view! { <RateChartView c=c/> }.into_any()).collect_view()}
            </section>
        }.into_any())}
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
                {view! { <g aria-hidden="true">
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
                </g> }.into_any()}
                {c.points.into_iter().map(|p| view! { <RatePoint p=p/> }.into_any()).collect_view()}
            </svg>
        </figure>
    }
    .into_any()
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
    .into_any()
}
