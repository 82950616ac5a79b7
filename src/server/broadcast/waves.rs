//! When each recipient of a broadcast may first get it: at one moment, or at a wall-clock
//! time in each customer's own zone, then moved out of the workspace's quiet hours in their
//! local time. Computed once per (zone, phone prefix) in Rust with the time zone database, and
//! handed to storage as a [`WavePlan`], which it turns into one `CASE` in the single
//! `INSERT … SELECT` that materialises the audience.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::model::workspace::{Rules, Window};
use crate::server::db::{PrefixWaves, WavePlan};

/// The UTC instant of wall-clock `naive` in `zone`: a time the clocks skip that day moves to
/// the next minute that exists; one that happens twice is the first.
pub fn resolve(zone: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    let mut n = naive;
    for _ in 0..=24 * 60 {
        match zone.from_local_datetime(&n) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => n += chrono::Duration::minutes(1),
        }
    }
    // No zone skips a whole day of minutes; read it as UTC rather than loop on.
    Utc.from_utc_datetime(&naive)
}

/// `t`, or the end of the quiet window `w` it falls in, in `zone`'s local time.
pub fn after_quiet(zone: Tz, t: DateTime<Utc>, w: Window) -> DateTime<Utc> {
    let local = t.with_timezone(&zone);
    let minute = (local.hour() * 60 + local.minute()) as u16;
    if !w.contains(minute) {
        return t;
    }
    let mut day = local.date_naive();
    // In a window that wraps midnight, a time before midnight ends tomorrow.
    if w.start > w.end && minute >= w.start {
        day = day.succ_opt().unwrap_or(day);
    }
    let end = day.and_hms_opt((w.end / 60) as u32, (w.end % 60) as u32, 0);
    end.map(|e| resolve(zone, e)).unwrap_or(t).max(t)
}

/// The zone a customer's stored zone name stands for: its own, or the workspace's.
fn zone_of(name: &str, fallback: Tz) -> Tz {
    name.parse().unwrap_or(fallback)
}

/// When a customer in `zone` whose phone has quiet hours `quiet` may first get it.
fn first_time(
    zone: Tz,
    now: DateTime<Utc>,
    local_at: Option<NaiveDateTime>,
    quiet: Option<Window>,
) -> DateTime<Utc> {
    let t = local_at.map(|n| resolve(zone, n).max(now)).unwrap_or(now);
    quiet.map(|w| after_quiet(zone, t, w)).unwrap_or(t)
}

/// The plan for a broadcast firing at `now` to customers in `zones` (their stored zone
/// names, as many distinct ones as the workspace has): `local_at` for a local-time broadcast;
/// `exempt` when an admin let it through quiet hours.
pub fn plan(
    now: DateTime<Utc>,
    local_at: Option<NaiveDateTime>,
    rules: &Rules,
    exempt: bool,
    zones: &[String],
) -> WavePlan {
    let fallback: Tz = rules.time_zone.parse().unwrap_or(Tz::UTC);
    let mut prefixes: Vec<(Option<String>, Option<Window>)> = rules
        .quiet_by_prefix
        .iter()
        .map(|p| (Some(p.prefix.clone()), p.window))
        .collect();
    // The longest prefix first, so +1268 wins over +1.
    prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_ref().map_or(0, String::len)));
    prefixes.push((None, rules.quiet));
    let groups = prefixes
        .into_iter()
        .map(|(prefix, quiet)| {
            let quiet = quiet.filter(|_| !exempt);
            let default_at = first_time(fallback, now, local_at, quiet);
            let mut by_time: std::collections::BTreeMap<DateTime<Utc>, Vec<String>> =
                Default::default();
            for name in zones {
                let at = first_time(zone_of(name, fallback), now, local_at, quiet);
                if at != default_at {
                    by_time.entry(at).or_default().push(name.clone());
                }
            }
            PrefixWaves {
                prefix,
                default_at,
                by_time: by_time.into_iter().collect(),
            }
        })
        .collect();
    WavePlan {
        groups,
        default_zone: fallback.name().to_string(),
    }
}

/// What quiet hours do to a broadcast starting at `start`: how many recipients they hold
/// past their time, and how many of those would still wait when it expires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub moved: i64,
    pub expiring: i64,
}

