//! What the live pages show, read for [`crate::server::live::LiveHub`]: a list row's state as
//! JSON, and the results and dashboard fragments as the server renders them (the same
//! components the pages render first), so the browser swaps them in without code of its own.

use futures::future::BoxFuture;
use leptos::prelude::*;
use leptos::tachys::view::RenderHtml;

use crate::model::{AppError, CurrentUser};
use crate::server::AppState;
use crate::server::live::{Snapshots, Topic};

/// The snapshots of Herald's live pages.
pub struct Pages;

impl Snapshots for Pages {
    fn read(
        &self,
        state: AppState,
        topic: Topic,
        viewer: CurrentUser,
    ) -> BoxFuture<'static, Result<String, AppError>> {
        Box::pin(async move {
            match topic {
                Topic::Row(id) => row(&state, id).await,
                Topic::Results { id, .. } => results_html(&state, &viewer, id).await,
                Topic::Dashboard { sort, dir, .. } => {
                    dashboard_html(&state, &viewer, sort.as_deref(), dir.as_deref()).await
                }
            }
        })
    }
}

/// A list row's state: `{"id": …, "state": LiveState}`.
async fn row(state: &AppState, id: i64) -> Result<String, AppError> {
    let record = state.db.broadcast(id).await?;
    let live = crate::server::broadcast::list::live_state(state, &record).await?;
    Ok(serde_json::json!({ "id": id, "state": live }).to_string())
}

/// The results page's live part, as HTML.
pub async fn results_html(
    state: &AppState,
    viewer: &CurrentUser,
    id: i64,
) -> Result<String, AppError> {
    let r = crate::server::broadcast::results::results(&state.db, viewer, id).await?;
    Ok(Owner::new().with(|| view! { <crate::ui::fragments::ResultsBody r=r/> }.to_html()))
}

/// The dashboard's live part, as HTML.
async fn dashboard_html(
    state: &AppState,
    viewer: &CurrentUser,
    sort: Option<&str>,
    dir: Option<&str>,
) -> Result<String, AppError> {
    let d = crate::server::broadcast::list::dashboard(&state.db, viewer, sort, dir).await?;
    Ok(Owner::new().with(|| view! { <crate::ui::dashboard::DashboardBody d=d/> }.to_html()))
}
