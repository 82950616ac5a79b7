//! Who a broadcast goes to: a rule over customer tags and robot reply groups, stored as JSON
//! in `broadcasts.audience`. Conditions name tags and groups by id, so renaming one never
//! changes what a rule means.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// Every condition holds.
    #[default]
    All,
    /// At least one condition holds.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Tag,
    RobotGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Is,
    IsNot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    /// The tag's or robot group's id.
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AudienceRule {
    #[serde(rename = "match")]
    pub matching: Match,
    pub conditions: Vec<Condition>,
}

impl AudienceRule {
    /// Whether any condition names the tag or group `id` of kind `field`.
    pub fn mentions(&self, field: Field, id: i64) -> bool {
        self.conditions
            .iter()
            .any(|c| c.field == field && c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stored_json_and_finds_what_it_mentions() {
        let empty: AudienceRule =
            serde_json::from_str(r#"{"match":"all","conditions":[]}"#).unwrap();
        assert_eq!(empty, AudienceRule::default());
        let rule: AudienceRule = serde_json::from_str(
            r#"{"match":"any","conditions":[{"field":"tag","op":"is","id":3},{"field":"robot_group","op":"is_not","id":3}]}"#,
        )
        .unwrap();
        assert_eq!(rule.matching, Match::Any);
        assert!(rule.mentions(Field::Tag, 3) && rule.mentions(Field::RobotGroup, 3));
        assert!(!rule.mentions(Field::Tag, 4));
        assert_eq!(
            serde_json::from_str::<AudienceRule>(&serde_json::to_string(&rule).unwrap()).unwrap(),
            rule
        );
    }
}
