//! Types shared by the browser and the server.

pub mod ab;
pub mod audience;
pub mod audit;
pub mod broadcast;
pub mod channel;
pub mod chat;
pub mod compose;
pub mod consent;
pub mod cost;
pub mod customer;
pub mod customer_edit;
pub mod delivery;
pub mod error;
pub mod fit;
pub mod ids;
pub mod import;
pub mod labels;
pub mod list_query;
pub mod media;
pub mod opt_out;
pub mod personalize;
pub mod rate_chart;
pub mod rates;
pub mod results;
pub mod retarget;
pub mod staff;
pub mod stored;
pub mod template;
pub mod user;
pub mod workspace;

pub use broadcast::{BroadcastRow, BroadcastStatus, Lifecycle, ListPage, LiveState};
pub use customer::{CustomerAnchor, CustomerPage, CustomerQuery, CustomerRow};
pub use error::AppError;
pub use ids::{BroadcastId, ChannelId, CustomerId, UserId};
pub use list_query::{Cursor, ListQuery, SortDir, SortKey};
pub use user::{CurrentUser, Role};
