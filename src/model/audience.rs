//! Who a broadcast goes to: a rule over customer tags and robot reply groups, stored as JSON
//! in `broadcasts.audience`. Conditions name tags and groups by id, so renaming one never
//! changes what a rule means.

use serde::{Deserialize, Serialize};

use super::channel::ChannelKind;

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

/// Most conditions one rule may hold (and condition rows the editor shows).
pub const MAX_CONDITIONS: usize = 20;

impl Field {
    /// A value menu's choice, `tag:3` or `robot_group:5`.
    pub fn parse_choice(v: &str) -> Option<(Field, i64)> {
        let (kind, id) = v.split_once(':')?;
        let field = match kind {
            "tag" => Field::Tag,
            "robot_group" => Field::RobotGroup,
            _ => return None,
        };
        Some((field, id.parse().ok()?))
    }
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
    /// A follow-up's frozen set of recipients (an earlier broadcast's outcome, as it was when
    /// the follow-up was made): only they can match; the conditions narrow it further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<i64>,
}

/// What the in-memory evaluation needs to know of one customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerFacts {
    pub tags: Vec<i64>,
    pub groups: Vec<i64>,
    /// Opted out of everything.
    pub opted_out: bool,
    /// Channel kinds the customer has an address on.
    pub addresses: Vec<ChannelKind>,
    /// Channel kinds the customer opted out of by message.
    pub opted_out_kinds: Vec<ChannelKind>,
}

impl AudienceRule {
    /// Whether a customer with these tags and robot groups satisfies the rule. No conditions:
    /// everyone does.
    pub fn matches(&self, tags: &[i64], groups: &[i64]) -> bool {
        let holds = |c: &Condition| {
            let has = match c.field {
                Field::Tag => tags.contains(&c.id),
                Field::RobotGroup => groups.contains(&c.id),
            };
            has == (c.op == Op::Is)
        };
        match self.matching {
            _ if self.conditions.is_empty() => true,
            Match::All => self.conditions.iter().all(holds),
            Match::Any => self.conditions.iter().any(holds),
        }
    }

    /// The channel kind, of `kinds` in priority order, on which this rule reaches `c`: the
    /// first one where the customer has an address and has not opted out. `None`: not in the
    /// audience (rule not met, opted out, or unreachable on every kind).
    pub fn reaches(&self, c: &CustomerFacts, kinds: &[ChannelKind]) -> Option<ChannelKind> {
        if c.opted_out || !self.matches(&c.tags, &c.groups) {
            return None;
        }
        kinds.iter().copied().find(|k| {
            (k.address_columns().is_empty() || c.addresses.contains(k))
                && !c.opted_out_kinds.contains(k)
        })
    }

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

    #[test]
    fn in_memory_evaluation_follows_all_any_and_channel_priority() {
        let cond = |field, op, id| Condition { field, op, id };
        let vip_not_churned = AudienceRule {
            matching: Match::All,
            conditions: vec![cond(Field::Tag, Op::Is, 1), cond(Field::Tag, Op::IsNot, 2)],
            frozen: None,
        };
        assert!(vip_not_churned.matches(&[1, 5], &[]));
        assert!(!vip_not_churned.matches(&[1, 2], &[]));
        let any = AudienceRule {
            matching: Match::Any,
            conditions: vec![
                cond(Field::Tag, Op::Is, 1),
                cond(Field::RobotGroup, Op::Is, 1),
            ],
            frozen: None,
        };
        assert!(any.matches(&[], &[1]) && !any.matches(&[2], &[2]));
        assert!(AudienceRule::default().matches(&[], &[]));

        let mut c = CustomerFacts {
            tags: vec![1],
            addresses: vec![ChannelKind::Sms, ChannelKind::Email],
            ..Default::default()
        };
        let picked = [ChannelKind::Whatsapp, ChannelKind::Sms, ChannelKind::Email];
        assert_eq!(vip_not_churned.reaches(&c, &picked), Some(ChannelKind::Sms));
        c.opted_out_kinds.push(ChannelKind::Sms);
        assert_eq!(
            vip_not_churned.reaches(&c, &picked),
            Some(ChannelKind::Email)
        );
        assert_eq!(vip_not_churned.reaches(&c, &picked[..2]), None);
        c.opted_out = true;
        assert_eq!(vip_not_churned.reaches(&c, &[ChannelKind::Webhook]), None);
    }
}
