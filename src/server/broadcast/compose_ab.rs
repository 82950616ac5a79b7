//! The wizard's A/B test: the variant a step shows (steps 1 and 3 edit one variant's text,
//! files and template at a time, through the same fields as the broadcast's own), adding
//! and removing variants, and the split's settings.

use crate::model::ab::{AbPlan, MAX_VARIANTS, Measure, Variant};
use crate::model::compose::Compose;
use crate::model::list_query::with_param;

/// What a step posted about the test.
#[derive(Debug, Default, Clone)]
pub struct AbPosted {
    /// The variant the step showed (0 is A, the broadcast's own message).
    pub variant: usize,
    /// The settings were on the form: `ab_split` (`even` or `test`), `ab_share` (percent),
    /// `ab_measure` and `ab_wait` (hours).
    pub shown: bool,
    pub split: Option<String>,
    pub share: Option<String>,
    pub measure: Option<String>,
    pub wait: Option<String>,
}

/// A typed value as kept for parsing (bounded: it is only ever a short number or word).
fn short(v: &str) -> String {
    v.trim().chars().take(20).collect()
}

impl AbPosted {
    /// Takes form field `k` if it is the test's; whether it was.
    pub fn take(&mut self, k: &str, v: &str) -> bool {
        match k {
            "variant" => self.variant = v.trim().parse().unwrap_or(0).min(MAX_VARIANTS),
            "ab_shown" => self.shown = true,
            "ab_split" => self.split = Some(short(v)),
            "ab_share" => self.share = Some(short(v)),
            "ab_measure" => self.measure = Some(short(v)),
            "ab_wait" => self.wait = Some(short(v)),
            _ => return false,
        }
        true
    }
}

/// A whole number typed into `what`, or the problem.
fn number<T: std::str::FromStr>(typed: &str, what: &str, problems: &mut Vec<String>) -> Option<T> {
    match typed.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(format!("“{typed}” is not a whole number of {what}."));
            None
        }
    }
}

/// The settings posted, on the test `compose` has (none without one).
fn settings(a: &AbPosted, compose: &mut Compose, problems: &mut Vec<String>) {
    let Some(plan) = compose.ab.as_mut() else {
        return;
    };
    if let Some(m) = a.measure.as_deref().and_then(Measure::parse) {
        plan.measure = m;
    }
    if let Some(w) = a.wait.as_deref().filter(|w| !w.is_empty()) {
        plan.wait_hours = number(w, "hours", problems).unwrap_or(plan.wait_hours);
    }
    if a.split.as_deref() == Some("test") {
        let typed = a.share.as_deref().unwrap_or("").trim();
        plan.test_share = if typed.is_empty() {
            Some(20)
        } else {
            number(typed, "percent", problems).or(plan.test_share)
        };
    } else if a.split.is_some() {
        plan.test_share = None;
    }
}

/// Applies the test's settings and the button pressed to `compose`: the variant the
/// browser shows next.
pub fn merge_ab(
    a: &AbPosted,
    go: &str,
    compose: &mut Compose,
    problems: &mut Vec<String>,
) -> usize {
    if a.shown {
        settings(a, compose, problems);
    }
    match go {
        "add_variant" => {
            // A new variant starts as a copy of A: change what it should test.
            let copy = Variant {
                body: compose.body.clone(),
                attachments: compose.attachments.clone(),
                template: compose.template.clone(),
            };
            let plan = compose.ab.get_or_insert_with(|| AbPlan {
                wait_hours: 4,
                ..Default::default()
            });
            if plan.count() >= MAX_VARIANTS {
                problems.push(format!(
                    "A broadcast can test at most {MAX_VARIANTS} variants."
                ));
                return a.variant;
            }
            plan.variants.push(copy);
            plan.variants.len()
        }
        "remove_variant" => {
            if let Some(plan) = compose.ab.as_mut()
                && (1..=plan.variants.len()).contains(&a.variant)
            {
                plan.variants.remove(a.variant - 1);
                if plan.variants.is_empty() {
                    compose.ab = None;
                }
            }
            0
        }
        go => go
            .strip_prefix("variant_")
            .and_then(|n| n.parse().ok())
            .unwrap_or(a.variant),
    }
}

/// `url` showing variant `n` where it is the wizard's own step (`prefix`), and the test has
/// that variant.
pub fn with_variant(url: String, prefix: &str, n: usize, compose: &Compose) -> String {
    let exists = compose.ab.as_ref().is_some_and(|p| n < p.count());
    if n == 0 || !exists || !url.starts_with(prefix) {
        return url;
    }
    with_param(&url, "variant", &n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_added_as_copies_removed_and_set() {
        let mut c = Compose {
            body: "Hi".into(),
            ..Default::default()
        };
        let mut problems = Vec::new();
        let a = AbPosted::default();
        assert_eq!(merge_ab(&a, "add_variant", &mut c, &mut problems), 1);
        assert_eq!(merge_ab(&a, "add_variant", &mut c, &mut problems), 2);
        let plan = c.ab.clone().unwrap();
        assert_eq!(plan.count(), 3);
        assert_eq!(plan.variants[0].body, "Hi");
        let posted = AbPosted {
            variant: 1,
            shown: true,
            split: Some("test".into()),
            share: Some("30".into()),
            measure: Some("reply".into()),
            wait: Some("x".into()),
        };
        assert_eq!(
            merge_ab(&posted, "remove_variant", &mut c, &mut problems),
            0
        );
        let plan = c.ab.clone().unwrap();
        assert_eq!(plan.count(), 2);
        assert_eq!(plan.test_share, Some(30));
        assert_eq!(plan.measure, Measure::Reply);
        assert_eq!(plan.wait_hours, 4, "a wrong number keeps the hours");
        assert_eq!(problems, vec!["“x” is not a whole number of hours."]);
        let last = AbPosted {
            variant: 1,
            ..Default::default()
        };
        merge_ab(&last, "remove_variant", &mut c, &mut problems);
        assert!(c.ab.is_none(), "without variants there is no test");
    }

    #[test]
    fn only_the_wizards_own_step_shows_a_variant() {
        let mut c = Compose::default();
        merge_ab(&AbPosted::default(), "add_variant", &mut c, &mut Vec::new());
        let to = with_variant(
            "/broadcasts/3/edit?step=1".into(),
            "/broadcasts/3/edit?step=1",
            1,
            &c,
        );
        assert_eq!(to, "/broadcasts/3/edit?step=1&variant=1");
        let list = with_variant("/?notice=x".into(), "/broadcasts/3/edit?step=1", 1, &c);
        assert_eq!(list, "/?notice=x");
        let gone = with_variant(
            "/broadcasts/3/edit?step=1".into(),
            "/broadcasts/3/edit?step=1",
            2,
            &c,
        );
        assert_eq!(gone, "/broadcasts/3/edit?step=1");
    }
}
