//! A broadcast's results, as DESIGN.md defines them ("Results, defined"): counts from the
//! maintained counters, and rates that leave out the channels that cannot report an event
//! (shown as "not measured", never as 0 %).

use serde::{Deserialize, Serialize};

use super::BroadcastStatus;
use super::channel::ChannelKind;
use super::delivery::DeliveryState;
pub use super::rates::{Counts, Rate};

/// One channel's part of a broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelResult {
    pub channel_id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub counts: Counts,
    pub received: Rate,
    pub read: Rate,
    pub reply: Rate,
    /// With a fallback: who this channel reached first-hand and by fallback, and how many it
    /// handed on to a later channel.
    #[serde(default)]
    pub fallback: Option<ChannelFallback>,
}

/// A channel's part in a broadcast's fallback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelFallback {
    /// Reached (delivered, or accepted where the channel reports no delivery) as the first
    /// channel tried.
    pub first_hand: i64,
    /// Reached after an earlier channel failed or ran out of time.
    pub by_fallback: i64,
    /// Deliveries that left this channel for a later one.
    pub handed_on: i64,
}

impl ChannelFallback {
    /// From a channel's counters and the fallback's figures for it: (handed on, came by
    /// fallback, of those reached).
    pub fn of(
        kind: ChannelKind,
        counts: &Counts,
        handed_on: i64,
        reached_by_fallback: i64,
    ) -> Self {
        let reached = if kind.reports_delivery() {
            counts.delivered
        } else {
            counts.sent
        };
        ChannelFallback {
            first_hand: (reached - reached_by_fallback).max(0),
            by_fallback: reached_by_fallback,
            handed_on,
        }
    }
}

/// One of a broadcast's channels with its counters, as stored.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct ChannelRow {
    pub channel_id: i64,
    pub name: String,
    pub kind: ChannelKind,
    #[cfg_attr(feature = "ssr", sqlx(flatten))]
    pub counts: Counts,
}

/// What the results page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub id: i64,
    pub name: String,
    pub status: BroadcastStatus,
    /// When sending started and finished, in the viewer's words ("12 Mar 2026, 09:00").
    pub started: Option<String>,
    pub finished: Option<String>,
    pub totals: Counts,
    pub received: Rate,
    pub read: Rate,
    pub reply: Rate,
    /// The channels each rate covers (by name); the others cannot report that event.
    pub received_covers: Vec<String>,
    pub read_covers: Vec<String>,
    pub channels: Vec<ChannelResult>,
    /// Cumulative sends, deliveries, reads and replies over time since sending started.
    pub timeline: Vec<TimelinePoint>,
    /// The charts' geometry, worked out on the server (the browser only draws it).
    pub charts: Charts,
    /// Why Herald paused it by itself, while it stays paused.
    pub pause_reason: Option<String>,
    /// Its failures grouped by reason, most first: (reason, failures).
    pub failure_reasons: Vec<(String, i64)>,
    /// How many more reasons there are than `failure_reasons` shows.
    pub more_reasons: i64,
    /// Failures "Retry failed" leaves for later because the provider asked to wait: how
    /// many, and from when (in the viewer's words) the first may go again.
    pub held: Option<(i64, String)>,
    /// Deliveries sent again after a crash: their request may have reached the provider, and
    /// no report named them within the reconciliation window.
    pub resent: i64,
    /// Deliveries whose request may have reached a provider that cannot tell (Telegram, plain
    /// SMTP): unknown — may have arrived; never sent again on their own.
    pub unknown: i64,
    /// Not sent before the broadcast's expiry (not failures).
    #[serde(default)]
    pub expired: i64,
    /// While it waits for a later wave: `next wave 10:00 Europe/Berlin (12,400 waiting)`.
    #[serde(default)]
    pub next_wave: Option<String>,
    /// Who it left out when it fired: for want of consent, and over the frequency cap.
    #[serde(default)]
    pub left_out_consent: i64,
    #[serde(default)]
    pub left_out_cap: i64,
    /// The first of them: (customer id, name, reason).
    #[serde(default)]
    pub left_out_first: Vec<(i64, String, String)>,
    /// Its follow-ups (id, name), and the broadcast it follows up.
    #[serde(default)]
    pub follow_ups: Vec<(i64, String)>,
    #[serde(default)]
    pub follow_up_of: Option<(i64, String)>,
    /// The viewer may make a follow-up (staff and admins, once it has started).
    #[serde(default)]
    pub can_follow_up: bool,
    /// The hours each channel had to deliver before the next was tried, with a fallback.
    #[serde(default)]
    pub fallback_hours: Option<i64>,
    /// Its A/B test's variants side by side, with the verdict and the winner.
    #[serde(default)]
    pub ab: Option<super::ab::AbResults>,
}

