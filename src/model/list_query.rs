//! The broadcast list's search, sort and page, parsed from the URL.
//!
//! Parse, don't validate: whatever the URL holds becomes a valid [`ListQuery`] plus a list of
//! notices saying what was corrected, so a bad link shows a sensible page and a clear message.

use serde::{Deserialize, Serialize};

use super::BroadcastStatus;

/// Longest search text accepted; longer input is cut (with a notice).
pub const MAX_SEARCH_CHARS: usize = 200;
/// Rows per page.
pub const PAGE_SIZE: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// By status with this group first, the others after it in their usual order
    /// ([`BroadcastStatus::IN_SORT_ORDER`]); ties broken by sending date.
    Status(BroadcastStatus),
    /// Creation date.
    Created,
    /// Sending date (actual start, else scheduled time, else creation).
    SendDate,
}

impl Default for SortKey {
    fn default() -> Self {
        SortKey::SENDING_FIRST
    }
}

impl SortKey {
    /// The default order: sending first, then not processed, paused, sent…
    pub const SENDING_FIRST: SortKey = SortKey::Status(BroadcastStatus::Sending);

    /// The choices of the "Sort by" menu, in the order it offers them, with their labels.
    pub fn menu() -> Vec<(SortKey, String)> {
        let mut out: Vec<(SortKey, String)> = BroadcastStatus::IN_SORT_ORDER
            .into_iter()
            .map(|s| (SortKey::Status(s), format!("{} first", s.label())))
            .collect();
        out.push((SortKey::Created, "Newest created".into()));
        out.push((SortKey::SendDate, "Sending date".into()));
        out
    }

    /// The URL spelling: `status` for the default order, a status's name for "that group
    /// first", `created`, `send`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::SENDING_FIRST => "status",
            SortKey::Status(first) => first.css(),
            SortKey::Created => "created",
            SortKey::SendDate => "send",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        match s {
            "status" => Some(SortKey::SENDING_FIRST),
            "created" => Some(SortKey::Created),
            "send" => Some(SortKey::SendDate),
            _ => BroadcastStatus::IN_SORT_ORDER
                .into_iter()
                .find(|st| st.css() == s)
                .map(SortKey::Status),
        }
    }

    /// The direction a click on this column's header (or a menu choice) starts with.
    pub fn default_dir(self) -> SortDir {
        match self {
            SortKey::Status(_) => SortDir::Asc,
            SortKey::Created | SortKey::SendDate => SortDir::Desc,
        }
    }

    /// The same kind of order (the column it sorts), whatever group comes first.
    pub fn same_column(self, other: SortKey) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }

    /// A row's rank under this order, from its stored `status_rank`
    /// ([`BroadcastStatus::rank`]): the first group is 0, the others keep their order after it.
    /// The SQL in `server::db::broadcasts` computes the same from the column.
    pub fn rank(self, status_rank: i64) -> i64 {
        match self {
            SortKey::Status(first) if first.rank() == 0 => status_rank,
            SortKey::Status(first) if first.rank() == status_rank => 0,
            SortKey::Status(_) => status_rank + 1,
            SortKey::Created | SortKey::SendDate => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortDir {
    #[default]
    Asc,
    Desc,
}

impl SortDir {
    pub fn as_str(self) -> &'static str {
        match self {
            SortDir::Asc => "asc",
            SortDir::Desc => "desc",
        }
    }

    pub fn parse(s: &str) -> Option<SortDir> {
        match s {
            "asc" => Some(SortDir::Asc),
            "desc" => Some(SortDir::Desc),
            _ => None,
        }
    }

    pub fn flip(self) -> SortDir {
        match self {
            SortDir::Asc => SortDir::Desc,
            SortDir::Desc => SortDir::Asc,
        }
    }
}

/// A position in the list for keyset pagination: the sort key values of a row and its id.
/// Written in URLs as `rank.micros.id` (rank is 0 unless sorting by status; 0..=7, as
/// [`SortKey::rank`] gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub rank: i64,
    /// The sort time as microseconds since the Unix epoch (UTC).
    pub micros: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.rank, self.micros, self.id)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let mut parts = s.split('.');
        let rank: i64 = parts.next()?.parse().ok()?;
        let micros: i64 = parts.next()?.parse().ok()?;
        let id: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || !(0..=7).contains(&rank) || id < 1 {
            return None;
        }
        // Years 1970..=9999 only: anything else is not a time we wrote.
        if !(0..=253_402_300_799_000_000).contains(&micros) {
            return None;
        }
        Some(Cursor { rank, micros, id })
    }
}

