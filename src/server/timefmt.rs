//! Rendering UTC times in a person's time zone, on the server (so the WASM bundle carries no
//! time zone database and both renders show the same text).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The zone named `name`, or UTC when the name is not a known IANA zone.
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// Whether `name` is a known IANA time zone.
pub fn is_zone(name: &str) -> bool {
    name.parse::<Tz>().is_ok()
}

/// `t` as "26 Nov 2026, 16:56" in `tz`.
pub fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%-d %b %Y, %H:%M").to_string()
}

/// The UTC instant of a wall-clock time typed in `tz` (`2026-12-24T09:30`, as an HTML
/// datetime-local field sends it). A time the clocks skip (spring forward) is refused; a time
/// that happens twice (fall back) is the first of the two.
pub fn local_to_utc(typed: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    use chrono::{LocalResult, NaiveDateTime, TimeZone};
    let typed = typed.trim();
    let naive = NaiveDateTime::parse_from_str(typed, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(typed, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("“{typed}” is not a date and time (e.g. 2026-12-24T09:30)."))?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(format!(
            "{} does not exist in {} (the clocks skip that hour): choose another time.",
            naive.format("%-d %b %Y, %H:%M"),
            tz.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_in_the_zone_including_daylight_saving() {
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        let berlin = zone("Europe/Berlin");
        assert_eq!(local(winter, berlin), "15 Jan 2026, 13:00");
        assert_eq!(local(summer, berlin), "15 Jul 2026, 14:00");
        assert_eq!(local(winter, zone("Not/AZone")), "15 Jan 2026, 12:00");
        assert!(is_zone("America/New_York") && !is_zone("Mars/Olympus"));
    }

    #[test]
    fn typed_local_times_become_utc_across_daylight_saving() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            local_to_utc("2026-12-24T09:30", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 24, 8, 30, 0).unwrap()
        );
        assert_eq!(
            local_to_utc("2026-07-01T09:30:00", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 7, 1, 7, 30, 0).unwrap()
        );
        // 29 March 2026: 02:00 → 03:00 in Berlin; 25 October: 03:00 → 02:00.
        let gap = local_to_utc("2026-03-29T02:30", berlin).unwrap_err();
        assert!(gap.contains("does not exist in Europe/Berlin"), "{gap}");
        assert_eq!(
            local_to_utc("2026-10-25T02:30", berlin).unwrap(),
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()
        );
        assert!(
            local_to_utc("tomorrow", berlin)
                .unwrap_err()
                .contains("not a date")
        );
    }
}
