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
}
