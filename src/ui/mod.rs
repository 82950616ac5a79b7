//! Pages and components.

pub mod broadcast_list;
pub mod customers;
pub mod header;
pub mod login;
