//! The channels page's data (admins; others are told who manages channels).

use leptos::prelude::*;

use super::AppError;
use crate::model::channel::ChannelsPage;

#[server(endpoint = "channels/list")]
pub async fn load_channels() -> Result<ChannelsPage, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let state = state()?;
    // Where providers reach this Herald: its public address, what it names to them itself
    // (an SMS's status callback, Telegram's webhook).
    let base = state
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| state.links.public_url.clone());
    crate::server::channels::setup::page(&state, &user, base.trim_end_matches('/')).await
}
