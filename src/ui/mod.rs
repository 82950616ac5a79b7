//! Pages and components.

pub mod broadcast_list;
pub mod header;
pub mod login;
