//! Signing in and out, and who is signed in.

use leptos::prelude::*;

use super::AppError;
use crate::model::CurrentUser;

/// The signed-in user, or `None`.
#[server(endpoint = "me")]
pub async fn get_current_user() -> Result<Option<CurrentUser>, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role};
    match require_role(ANY_ROLE).await {
        Ok(u) => Ok(Some(u)),
        Err(AppError::Unauthorized) => {
            // Not an error for this question: reset the 401 that require_role set.
            if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                res.set_status(http::StatusCode::OK);
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Checks the credentials, sets the session cookie and goes to `next`.
///
/// Works as a plain form post too: on failure it then redirects back to the sign-in page with
/// the message and the email typed (never the password).
#[server(endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    tz: Option<String>,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::model::list_query::encode_component;
    use crate::server::accounts::{self, auth};
    let state = auth::state()?;
    let parts = use_context::<http::request::Parts>();
    let address = parts.as_ref().and_then(|p| state.config.client_address(p));
    match accounts::sign_in(&state, &email, &password, tz.as_deref(), address).await {
        Ok((token, _user)) => {
            let res = expect_context::<leptos_axum::ResponseOptions>();
            let cookie = auth::session_cookie(
                &token,
                state.config.session_hours * 3600,
                state.config.secure(),
            );
            res.insert_header(
                http::header::SET_COOKIE,
                http::HeaderValue::from_str(&cookie).map_err(AppError::internal)?,
            );
            leptos_axum::redirect(&accounts::safe_next(next.as_deref()));
            Ok(())
        }
        Err(e) => {
            let e = e.with_status();
            if super::form::is_plain_form_post() {
                let mut to = format!(
                    "/login?error={}&email={}",
                    encode_component(&e.to_string()),
                    encode_component(email.trim())
                );
                if let Some(n) = next.filter(|n| !n.is_empty()) {
                    to.push_str(&format!("&next={}", encode_component(&n)));
                }
                leptos_axum::redirect(&to);
            }
            Err(e)
        }
    }
}

/// Ends the session and goes to the sign-in page.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::accounts::{self, auth};
    let state = auth::state()?;
    if let Some(parts) = use_context::<http::request::Parts>()
        && let Some(token) = auth::session_token(&parts.headers, state.config.secure())
    {
        accounts::sign_out(&state, &token).await?;
    }
    let res = expect_context::<leptos_axum::ResponseOptions>();
    res.insert_header(
        http::header::SET_COOKIE,
        http::HeaderValue::from_str(&auth::clear_session_cookie(state.config.secure()))
            .map_err(AppError::internal)?,
    );
    leptos_axum::redirect("/login");
    Ok(())
}