/// [`Held`] for the audience's `groups` ((stored zone, index into `prefixes` or -1, count),
/// as [`crate::server::db::Db::zone_prefix_counts`] gives them); `prefixes` are the
/// workspace's overrides, longest first.
pub fn held(
    rules: &Rules,
    prefixes: &[crate::model::workspace::PrefixQuiet],
    start: DateTime<Utc>,
    timing: &crate::model::compose::Timing,
    groups: &[(String, i64, i64)],
) -> Held {
    let fallback: Tz = rules.time_zone.parse().unwrap_or(Tz::UTC);
    let expiry = timing
        .expire_hours
        .map(|h| start + chrono::Duration::hours(i64::from(h)));
    let mut out = Held::default();
    for (zone, prefix, n) in groups {
        let quiet = match usize::try_from(*prefix) {
            Ok(i) => prefixes.get(i).and_then(|p| p.window),
            Err(_) => rules.quiet,
        };
        let zone = zone_of(zone, fallback);
        let free = first_time(zone, start, timing.local_at, None);
        let kept = first_time(zone, start, timing.local_at, quiet);
        if kept > free {
            out.moved += n;
            if expiry.is_some_and(|e| kept >= e) {
                out.expiring += n;
            }
        }
    }
    out
}

/// The workspace's quiet-hours overrides, longest prefix first (the order a phone matches
/// them in).
pub fn prefixes_longest_first(rules: &Rules) -> Vec<crate::model::workspace::PrefixQuiet> {
    let mut p = rules.quiet_by_prefix.clone();
    p.sort_by_key(|q| std::cmp::Reverse(q.prefix.len()));
    p
}

/// The first instant a local-time broadcast reaches anyone: its wall-clock time in the
/// earliest of `zones` (and the workspace's zone), with that zone's name.
pub fn first_wave(
    naive: NaiveDateTime,
    rules: &Rules,
    zones: &[String],
) -> (DateTime<Utc>, String) {
    let fallback: Tz = rules.time_zone.parse().unwrap_or(Tz::UTC);
    zones
        .iter()
        .map(|z| zone_of(z, fallback))
        .chain([fallback])
        .map(|z| (resolve(z, naive), z.name().to_string()))
        .min()
        .unwrap_or_else(|| (resolve(fallback, naive), fallback.name().to_string()))
}