/// Which side of a cursor a page lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageAnchor {
    First,
    After(Cursor),
    Before(Cursor),
}

/// The list's search, sort and page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    pub search: String,
    pub sort: SortKey,
    pub dir: SortDir,
    pub anchor: PageAnchor,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            search: String::new(),
            sort: SortKey::SENDING_FIRST,
            dir: SortDir::Asc,
            anchor: PageAnchor::First,
        }
    }
}

/// The raw URL parameters, each possibly missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawListParams {
    pub q: Option<String>,
    pub sort: Option<String>,
    pub dir: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
}

impl ListQuery {
    /// Turns URL parameters into a query, with a notice for everything that had to be corrected.
    pub fn parse(raw: &RawListParams) -> (ListQuery, Vec<String>) {
        let mut notices = Vec::new();
        let mut q = ListQuery::default();

        if let Some(text) = raw.q.as_deref() {
            let text = text.trim();
            if text.chars().count() > MAX_SEARCH_CHARS {
                notices.push(format!(
                    "Search text was longer than {MAX_SEARCH_CHARS} characters and was cut."
                ));
                q.search = text.chars().take(MAX_SEARCH_CHARS).collect();
            } else {
                q.search = text.to_string();
            }
        }

        match raw.sort.as_deref().filter(|s| !s.is_empty()) {
            None => {}
            Some(s) => match SortKey::parse(s) {
                Some(k) => {
                    q.sort = k;
                    q.dir = k.default_dir();
                }
                None => notices.push(format!(
                    "Unknown sort \"{}\"; sorted by status instead.",
                    shorten(s)
                )),
            },
        }

        match raw.dir.as_deref().filter(|s| !s.is_empty()) {
            None => {}
            Some(d) => match SortDir::parse(d) {
                Some(d) => q.dir = d,
                None => notices.push(format!(
                    "Unknown sort direction \"{}\"; used {} instead.",
                    shorten(d),
                    q.dir.as_str()
                )),
            },
        }

        let after = raw.after.as_deref().filter(|s| !s.is_empty());
        let before = raw.before.as_deref().filter(|s| !s.is_empty());
        let bad_page = "That page link is not valid (or out of date); showing the first page.";
        q.anchor = match (after, before) {
            (None, None) => PageAnchor::First,
            (Some(a), None) => match Cursor::parse(a) {
                Some(c) => PageAnchor::After(c),
                None => {
                    notices.push(bad_page.into());
                    PageAnchor::First
                }
            },
            (None, Some(b)) => match Cursor::parse(b) {
                Some(c) => PageAnchor::Before(c),
                None => {
                    notices.push(bad_page.into());
                    PageAnchor::First
                }
            },
            (Some(_), Some(_)) => {
                notices.push(bad_page.into());
                PageAnchor::First
            }
        };
        (q, notices)
    }