impl Results {
    /// Neither sent, failed, unknown nor expired yet.
    pub fn waiting(&self) -> i64 {
        (self.totals.waiting() - self.unknown - self.expired).max(0)
    }
}

/// `1234567` as "1,234,567".
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// One bar of the funnel, every number already text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelBar {
    pub label: String,
    pub value: String,
    pub width: String,
    pub value_x: String,
    pub text_y: String,
    pub bar_y: String,
    pub measured: bool,
}

/// A text on the timeline: position, text, anchored at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    pub x: String,
    pub y: String,
    pub text: String,
    pub end: bool,
}

/// The timeline's lines (css key, SVG points), legend entries (css key, label, x) and texts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineChart {
    pub view_box: String,
    pub desc: String,
    pub axis: (String, String, String, String),
    pub lines: Vec<(String, String)>,
    pub legend: Vec<(String, String, String)>,
    pub legend_y: String,
    pub ticks: Vec<Tick>,
}

/// Both charts of the results page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charts {
    pub funnel_view_box: String,
    pub funnel_desc: String,
    pub funnel: Vec<FunnelBar>,
    pub timeline: Option<TimelineChart>,
}

#[cfg(feature = "ssr")]
impl Charts {
    /// The geometry of the funnel (horizontal bars) and the timeline (cumulative lines).
    pub fn of(r: &Results) -> Charts {
        let steps = r.funnel();
        let top = steps.first().map(|s| s.1).unwrap_or(0).max(1) as f64;
        let row_h = 34;
        let funnel = steps
            .iter()
            .enumerate()
            .map(|(i, (label, n, measured))| {
                let y = i as i32 * row_h + 2;
                let w = if *measured {
                    (*n as f64 / top * 420.0).max(1.0)
                } else {
                    0.0
                };
                FunnelBar {
                    label: label.to_string(),
                    value: if *measured {
                        thousands(*n)
                    } else {
                        "not measured".into()
                    },
                    width: format!("{w:.1}"),
                    value_x: format!("{:.1}", 108.0 + w),
                    text_y: (y + 21).to_string(),
                    bar_y: (y + 4).to_string(),
                    measured: *measured,
                }
            })
            .collect();
        let funnel_desc = steps
            .iter()
            .map(|(label, n, measured)| {
                if *measured {
                    format!("{label}: {}", thousands(*n))
                } else {
                    format!("{label}: not measured")
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        Charts {
            funnel_view_box: format!("0 0 600 {}", steps.len() as i32 * row_h + 4),
            funnel_desc,
            funnel,
            timeline: Self::timeline(r),
        }
    }

    /// The timeline's lines: sent and replied always, delivered and read where a channel can
    /// report them.
    fn timeline_series(r: &Results) -> Vec<(&'static str, &'static str, SeriesValue)> {
        let mut series: Vec<(&str, &str, SeriesValue)> = vec![("sent", "Sent", |p| p.sent)];
        if !r.received_covers.is_empty() {
            series.push(("delivered", "Delivered", |p| p.delivered));
        }
        if !r.read_covers.is_empty() {
            series.push(("read", "Read", |p| p.read));
        }
        series.push(("replied", "Replied", |p| p.replied));
        series
    }

    /// The legend's entries: (key, label, x).
    fn legend(
        series: &[(&'static str, &'static str, SeriesValue)],
        left: f64,
    ) -> Vec<(String, String, String)> {
        series
            .iter()
            .enumerate()
            .map(|(i, (key, label, _))| {
                (
                    key.to_string(),
                    label.to_string(),
                    format!("{:.0}", left + i as f64 * 110.0),
                )
            })
            .collect()
    }

    fn timeline(r: &Results) -> Option<TimelineChart> {
        let points = &r.timeline;
        let (first, last) = (points.first()?, points.last()?);
        let (w, h, left, bottom) = (600.0_f64, 200.0_f64, 50.0_f64, 24.0_f64);
        let top = points
            .iter()
            .map(|p| p.sent.max(p.delivered))
            .max()
            .unwrap_or(1)
            .max(1);
        let n = points.len().max(2) as f64 - 1.0;
        let x = |i: usize| left + (w - left - 10.0) * (i as f64 / n);
        // The legend sits above the plot, clear of the time labels below it.
        let plot_top = 28.0;
        let y = |v: i64| plot_top + (h - bottom - plot_top) * (1.0 - v as f64 / top as f64);
        let series = Self::timeline_series(r);
        let desc = format!(
            "From {} to {}: {}.",
            first.label,
            last.label,
            series
                .iter()
                .map(|(_, label, f)| format!("{} {}", thousands(f(last)), label.to_lowercase()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let lines = series
            .iter()
            .map(|(key, _, f)| {
                let pts = if points.len() == 1 {
                    // Everything within a minute: from nothing at its start to the totals.
                    let v = y(f(&points[0]));
                    format!("{:.1},{:.1} {:.1},{v:.1}", x(0), y(0), w - 10.0)
                } else {
                    points
                        .iter()
                        .enumerate()
                        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(f(p))))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                (key.to_string(), pts)
            })
            .collect();
        let legend = Self::legend(&series, left);
        let base = y(0);
        let tick = |x: f64, y: f64, text: String, end: bool| Tick {
            x: format!("{x:.0}"),
            y: format!("{y:.0}"),
            text,
            end,
        };
        Some(TimelineChart {
            view_box: format!("0 0 {w} {}", h + 6.0),
            desc,
            axis: (
                format!("{left:.0}"),
                format!("{base:.1}"),
                format!("{:.0}", w - 10.0),
                format!("{base:.1}"),
            ),
            lines,
            legend,
            legend_y: "14".into(),
            ticks: vec![
                tick(0.0, y(top) + 4.0, thousands(top), false),
                tick(0.0, base + 4.0, "0".into(), false),
                tick(left, base + 16.0, first.label.clone(), false),
                tick(
                    w - 10.0,
                    base + 16.0,
                    if points.len() == 1 {
                        "within a minute".into()
                    } else {
                        last.label.clone()
                    },
                    true,
                ),
            ],
        })
    }
}

/// One of the timeline's series: its value at a point.
#[cfg(feature = "ssr")]
type SeriesValue = fn(&TimelinePoint) -> i64;

/// One point of the timeline: the totals reached by the end of a time step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// The step's start, in the viewer's time zone.
    pub label: String,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub replied: i64,
}

/// Steps the timeline may use, in minutes.
const STEPS: [i64; 8] = [1, 5, 15, 60, 180, 360, 1440, 10080];

/// Per-minute counts (minute, [sent, delivered, read, replied]) as at most `points`
/// cumulative steps from the first minute to `until`: (step start minute, totals).
pub fn cumulative_steps(
    minutes: &[(i64, [i64; 4])],
    until: i64,
    points: usize,
) -> Vec<(i64, [i64; 4])> {
    let Some(first) = minutes.first().map(|m| m.0) else {
        return Vec::new();
    };
    let span = (until.max(first) - first + 1).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| ((span + s - 1) / s) as usize <= points)
        .unwrap_or(*STEPS.last().unwrap_or(&1440));
    let start = first - first.rem_euclid(step);
    let count = ((until.max(first) - start) / step + 1) as usize;
    let mut out: Vec<(i64, [i64; 4])> = (0..count)
        .map(|i| (start + i as i64 * step, [0; 4]))
        .collect();
    for (m, v) in minutes {
        let i = (((m - start) / step).max(0) as usize).min(count - 1);
        for (t, a) in out[i].1.iter_mut().zip(v) {
            *t += a;
        }
    }
    let mut run = [0i64; 4];
    for (_, v) in out.iter_mut() {
        for (r, a) in run.iter_mut().zip(v.iter()) {
            *r += a;
        }
        *v = run;
    }
    out
}

impl Results {
    /// Rates and coverage from the totals and the per-channel counters.
    pub fn compute(
        id: i64,
        name: String,
        status: BroadcastStatus,
        totals: Counts,
        channels: Vec<ChannelRow>,
    ) -> Results {
        let sum = |f: &dyn Fn(&ChannelRow) -> Option<(i64, i64)>| {
            channels
                .iter()
                .filter_map(f)
                .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
        };
        // Rates are over what the provider accepted (DESIGN.md "Results, defined"): while a
        // broadcast sends, its unsent part does not pull them down.
        let (delivered, delivery_whole) = sum(&|c| {
            c.kind
                .reports_delivery()
                .then_some((c.counts.delivered, c.counts.sent))
        });
        let (read, read_whole) = sum(&|c| {
            c.kind
                .reports_reads()
                .then_some((c.counts.read, c.counts.sent))
        });
        let covers = |f: fn(ChannelKind) -> bool| {
            channels
                .iter()
                .filter(|c| f(c.kind) && c.counts.audience > 0)
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        Results {
            id,
            name,
            status,
            started: None,
            finished: None,
            timeline: Vec::new(),
            charts: Charts::default(),
            pause_reason: None,
            failure_reasons: Vec::new(),
            more_reasons: 0,
            held: None,
            resent: 0,
            unknown: 0,
            expired: 0,
            next_wave: None,
            left_out_consent: 0,
            left_out_cap: 0,
            left_out_first: Vec::new(),
            follow_ups: Vec::new(),
            follow_up_of: None,
            can_follow_up: false,
            fallback_hours: None,
            ab: None,
            totals,
            received: Rate::of(delivered, delivery_whole, true),
            read: Rate::of(read, read_whole, true),
            reply: Rate::of(totals.replied, totals.sent, true),
            received_covers: covers(ChannelKind::reports_delivery),
            read_covers: covers(ChannelKind::reports_reads),
            channels: channels
                .into_iter()
                .map(
                    |ChannelRow {
                         channel_id,
                         name,
                         kind,
                         counts,
                     }| ChannelResult {
                        channel_id,
                        name,
                        kind,
                        received: Rate::of(counts.delivered, counts.sent, kind.reports_delivery()),
                        read: Rate::of(counts.read, counts.sent, kind.reports_reads()),
                        reply: Rate::of(counts.replied, counts.sent, true),
                        counts,
                        fallback: None,
                    },
                )
                .collect(),
        }
    }

    /// Whether the numbers may still change by themselves (sending, or reports still coming).
    pub fn moving(&self) -> bool {
        matches!(
            self.status,
            BroadcastStatus::Sending | BroadcastStatus::Scheduled | BroadcastStatus::Paused
        ) || self.totals.sent > 0
    }

    /// The funnel's steps: (label, count, measured). Delivered and read are left out of the
    /// funnel when no channel of the broadcast can report them.
    pub fn funnel(&self) -> Vec<(&'static str, i64, bool)> {
        vec![
            ("Audience", self.totals.audience, true),
            ("Sent", self.totals.sent, true),
            (
                "Delivered",
                self.totals.delivered,
                !self.received_covers.is_empty(),
            ),
            ("Read", self.totals.read, !self.read_covers.is_empty()),
            ("Replied", self.totals.replied, true),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(channel_id: i64, name: &str, kind: ChannelKind, counts: Counts) -> ChannelRow {
        ChannelRow {
            channel_id,
            name: name.into(),
            kind,
            counts,
        }
    }

    fn counts(a: [i64; 6]) -> Counts {
        Counts::from_array(a)
    }

    #[test]
    fn rates_leave_out_channels_that_cannot_report() {
        let wa = counts([100, 95, 90, 40, 10, 5]);
        let tg = counts([50, 50, 0, 0, 5, 0]);
        let sms = counts([50, 48, 45, 0, 0, 2]);
        let total = counts([200, 193, 135, 40, 15, 7]);
        let r = Results::compute(
            1,
            "B".into(),
            BroadcastStatus::Sent,
            total,
            vec![
                row(1, "WhatsApp", ChannelKind::Whatsapp, wa),
                row(2, "Bot", ChannelKind::Telegram, tg),
                row(3, "Texts", ChannelKind::Sms, sms),
            ],
        );
        // Received: (90 + 45) ÷ (95 + 48) accepted, Telegram left out.
        assert_eq!(r.received, Rate::measured(135, 143));
        assert_eq!(r.received_covers, vec!["WhatsApp", "Texts"]);
        // Read: WhatsApp only, over what it accepted.
        assert_eq!(r.read, Rate::measured(40, 95));
        assert_eq!(r.read_covers, vec!["WhatsApp"]);
        // Reply: over every successful receiver.
        assert_eq!(r.reply, Rate::measured(15, 193));
        assert_eq!(r.channels[1].received, Rate::NotMeasured);
        assert_eq!(r.channels[1].received.label(), "not measured");
        assert_eq!(r.channels[2].read, Rate::NotMeasured);
        assert_eq!(r.channels[2].received, Rate::measured(45, 48));
        assert_eq!(r.funnel()[2], ("Delivered", 135, true));
    }

    /// A broadcast a third of the way through: 672 of 1,948 sent, 641 of them delivered. The
    /// rate is what arrived of what was sent (95 %), not of the whole audience (33 %).
    #[test]
    fn while_sending_rates_are_over_what_was_sent() {
        let wa = counts([1948, 672, 641, 300, 20, 3]);
        let r = Results::compute(
            1,
            "B".into(),
            BroadcastStatus::Sending,
            wa,
            vec![row(1, "WhatsApp", ChannelKind::Whatsapp, wa)],
        );
        assert_eq!(r.received, Rate::measured(641, 672));
        assert_eq!(r.received.label(), "95.4 %");
        assert_eq!(r.read, Rate::measured(300, 672));
        let none_sent = Results::compute(
            1,
            "B".into(),
            BroadcastStatus::Sending,
            counts([10, 0, 0, 0, 0, 0]),
            vec![row(
                1,
                "WhatsApp",
                ChannelKind::Whatsapp,
                counts([10, 0, 0, 0, 0, 0]),
            )],
        );
        assert_eq!(
            none_sent.received,
            Rate::NotMeasured,
            "nothing sent yet: no rate, not 0 %"
        );
    }

    #[test]
    fn timelines_add_up_in_at_most_the_asked_steps() {
        let minutes = vec![
            (100, [10, 0, 0, 0]),
            (101, [5, 8, 0, 0]),
            (170, [0, 4, 6, 1]),
        ];
        let steps = cumulative_steps(&minutes, 175, 48);
        assert!(steps.len() <= 48);
        assert_eq!(steps[0].0 % 5, 0, "steps start on a step boundary");
        assert_eq!(steps.last().unwrap().1, [15, 12, 6, 1]);
        assert_eq!(steps[0].1, [15, 8, 0, 0]);
        // Cumulative: never falls.
        for w in steps.windows(2) {
            assert!(w[0].1.iter().zip(w[1].1.iter()).all(|(a, b)| a <= b));
        }
        let one = cumulative_steps(&[(50, [1, 0, 0, 0])], 50, 48);
        assert_eq!(one, vec![(50, [1, 0, 0, 0])]);
        assert!(cumulative_steps(&[], 10, 48).is_empty());
        // A week of trickling reports still fits.
        assert!(
            cumulative_steps(&[(0, [1, 0, 0, 0]), (10_080, [0, 0, 1, 0])], 10_080, 48).len() <= 48
        );
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn the_timeline_keeps_its_legend_clear_and_rises_within_a_minute() {
        let c = counts([10, 8, 6, 3, 2, 0]);
        let mut r = Results::compute(
            1,
            "B".into(),
            BroadcastStatus::Sent,
            c,
            vec![row(2, "Sandbox", ChannelKind::Sandbox, c)],
        );
        r.timeline = vec![TimelinePoint {
            label: "10:00".into(),
            sent: 8,
            delivered: 6,
            read: 3,
            replied: 2,
        }];
        let t = Charts::of(&r).timeline.unwrap();
        let legend_y: f64 = t.legend_y.parse().unwrap();
        let below = |k: &Tick| k.y.parse::<f64>().unwrap();
        // The legend is above every tick (they sit on and under the axis).
        assert!(t.ticks.iter().all(|k| below(k) > legend_y + 8.0), "{t:?}");
        // Everything in one minute: each line rises from nothing to its total, not flat.
        for (key, pts) in &t.lines {
            let ys: Vec<f64> = pts
                .split(' ')
                .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
                .collect();
            assert_eq!(ys.len(), 2, "{key}");
            assert!(ys[0] > ys[1], "{key} rises: {pts}");
        }
        assert_eq!(t.ticks.last().unwrap().text, "within a minute");
    }

    #[test]
    fn a_telegram_only_broadcast_measures_no_delivery_or_read() {
        let c = counts([10, 10, 0, 0, 3, 0]);
        let r = Results::compute(
            1,
            "B".into(),
            BroadcastStatus::Sent,
            c,
            vec![row(2, "Bot", ChannelKind::Telegram, c)],
        );
        assert_eq!(r.received, Rate::NotMeasured);
        assert_eq!(r.read, Rate::NotMeasured);
        assert!(r.received_covers.is_empty());
        assert_eq!(r.reply.label(), "30 %");
        assert!(!r.funnel()[2].2 && !r.funnel()[3].2);
        let empty = Results::compute(
            1,
            "B".into(),
            BroadcastStatus::Draft,
            Counts::default(),
            vec![],
        );
        assert_eq!(empty.reply, Rate::NotMeasured);
        assert!(!empty.moving());
    }
}

/// Which recipients the table shows (from the page's query string; unknown values are
/// ignored rather than refused, so an old link still opens).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientFilter {
    /// `waiting`, `sent`, `delivered`, `read`, `failed` or `replied`.
    pub status: Option<String>,
    pub tag: Option<i64>,
    /// A staff user's id, or 0 for "nobody".
    pub assignee: Option<i64>,
    pub channel: Option<i64>,
}

/// The status filter's choices: (value, label).
pub const STATUS_CHOICES: [(&str, &str); 8] = [
    ("waiting", "Waiting"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("failed", "Failed"),
    ("unknown", "Unknown — may have arrived"),
    ("expired", "Expired"),
    ("replied", "Replied"),
];

impl RecipientFilter {
    pub fn parse(
        status: Option<&str>,
        tag: Option<&str>,
        assignee: Option<&str>,
        channel: Option<&str>,
    ) -> Self {
        let id = |v: Option<&str>| {
            v.and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0)
        };
        RecipientFilter {
            status: status
                .map(str::trim)
                .filter(|s| STATUS_CHOICES.iter().any(|(v, _)| v == s))
                .map(str::to_string),
            tag: id(tag).filter(|v| *v > 0),
            assignee: id(assignee),
            channel: id(channel).filter(|v| *v > 0),
        }
    }

    /// `status=…&tag=…` for links (empty when nothing is filtered).
    pub fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.status {
            parts.push(format!("status={s}"));
        }
        if let Some(t) = self.tag {
            parts.push(format!("tag={t}"));
        }
        if let Some(a) = self.assignee {
            parts.push(format!("assignee={a}"));
        }
        if let Some(c) = self.channel {
            parts.push(format!("channel={c}"));
        }
        parts.join("&")
    }
}

/// A delivery's state as the table names it.
pub fn state_label(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending | DeliveryState::Sending => "Waiting",
        DeliveryState::Sent => "Sent",
        DeliveryState::Delivered => "Delivered",
        DeliveryState::Read => "Read",
        DeliveryState::Failed => "Failed",
        DeliveryState::Expired => "Expired",
        DeliveryState::Unknown => "Unknown — may have arrived",
    }
}

/// One row of the per-recipient table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRow {
    pub delivery_id: i64,
    pub customer_id: i64,
    pub name: String,
    pub state: DeliveryState,
    /// Why it failed, or the last error of a retried one.
    pub error: Option<String>,
    pub tags: Vec<String>,
    pub assignee: Option<String>,
    pub channel: String,
    pub sent: Option<String>,
    pub delivered: Option<String>,
    pub read: Option<String>,
    pub replied: Option<String>,
    /// The channels it fell back from, first first ("WhatsApp: failed — …").
    #[serde(default)]
    pub chain: Vec<String>,
    /// In an A/B test: the variant it sends ("Variant B"), or that it waits for the winner.
    #[serde(default)]
    pub variant: Option<String>,
}

/// One page of the per-recipient table with what its filters offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientPage {
    pub broadcast_id: i64,
    pub rows: Vec<RecipientRow>,
    pub filter: RecipientFilter,
    /// Links to the neighbouring pages, filters kept.
    pub next: Option<String>,
    pub prev: Option<String>,
    pub tags: Vec<(i64, String)>,
    pub assignees: Vec<(i64, String)>,
    pub channels: Vec<(i64, String)>,
    /// Failed deliveries a "Retry failed" would send again, and whether this user may and the
    /// broadcast is finished.
    pub failed: i64,
    pub can_retry: bool,
    /// Unknown deliveries ("may have arrived") that "Resend the unknown" would send again, and
    /// whether this user may and the broadcast is sending or finished.
    pub unknown: i64,
    pub can_resend_unknown: bool,
}

/// One broadcast on the managers' dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardRow {
    pub id: i64,
    pub name: String,
    pub status: BroadcastStatus,
    pub started: Option<String>,
    /// For sorting by start (RFC 3339, UTC).
    pub started_key: String,
    pub totals: Counts,
    pub received: Rate,
    pub read: Rate,
    pub reply: Rate,
    /// Its channels' own rates: (kind, received, read, reply).
    #[serde(default)]
    pub channels: Vec<(ChannelKind, Rate, Rate, Rate)>,
    /// A follow-up or an A/B test.
    #[serde(default)]
    pub mark: super::rate_chart::Mark,
}

/// The columns the dashboard sorts by.
pub const DASHBOARD_SORTS: [(&str, &str); 8] = [
    ("name", "Broadcast"),
    ("started", "Started"),
    ("audience", "Audience"),
    ("sent", "Successful"),
    ("failed", "Failed"),
    ("received", "Received rate"),
    ("read", "Read rate"),
    ("reply", "Reply rate"),
];

/// The dashboard: recent broadcasts with their rates side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub rows: Vec<DashboardRow>,
    pub sort: String,
    pub desc: bool,
    /// The rates as pictures: all channels, then each kind of channel.
    #[serde(default)]
    pub charts: Vec<super::rate_chart::RateChart>,
}