/// `next wave 10:00 Europe/Berlin (12,400 waiting)`: the time in the wave's first zone, with
/// the date when it is not within the day.
pub fn wave_text(w: &crate::server::db::NextWave, now: chrono::DateTime<chrono::Utc>) -> String {
    let first = w.zones.split([',', ' ']).next().unwrap_or("UTC");
    let local = w.at.with_timezone(&crate::server::timefmt::zone(first));
    let time = if w.at - now > chrono::Duration::hours(20) {
        local.format("%-d %b, %H:%M").to_string()
    } else {
        local.format("%H:%M").to_string()
    };
    format!(
        "next wave {time} {} ({} waiting)",
        w.zones,
        crate::model::results::thousands(w.waiting)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::workspace::{DEFAULT_QUIET, PrefixQuiet};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn naive(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").unwrap()
    }

    #[test]
    fn the_pre_flight_counts_who_quiet_hours_hold_and_who_would_expire_first() {
        let rules = Rules {
            quiet: Some(DEFAULT_QUIET),
            quiet_by_prefix: vec![PrefixQuiet {
                prefix: "+1".into(),
                window: None,
            }],
            ..Rules::default()
        };
        let prefixes = prefixes_longest_first(&rules);
        let groups = [
            ("Europe/Berlin".to_string(), -1, 10),
            ("America/New_York".to_string(), -1, 5),
            ("America/New_York".to_string(), 0, 7),
        ];
        let mut timing = crate::model::compose::Timing::default();
        // 06:00 in Berlin and 00:00 in New York: both inside 21:00–08:00, but +1 numbers
        // have no quiet hours.
        let at = utc(2026, 12, 8, 5, 0);
        assert_eq!(
            held(&rules, &prefixes, at, &timing, &groups),
            Held {
                moved: 15,
                expiring: 0
            }
        );
        // Expiring after an hour: Berlin's end (07:00 UTC) and New York's (13:00 UTC) both
        // come after it.
        timing.expire_hours = Some(1);
        assert_eq!(held(&rules, &prefixes, at, &timing, &groups).expiring, 15);
        timing.expire_hours = Some(4);
        assert_eq!(held(&rules, &prefixes, at, &timing, &groups).expiring, 5);
        // 08:30 in Berlin: only New York waits.
        let later = utc(2026, 12, 8, 7, 30);
        assert_eq!(held(&rules, &prefixes, later, &timing, &groups).moved, 5);
    }

    #[test]
    fn skipped_times_move_to_the_next_minute_and_doubled_ones_are_the_first() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 29 March 2026: 02:00 → 03:00; 25 October: 03:00 → 02:00.
        assert_eq!(
            resolve(berlin, naive("2026-03-29T02:30")),
            utc(2026, 3, 29, 1, 0)
        );
        assert_eq!(
            resolve(berlin, naive("2026-10-25T02:30")),
            utc(2026, 10, 25, 0, 30)
        );
        assert_eq!(
            resolve(berlin, naive("2026-12-08T10:00")),
            utc(2026, 12, 8, 9, 0)
        );
    }

    #[test]
    fn quiet_hours_end_at_their_local_end_across_midnight() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 23:30 in New York (04:30 UTC) waits for 08:00 the next day (13:00 UTC).
        assert_eq!(
            after_quiet(ny, utc(2026, 12, 8, 4, 30), DEFAULT_QUIET),
            utc(2026, 12, 8, 13, 0)
        );
        // 06:00 waits for 08:00 the same day; 12:00 goes at once.
        assert_eq!(
            after_quiet(ny, utc(2026, 12, 8, 11, 0), DEFAULT_QUIET),
            utc(2026, 12, 8, 13, 0)
        );
        assert_eq!(
            after_quiet(ny, utc(2026, 12, 8, 17, 0), DEFAULT_QUIET),
            utc(2026, 12, 8, 17, 0)
        );
    }

    #[test]
    fn a_plan_groups_zones_by_instant_and_prefixes_longest_first() {
        let rules = Rules {
            time_zone: "Europe/Berlin".into(),
            quiet: None,
            quiet_by_prefix: vec![
                PrefixQuiet {
                    prefix: "+1".into(),
                    window: Some(DEFAULT_QUIET),
                },
                PrefixQuiet {
                    prefix: "+1268".into(),
                    window: None,
                },
            ],
            ..Rules::default()
        };
        let zones: Vec<String> = [
            "Europe/Berlin",
            "Europe/Paris",
            "America/New_York",
            "",
            "Mars",
        ]
        .map(String::from)
        .to_vec();
        let now = utc(2026, 12, 8, 3, 0); // 22:00 in New York
        let p = plan(now, None, &rules, false, &zones);
        assert_eq!(p.groups[0].prefix.as_deref(), Some("+1268"));
        assert_eq!(p.groups[1].prefix.as_deref(), Some("+1"));
        // +1 numbers in New York wait for 08:00 there; in Berlin (04:00) too.
        let plus1 = &p.groups[1];
        assert_eq!(plus1.default_at, utc(2026, 12, 8, 7, 0));
        assert_eq!(
            plus1.by_time,
            vec![(
                utc(2026, 12, 8, 13, 0),
                vec!["America/New_York".to_string()]
            )]
        );
        // Everyone else goes now: no quiet hours for them.
        assert_eq!(p.groups[2].default_at, now);
        assert!(p.groups[2].by_time.is_empty());
        assert_eq!(p.groups[0].default_at, now);
        let exempt = plan(now, None, &rules, true, &zones);
        assert!(
            exempt
                .groups
                .iter()
                .all(|g| g.default_at == now && g.by_time.is_empty())
        );
    }

    #[test]
    fn the_first_wave_is_the_earliest_zone() {
        let rules = Rules::default();
        let zones = ["Pacific/Auckland", "America/Los_Angeles"].map(String::from);
        let (at, zone) = first_wave(naive("2026-12-08T10:00"), &rules, &zones);
        assert_eq!(
            (at, zone.as_str()),
            (utc(2026, 12, 7, 21, 0), "Pacific/Auckland")
        );
    }
}