    /// The URL query string (with leading `?`, or empty) for this search and sort at `anchor`.
    /// Defaults are left out so links stay short.
    pub fn href(&self, anchor: PageAnchor) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.search.is_empty() {
            parts.push(format!("q={}", encode_component(&self.search)));
        }
        if self.sort != SortKey::SENDING_FIRST || self.dir != SortDir::Asc {
            parts.push(format!("sort={}", self.sort.as_str()));
            parts.push(format!("dir={}", self.dir.as_str()));
        }
        match anchor {
            PageAnchor::First => {}
            PageAnchor::After(c) => parts.push(format!("after={}", c.encode())),
            PageAnchor::Before(c) => parts.push(format!("before={}", c.encode())),
        }
        if parts.is_empty() {
            "/".to_string()
        } else {
            format!("/?{}", parts.join("&"))
        }
    }

    /// The link a column header points at: same search, that column, first page; clicking the
    /// column already sorted flips its direction (keeping the group that comes first).
    pub fn sort_href(&self, key: SortKey) -> String {
        let (key, dir) = if self.sort.same_column(key) {
            (self.sort, self.dir.flip())
        } else {
            (key, key.default_dir())
        };
        ListQuery {
            search: self.search.clone(),
            sort: key,
            dir,
            anchor: PageAnchor::First,
        }
        .href(PageAnchor::First)
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Percent-encodes a query-string component (RFC 3986 unreserved characters pass through).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `path` with the query parameter `key` set to `value` (replacing any earlier one).
pub fn with_param(path: &str, key: &str, value: &str) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
        .collect();
    let set = format!("{key}={}", encode_component(value));
    pairs.push(&set);
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sets_or_replaces_one_parameter() {
        use super::with_param;
        assert_eq!(with_param("/", "error", "No."), "/?error=No.");
        assert_eq!(
            with_param("/?sort=created&error=old", "error", "new one"),
            "/?sort=created&error=new%20one"
        );
    }

    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawListParams {
        let mut r = RawListParams::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "q" => r.q = v,
                "sort" => r.sort = v,
                "dir" => r.dir = v,
                "after" => r.after = v,
                "before" => r.before = v,
                _ => unreachable!(),
            }
        }
        r
    }

    #[test]
    fn empty_params_give_the_default_query_without_notices() {
        let (q, notices) = ListQuery::parse(&RawListParams::default());
        assert_eq!(q, ListQuery::default());
        assert!(notices.is_empty());
        assert_eq!(q.href(PageAnchor::First), "/");
    }

    #[test]
    fn unknown_sort_key_falls_back_to_status_with_a_notice() {
        let (q, notices) = ListQuery::parse(&raw(&[("sort", "DROP TABLE broadcasts")]));
        assert_eq!(q.sort, SortKey::SENDING_FIRST);
        assert_eq!(notices.len(), 1);
        assert!(notices[0].contains("Unknown sort"), "{notices:?}");
    }

    #[test]
    fn sort_key_picks_its_default_direction_unless_given() {
        let (q, _) = ListQuery::parse(&raw(&[("sort", "created")]));
        assert_eq!((q.sort, q.dir), (SortKey::Created, SortDir::Desc));
        let (q, _) = ListQuery::parse(&raw(&[("sort", "created"), ("dir", "asc")]));
        assert_eq!((q.sort, q.dir), (SortKey::Created, SortDir::Asc));
        let (q, n) = ListQuery::parse(&raw(&[("sort", "send"), ("dir", "sideways")]));
        assert_eq!((q.sort, q.dir), (SortKey::SendDate, SortDir::Desc));
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn overlong_search_is_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_SEARCH_CHARS + 50);
        let (q, notices) = ListQuery::parse(&raw(&[("q", &long)]));
        assert_eq!(q.search.chars().count(), MAX_SEARCH_CHARS);
        assert_eq!(notices.len(), 1);
    }

    #[test]
    fn search_is_trimmed() {
        let (q, n) = ListQuery::parse(&raw(&[("q", "  spring sale ")]));
        assert_eq!(q.search, "spring sale");
        assert!(n.is_empty());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            rank: 3,
            micros: 1_700_000_000_123_456,
            id: 42,
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "x.y.z",
            "8.0.1",
            "0.0.0",
            "0.-5.1",
            "0.99999999999999999999999.1",
            "0.9223372036854775807.1",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_or_conflicting_page_links_show_the_first_page() {
        for params in [
            raw(&[("after", "999999999999999999999999999")]),
            raw(&[("before", "nonsense")]),
            raw(&[("after", "0.1.1"), ("before", "0.1.1")]),
        ] {
            let (q, notices) = ListQuery::parse(&params);
            assert_eq!(q.anchor, PageAnchor::First);
            assert_eq!(notices.len(), 1);
        }
        let (q, n) = ListQuery::parse(&raw(&[("after", "1.1000.7")]));
        assert_eq!(
            q.anchor,
            PageAnchor::After(Cursor {
                rank: 1,
                micros: 1000,
                id: 7
            })
        );
        assert!(n.is_empty());
    }

    #[test]
    fn hrefs_keep_search_and_sort_and_encode_text() {
        let (q, _) = ListQuery::parse(&raw(&[("q", "50% off & more"), ("sort", "created")]));
        assert_eq!(
            q.href(PageAnchor::First),
            "/?q=50%25%20off%20%26%20more&sort=created&dir=desc"
        );
        // Clicking the sorted column flips it; another column starts at its default.
        assert!(
            q.sort_href(SortKey::Created)
                .ends_with("sort=created&dir=asc")
        );
        assert!(
            q.sort_href(SortKey::SendDate)
                .ends_with("sort=send&dir=desc")
        );
        assert!(
            q.sort_href(SortKey::SENDING_FIRST)
                .ends_with("q=50%25%20off%20%26%20more")
        );
    }

    #[test]
    fn each_group_can_come_first_and_keeps_its_place_when_flipped() {
        let (q, n) = ListQuery::parse(&raw(&[("sort", "sent")]));
        assert!(n.is_empty());
        assert_eq!(
            (q.sort, q.dir),
            (SortKey::Status(BroadcastStatus::Sent), SortDir::Asc)
        );
        assert_eq!(q.href(PageAnchor::First), "/?sort=sent&dir=asc");
        // The status header flips the direction and keeps "sent first".
        assert_eq!(q.sort_href(SortKey::SENDING_FIRST), "/?sort=sent&dir=desc");
        assert_eq!(
            ListQuery::parse(&raw(&[("sort", "scheduled")])).0.sort,
            SortKey::Status(BroadcastStatus::Scheduled)
        );
        // Every menu choice reads back as itself.
        for (key, label) in SortKey::menu() {
            assert_eq!(SortKey::parse(key.as_str()), Some(key), "{label}");
        }
        assert_eq!(SortKey::menu()[1].1, "Not processed first");
    }

    #[test]
    fn ranks_put_the_chosen_group_first_and_keep_the_rest_in_order() {
        let sent = BroadcastStatus::Sent.rank();
        let by = |first: BroadcastStatus| {
            let key = SortKey::Status(first);
            let mut all = BroadcastStatus::IN_SORT_ORDER.to_vec();
            all.sort_by_key(|s| key.rank(s.rank()));
            all
        };
        let order = by(BroadcastStatus::Sent);
        assert_eq!(order[0], BroadcastStatus::Sent);
        let rest: Vec<_> = BroadcastStatus::IN_SORT_ORDER
            .into_iter()
            .filter(|s| s.rank() != sent)
            .collect();
        assert_eq!(order[1..], rest[..]);
        assert_eq!(by(BroadcastStatus::Sending), BroadcastStatus::IN_SORT_ORDER);
        // Every rank fits a cursor.
        for (key, _) in SortKey::menu() {
            for s in BroadcastStatus::IN_SORT_ORDER {
                let c = Cursor {
                    rank: key.rank(s.rank()),
                    micros: 0,
                    id: 1,
                };
                assert_eq!(Cursor::parse(&c.encode()), Some(c));
            }
        }
    }
}
