//! The customers list.

use leptos::prelude::*;

use super::AppError;
use crate::model::CustomerPage;

/// One page of customers; any signed-in role may read it. Arguments are the URL's.
#[server(endpoint = "customers/list")]
pub async fn list_customers(
    q: Option<String>,
    tag: Option<String>,
    after: Option<String>,
    before: Option<String>,
) -> Result<CustomerPage, AppError> {
    use crate::server::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    crate::server::customers::list_page(
        &state()?,
        &user,
        q.as_deref(),
        tag.as_deref(),
        after.as_deref(),
        before.as_deref(),
    )
    .await
}
