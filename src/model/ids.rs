//! Ids that are easy to mix up, as their own types: a call that takes a customer, a channel
//! and a staff member cannot be handed them in the wrong order. Each is the row's `BIGINT`
//! id (stored and serialised as the plain number).

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// `broadcasts.id`.
    BroadcastId
);
id_type!(
    /// `channels.id`.
    ChannelId
);
id_type!(
    /// `customers.id`.
    CustomerId
);
id_type!(
    /// `users.id`: a member of staff.
    UserId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_as_plain_numbers() {
        assert_eq!(serde_json::to_string(&CustomerId(42)).unwrap(), "42");
        let id: BroadcastId = serde_json::from_str("7").unwrap();
        assert_eq!(id, BroadcastId(7));
        assert_eq!(format!("/broadcasts/{id}"), "/broadcasts/7");
    }
}
