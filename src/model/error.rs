//! The one error type that crosses the wire between server functions and pages. Services on
//! the server return it too; what only the server does with it (setting the response status,
//! logging the cause) is in `api::error`.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What went wrong, in words fit for the person using the page, with the HTTP status it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts (signing in): the message says when to try again.
    #[error("{0}")]
    TooManyRequests(String),
    /// Details are in the server log, never in the response.
    #[error(
        "Something went wrong on the server. Please try again; if it keeps happening, tell an admin."
    )]
    Internal,
    /// The request never reached the server function, or its reply could not be read.
    #[error("Could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status this error stands for.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized => 401,
            AppError::Forbidden(_) => 403,
            AppError::BadRequest(_) => 400,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::TooManyRequests(_) => 429,
            AppError::Internal => 500,
            AppError::Transport(_) => 502,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let e = match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                AppError::BadRequest(format!("The request was not understood: {m}"))
            }
            other => AppError::Transport(other.to_string()),
        };
        // On the server this runs when a request's arguments cannot be decoded: a 400, not 500.
        #[cfg(feature = "ssr")]
        let e = e.with_status();
        e
    }
}
