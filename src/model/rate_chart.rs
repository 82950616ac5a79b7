//! The dashboard's picture: the received, read and reply rate of each recent broadcast, in
//! the order they started, for all channels together and for each kind of channel. Laid out
//! here as numbers and SVG path text (the server draws it; the browser carries no chart code).
//! Follow-ups and A/B tests are marked with their own point shapes; each point links to its
//! broadcast and names it on hover and on focus.

use serde::{Deserialize, Serialize};

use super::results::{Rate, Tick};

/// How a broadcast's points are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mark {
    #[default]
    Plain,
    /// A follow-up of an earlier broadcast (a square).
    FollowUp,
    /// An A/B test (a diamond).
    AbTest,
}

impl Mark {
    pub fn css(self) -> &'static str {
        match self {
            Mark::Plain => "plain",
            Mark::FollowUp => "follow-up",
            Mark::AbTest => "ab-test",
        }
    }

    fn note(self) -> &'static str {
        match self {
            Mark::Plain => "",
            Mark::FollowUp => " (a follow-up)",
            Mark::AbTest => " (an A/B test)",
        }
    }
}

/// One broadcast as the chart reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateSample {
    pub id: i64,
    pub name: String,
    /// When it started, as the viewer reads it.
    pub started: String,
    pub mark: Mark,
    pub received: Rate,
    pub read: Rate,
    pub reply: Rate,
}

/// One point: a broadcast's rate on one series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartPoint {
    pub series: String,
    pub id: i64,
    pub x: String,
    pub y: String,
    /// What it says on hover and focus, and to a screen reader.
    pub label: String,
    pub mark: Mark,
    /// Where its label is drawn (kept inside the picture).
    pub tip_x: String,
    pub tip_y: String,
    pub tip_end: bool,
}

/// One chart of rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateChart {
    /// "All channels", or a channel kind's name.
    pub title: String,
    pub view_box: String,
    /// A sentence for screen readers: the span and the latest rates.
    pub desc: String,
    /// (series key, polyline points)
    pub lines: Vec<(String, String)>,
    pub points: Vec<ChartPoint>,
    /// (series key, label, x) above the plot.
    pub legend: Vec<(String, String, String)>,
    pub ticks: Vec<Tick>,
    /// The y of the 0 %, 50 % and 100 % lines.
    pub grid: Vec<String>,
    /// (left, right) x of the grid lines.
    pub grid_x: (String, String),
}

const SERIES: [(&str, &str); 3] = [
    ("received", "Received"),
    ("read", "Read"),
    ("reply", "Replied"),
];

fn value(s: &RateSample, series: &str) -> Option<f64> {
    let rate = match series {
        "received" => &s.received,
        "read" => &s.read,
        _ => &s.reply,
    };
    match rate {
        Rate::Measured { part, whole, .. } if *whole > 0 => {
            Some(*part as f64 * 100.0 / *whole as f64)
        }
        _ => None,
    }
}

