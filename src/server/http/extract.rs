//! Who is asking, checked once per handler as an extractor: `Editor(user)` in a handler's
//! arguments means only staff and admins get past it; anyone else gets 401 or 403 (and 503
//! when the sessions cannot be read), before the handler's body runs.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::model::{CurrentUser, Role};
use crate::server::AppState;
use crate::server::accounts::auth::{check_role, user_for_headers};

/// The caller, signed in with one of `allowed` roles; or the response to send instead.
async fn caller(
    parts: &Parts,
    state: &AppState,
    allowed: &[Role],
) -> Result<CurrentUser, Response> {
    let user = user_for_headers(state, &parts.headers).await.map_err(|e| {
        tracing::error!(error = ?e, "session lookup failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is unavailable.",
        )
            .into_response()
    })?;
    check_role(user, allowed).map_err(|e| {
        let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
        (code, e.to_string()).into_response()
    })
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub CurrentUser);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Response;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                caller(parts, state, $allowed).await.map($name)
            }
        }
    };
}

role_extractor!(
    /// Anyone signed in (staff, managers, admins).
    AnyUser,
    &Role::ALL
);
role_extractor!(
    /// Someone who may change broadcasts and customers: staff and admins.
    Editor,
    &Role::EDITORS
);
role_extractor!(
    /// An admin.
    Admin,
    &[Role::Admin]
);
role_extractor!(
    /// Someone who reads the audit log: admins and managers.
    Reader,
    &[Role::Admin, Role::Manager]
);
