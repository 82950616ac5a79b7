//! The channels page's data (admins; others are told who manages channels).

use leptos::prelude::*;

use super::AppError;
use crate::model::channel::ChannelsPage;

#[server(endpoint = "channels/list")]
pub async fn load_channels() -> Result<ChannelsPage, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let state = state()?;
    // Where providers reach this Herald, as the browser reached it.
    let host = use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| state.leptos_options.site_addr.to_string());
    let scheme = if state.config.secure_cookies {
        "https"
    } else {
        "http"
    };
    // The configured public address first: it is what Herald itself names to providers
    // (an SMS's status callback, Telegram's webhook).
    let base = state
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{host}"));
    crate::server::channels::setup::page(&state, &user, base.trim_end_matches('/')).await
}