/// The chart of `samples` (oldest first), or `None` when none has a measured rate.
pub fn chart(title: &str, samples: &[RateSample]) -> Option<RateChart> {
    let (w, h) = (640.0_f64, 230.0_f64);
    let (left, right, top, bottom) = (46.0_f64, 12.0_f64, 30.0_f64, 34.0_f64);
    let n = samples.len();
    let x = |i: usize| {
        if n < 2 {
            (left + w - right) / 2.0
        } else {
            left + (w - left - right) * (i as f64 / (n - 1) as f64)
        }
    };
    let y = |p: f64| top + (h - top - bottom) * (1.0 - p / 100.0);
    let shown: Vec<(&str, &str)> = SERIES
        .into_iter()
        .filter(|(k, _)| samples.iter().any(|s| value(s, k).is_some()))
        .collect();
    if shown.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut points = Vec::new();
    for (key, label) in &shown {
        let mut line = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let Some(v) = value(s, key) else { continue };
            let (px, py) = (x(i), y(v));
            line.push(format!("{px:.1},{py:.1}"));
            let end = px > w / 2.0;
            points.push(ChartPoint {
                series: key.to_string(),
                id: s.id,
                x: format!("{px:.1}"),
                y: format!("{py:.1}"),
                label: format!(
                    "{}{}, started {}: {} rate {}",
                    s.name,
                    s.mark.note(),
                    s.started,
                    label.to_lowercase(),
                    rate_text(v)
                ),
                mark: s.mark,
                tip_x: format!("{:.1}", if end { px - 8.0 } else { px + 8.0 }),
                tip_y: format!("{:.1}", (py - 8.0).max(top + 10.0)),
                tip_end: end,
            });
        }
        lines.push((key.to_string(), line.join(" ")));
    }
    let legend = shown
        .iter()
        .enumerate()
        .map(|(i, (k, l))| {
            (
                k.to_string(),
                l.to_string(),
                format!("{:.0}", left + i as f64 * 110.0),
            )
        })
        .collect();
    let tick = |tx: f64, ty: f64, text: String, end: bool| Tick {
        x: format!("{tx:.0}"),
        y: format!("{ty:.0}"),
        text,
        end,
    };
    let mut ticks = vec![
        tick(left - 6.0, y(100.0) + 4.0, "100 %".into(), true),
        tick(left - 6.0, y(50.0) + 4.0, "50 %".into(), true),
        tick(left - 6.0, y(0.0) + 4.0, "0 %".into(), true),
    ];
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        ticks.push(tick(left, h - 8.0, first.started.clone(), false));
        if n > 1 {
            ticks.push(tick(w - right, h - 8.0, last.started.clone(), true));
        }
    }
    Some(RateChart {
        title: title.to_string(),
        view_box: format!("0 0 {w} {h}"),
        desc: describe(title, samples, &shown),
        lines,
        points,
        legend,
        ticks,
        grid: [100.0, 50.0, 0.0]
            .iter()
            .map(|p| format!("{:.1}", y(*p)))
            .collect(),
        grid_x: (format!("{left:.0}"), format!("{:.0}", w - right)),
    })
}

fn rate_text(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0} %")
    } else {
        format!("{v:.1} %")
    }
}

/// "All channels: 12 broadcasts from … to …; the latest, “…”: received 80 %, read 41 %."
fn describe(title: &str, samples: &[RateSample], shown: &[(&str, &str)]) -> String {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return String::new();
    };
    let latest: Vec<String> = shown
        .iter()
        .filter_map(|(k, l)| {
            value(last, k).map(|v| format!("{} {}", l.to_lowercase(), rate_text(v)))
        })
        .collect();
    format!(
        "{title}: {} broadcasts started from {} to {}; the latest, “{}”: {}.",
        samples.len(),
        first.started,
        last.started,
        last.name,
        if latest.is_empty() {
            "no rate measured yet".to_string()
        } else {
            latest.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: i64, read: Option<(i64, i64)>) -> RateSample {
        RateSample {
            id,
            name: format!("B{id}"),
            started: format!("day {id}"),
            mark: if id == 2 { Mark::FollowUp } else { Mark::Plain },
            received: Rate::measured(90, 100),
            read: read.map_or(Rate::NotMeasured, |(p, w)| Rate::measured(p, w)),
            reply: Rate::measured(5, 100),
        }
    }

    #[test]
    fn points_follow_the_rates_and_skip_what_is_not_measured() {
        let c = chart(
            "All channels",
            &[
                sample(1, Some((50, 100))),
                sample(2, None),
                sample(3, Some((100, 100))),
            ],
        )
        .unwrap();
        let read: Vec<&ChartPoint> = c.points.iter().filter(|p| p.series == "read").collect();
        assert_eq!(read.iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 3]);
        // 50 % halfway down the plot, 100 % at its top.
        assert_eq!(read[0].y, format!("{:.1}", 30.0 + 166.0 * 0.5));
        assert_eq!(read[1].y, "30.0");
        assert_eq!(
            c.points.iter().filter(|p| p.series == "received").count(),
            3
        );
        let follow = c.points.iter().find(|p| p.id == 2).unwrap();
        assert_eq!(follow.mark, Mark::FollowUp);
        assert!(
            follow
                .label
                .starts_with("B2 (a follow-up), started day 2: received rate 90 %"),
            "{}",
            follow.label
        );
        assert!(
            c.desc.contains("3 broadcasts started from day 1 to day 3"),
            "{}",
            c.desc
        );
    }

    #[test]
    fn nothing_measured_draws_nothing_and_one_broadcast_sits_in_the_middle() {
        let mut s = sample(1, None);
        s.received = Rate::NotMeasured;
        s.reply = Rate::NotMeasured;
        assert!(chart("SMS", &[s]).is_none());
        let c = chart("SMS", &[sample(1, Some((1, 2)))]).unwrap();
        assert_eq!(c.points[0].x, format!("{:.1}", (46.0 + 628.0) / 2.0));
    }
}
