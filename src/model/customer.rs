//! Customers as the customers page shows them, and that page's search, filter and page.

use serde::{Deserialize, Serialize};

use super::list_query::{MAX_SEARCH_CHARS, encode_component};

/// One line of the customers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRow {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub assignee: Option<String>,
    pub opted_out: bool,
}

/// Which side of a customer (by id) a page lies on. The list is ordered by name, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerAnchor {
    First,
    After(i64),
    Before(i64),
}

/// The customers page's search text, tag filter and page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerQuery {
    pub search: String,
    /// Only customers carrying this tag.
    pub tag: Option<String>,
    pub anchor: CustomerAnchor,
}

impl CustomerQuery {
    /// Turns URL parameters into a query, with a notice for everything that had to be corrected.
    pub fn parse(
        q: Option<&str>,
        tag: Option<&str>,
        after: Option<&str>,
        before: Option<&str>,
    ) -> (CustomerQuery, Vec<String>) {
        let mut notices = Vec::new();
        let mut search = q.unwrap_or("").trim().to_string();
        if search.chars().count() > MAX_SEARCH_CHARS {
            notices.push(format!(
                "Search text was longer than {MAX_SEARCH_CHARS} characters and was cut."
            ));
            search = search.chars().take(MAX_SEARCH_CHARS).collect();
        }
        let tag = tag
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.chars().take(100).collect());
        let id = |s: &str| s.parse::<i64>().ok().filter(|id| *id > 0);
        let after = after.filter(|s| !s.is_empty());
        let before = before.filter(|s| !s.is_empty());
        let anchor = match (after.map(id), before.map(id)) {
            (None, None) => CustomerAnchor::First,
            (Some(Some(a)), None) => CustomerAnchor::After(a),
            (None, Some(Some(b))) => CustomerAnchor::Before(b),
            _ => {
                notices.push(
                    "That page link is not valid (or out of date); showing the first page.".into(),
                );
                CustomerAnchor::First
            }
        };
        (
            CustomerQuery {
                search,
                tag,
                anchor,
            },
            notices,
        )
    }

    /// The link to this search and filter at `anchor`.
    pub fn href(&self, anchor: CustomerAnchor) -> String {
        let mut parts = Vec::new();
        if !self.search.is_empty() {
            parts.push(format!("q={}", encode_component(&self.search)));
        }
        if let Some(t) = &self.tag {
            parts.push(format!("tag={}", encode_component(t)));
        }
        match anchor {
            CustomerAnchor::First => {}
            CustomerAnchor::After(id) => parts.push(format!("after={id}")),
            CustomerAnchor::Before(id) => parts.push(format!("before={id}")),
        }
        if parts.is_empty() {
            "/customers".into()
        } else {
            format!("/customers?{}", parts.join("&"))
        }
    }
}

/// One page of the customers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPage {
    pub rows: Vec<CustomerRow>,
    pub query: CustomerQuery,
    pub next: Option<String>,
    pub prev: Option<String>,
    pub notices: Vec<String>,
    /// Every tag name, for the filter.
    pub all_tags: Vec<String>,
    /// Whether the viewer may add and remove tags (staff and admins).
    pub can_tag: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_links_round_trip() {
        let (q, n) = CustomerQuery::parse(Some(" Smith "), Some("VIP"), Some("42"), None);
        assert!(n.is_empty());
        assert_eq!(q.search, "Smith");
        assert_eq!(q.tag.as_deref(), Some("VIP"));
        assert_eq!(q.anchor, CustomerAnchor::After(42));
        assert_eq!(
            q.href(CustomerAnchor::Before(7)),
            "/customers?q=Smith&tag=VIP&before=7"
        );
    }

    #[test]
    fn bad_page_links_and_empty_filters_are_corrected() {
        for (a, b) in [
            (Some("x"), None),
            (None, Some("-3")),
            (Some("1"), Some("2")),
        ] {
            let (q, n) = CustomerQuery::parse(None, Some("  "), a, b);
            assert_eq!(q.anchor, CustomerAnchor::First);
            assert_eq!(q.tag, None);
            assert_eq!(n.len(), 1);
        }
    }
}
