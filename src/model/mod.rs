//! Types shared by the browser and the server.

pub mod broadcast;
pub mod list_query;
pub mod user;

pub use broadcast::{BroadcastRow, BroadcastStatus, ListPage};
pub use list_query::{Cursor, ListQuery, SortDir, SortKey};
pub use user::{CurrentUser, Role};
