//! The one error type that crosses the wire (defined in `model::error`; what the server does
//! with it is in `server::error`).

pub use crate::model::error::AppError;