impl Dashboard {
    /// Sorts by `sort` (one of [`DASHBOARD_SORTS`], else by start), "not measured" last in
    /// either direction.
    pub fn sorted(mut rows: Vec<DashboardRow>, sort: Option<&str>, dir: Option<&str>) -> Self {
        let sort = sort
            .filter(|s| DASHBOARD_SORTS.iter().any(|(k, _)| k == s))
            .unwrap_or("started")
            .to_string();
        let desc = dir != Some("asc");
        let rate = |r: &Rate| match r {
            Rate::Measured { .. } => Some(r.percent()),
            Rate::NotMeasured => None,
        };
        rows.sort_by(|a, b| {
            use std::cmp::Ordering;
            let by_number = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if desc { o.reverse() } else { o }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            let o = match sort.as_str() {
                "name" => {
                    let o = a.name.to_lowercase().cmp(&b.name.to_lowercase());
                    if desc { o.reverse() } else { o }
                }
                "audience" => by_number(
                    Some(a.totals.audience as f64),
                    Some(b.totals.audience as f64),
                ),
                "sent" => by_number(Some(a.totals.sent as f64), Some(b.totals.sent as f64)),
                "failed" => by_number(Some(a.totals.failed as f64), Some(b.totals.failed as f64)),
                "received" => by_number(rate(&a.received), rate(&b.received)),
                "read" => by_number(rate(&a.read), rate(&b.read)),
                "reply" => by_number(rate(&a.reply), rate(&b.reply)),
                _ => {
                    let o = a.started_key.cmp(&b.started_key);
                    if desc { o.reverse() } else { o }
                }
            };
            o.then(b.id.cmp(&a.id))
        });
        Dashboard {
            rows,
            sort,
            desc,
            charts: Vec::new(),
        }
    }
}

