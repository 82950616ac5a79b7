//! Server functions: the API between pages and server. Each one checks the caller's role,
//! calls a service in `server/`, and maps the error.

pub mod auth;
pub mod broadcasts;
pub mod channels;
pub mod chat;
pub mod compose;
pub mod customers;
pub mod error;
pub mod form;
pub mod import;
pub mod labels;
pub mod settings;
pub mod staff;

pub use error::AppError;
