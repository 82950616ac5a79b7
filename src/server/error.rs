//! What the server does with an [`AppError`]: set it as the response's status, log the cause
//! of an internal one, and map storage errors to it.

use crate::model::AppError;

impl AppError {
    /// Sets this error's status on the current response and hands the error back.
    pub fn with_status(self) -> Self {
        if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>()
            && let Ok(code) = http::StatusCode::from_u16(self.status())
        {
            res.set_status(code);
        }
        self
    }

    /// Logs an unexpected failure with its whole cause chain and returns [`AppError::Internal`].
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let err = err.into();
        tracing::error!(error = ?err, "request failed");
        AppError::Internal.with_status()
    }
}

impl From<crate::server::db::DbError> for AppError {
    fn from(e: crate::server::db::DbError) -> Self {
        match e {
            crate::server::db::DbError::NotFound => {
                AppError::NotFound("Not found.".into()).with_status()
            }
            crate::server::db::DbError::Sqlx(e) => AppError::internal(e),
            e @ crate::server::db::DbError::Task(_) => AppError::internal(e),
            e @ crate::server::db::DbError::Sealed(_) => AppError::internal(e),
        }
    }
}