#[cfg(test)]
mod dashboard_tests {
    use super::*;

    fn row(id: i64, name: &str, read: Rate) -> DashboardRow {
        DashboardRow {
            id,
            name: name.into(),
            status: BroadcastStatus::Sent,
            started: None,
            started_key: format!("2026-01-0{id}"),
            totals: Counts::default(),
            received: Rate::NotMeasured,
            read,
            reply: Rate::NotMeasured,
            channels: Vec::new(),
            mark: Default::default(),
        }
    }

    #[test]
    fn sorts_by_rate_with_unmeasured_last_either_way() {
        let rows = vec![
            row(1, "b", Rate::measured(1, 4)),
            row(2, "a", Rate::NotMeasured),
            row(3, "c", Rate::measured(3, 4)),
        ];
        let ids = |d: Dashboard| d.rows.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(Dashboard::sorted(rows.clone(), Some("read"), None)),
            vec![3, 1, 2]
        );
        assert_eq!(
            ids(Dashboard::sorted(rows.clone(), Some("read"), Some("asc"))),
            vec![1, 3, 2]
        );
        assert_eq!(
            ids(Dashboard::sorted(rows.clone(), Some("name"), Some("asc"))),
            vec![2, 1, 3]
        );
        let d = Dashboard::sorted(rows, Some("nonsense"), None);
        assert_eq!(d.sort, "started");
        assert_eq!(ids(d), vec![3, 2, 1]);
    }
}
