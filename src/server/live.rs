//! Live pages without polling: the broadcast list's rows, a broadcast's results and the
//! dashboard follow the broadcasts' events (`Db::broadcast_events`, from every instance). One
//! reader per topic (a row, a results page as a role in a time zone sees it, a dashboard
//! order) reads the database once per burst of events and hands what it read to every page
//! showing that topic, so a page with many viewers costs the database nothing per viewer.
//! What a topic shows is read by [`Pages`]: a list row's state as JSON, the results and the
//! dashboard as `ui::fragments` renders them (the same components the pages render first), so
//! the browser only swaps them in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{broadcast, watch};

use crate::model::{AppError, CurrentUser, Role};
use crate::server::AppState;
use crate::server::db::RESYNC;
use crate::server::stream_slots::{StreamSlot, StreamSlots};

/// What a live page follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A row of the broadcast list: its status and progress (JSON).
    Row(i64),
    /// A broadcast's results, as people of `role` in zone `tz` see them (HTML).
    Results { id: i64, role: Role, tz: String },
    /// The dashboard in one order (HTML).
    Dashboard {
        sort: Option<String>,
        dir: Option<String>,
        role: Role,
        tz: String,
    },
}

impl Topic {
    /// Whether a change of broadcast `id` may change what this topic shows.
    fn wakes_on(&self, id: i64) -> bool {
        id == RESYNC
            || match self {
                Topic::Row(b) | Topic::Results { id: b, .. } => *b == id,
                Topic::Dashboard { .. } => true,
            }
    }

    /// The name of the server-sent event that carries it.
    pub fn event(&self) -> &'static str {
        match self {
            Topic::Row(_) => "row",
            Topic::Results { .. } => "results",
            Topic::Dashboard { .. } => "dashboard",
        }
    }
}

/// Reads what a topic shows now, for `viewer`.
pub trait Snapshots: Send + Sync {
    fn read(
        &self,
        state: AppState,
        topic: Topic,
        viewer: CurrentUser,
    ) -> BoxFuture<'static, Result<String, AppError>>;
}

/// How long a reader gathers events before it reads.
const GATHER: Duration = Duration::from_millis(100);
/// How often an idle reader looks whether anyone still follows its topic.
const IDLE_CHECK: Duration = Duration::from_secs(20);

/// Live page streams one person may keep open (tabs, and pages just left whose stream the
/// server has not seen close yet); more are refused.
pub const MAX_LIVE_STREAMS_PER_USER: usize = 32;

/// The readers, one per followed topic, and the open streams per person.
pub struct LiveHub {
    snapshots: Arc<dyn Snapshots>,
    topics: tokio::sync::Mutex<HashMap<Topic, watch::Sender<Arc<str>>>>,
    streams: StreamSlots,
}

impl LiveHub {
    pub fn new(snapshots: Arc<dyn Snapshots>) -> Self {
        LiveHub {
            snapshots,
            topics: Default::default(),
            streams: StreamSlots::new(MAX_LIVE_STREAMS_PER_USER),
        }
    }

    /// A slot for one more live stream of `user`, unless they have
    /// [`MAX_LIVE_STREAMS_PER_USER`] open.
    pub fn open_stream(&self, user: crate::model::UserId) -> Option<StreamSlot> {
        self.streams.open(user)
    }

    /// Topics with a reader running.
    pub async fn readers(&self) -> usize {
        self.topics.lock().await.len()
    }

    /// What `topic` shows now and from now on. Joins its reader, or starts one (which
    /// listens before it reads, so nothing falls in between).
    pub async fn follow(
        self: &Arc<Self>,
        state: &AppState,
        topic: Topic,
        viewer: &CurrentUser,
    ) -> Result<watch::Receiver<Arc<str>>, AppError> {
        let mut topics = self.topics.lock().await;
        if let Some(tx) = topics.get(&topic).filter(|tx| tx.receiver_count() > 0) {
            return Ok(tx.subscribe());
        }
        let events = state.db.broadcast_events().await;
        let first = self
            .snapshots
            .read(state.clone(), topic.clone(), viewer.clone())
            .await?;
        let (tx, rx) = watch::channel(Arc::<str>::from(first));
        topics.insert(topic.clone(), tx.clone());
        let reader = Reader {
            hub: self.clone(),
            state: state.clone(),
            topic,
            viewer: viewer.clone(),
            tx,
        };
        tokio::spawn(reader.run(events));
        Ok(rx)
    }
}

/// Reads one topic again whenever a change may have touched it, while anyone follows it.
struct Reader {
    hub: Arc<LiveHub>,
    state: AppState,
    topic: Topic,
    viewer: CurrentUser,
    tx: watch::Sender<Arc<str>>,
}

impl Reader {
    async fn run(self, mut events: broadcast::Receiver<i64>) {
        loop {
            let woke = tokio::time::timeout(IDLE_CHECK, wait_for(&mut events, &self.topic)).await;
            if self.tx.receiver_count() == 0 || woke == Ok(false) {
                break;
            }
            if woke.is_err() {
                continue;
            }
            // A burst of changes (a batch recorded, reports arriving) is read once.
            tokio::time::sleep(GATHER).await;
            while events.try_recv().is_ok() {}
            let read = self.hub.snapshots.read(
                self.state.clone(),
                self.topic.clone(),
                self.viewer.clone(),
            );
            match read.await {
                Ok(now) => {
                    self.tx.send_if_modified(|shown| {
                        let changed = **shown != *now;
                        if changed {
                            *shown = Arc::from(now);
                        }
                        changed
                    });
                }
                Err(e) => tracing::warn!(error = ?e, topic = ?self.topic, "live: reading failed"),
            }
        }
        let mut topics = self.hub.topics.lock().await;
        if topics
            .get(&self.topic)
            .is_some_and(|tx| tx.same_channel(&self.tx))
        {
            topics.remove(&self.topic);
        }
    }
}

/// Returns `true` when a change that may touch `topic` was announced (or some were missed),
/// `false` when no more will come.
async fn wait_for(events: &mut broadcast::Receiver<i64>, topic: &Topic) -> bool {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(id) if topic.wakes_on(id) => return true,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return true,
            Err(RecvError::Closed) => return false,
        }
    }
}

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
async fn results_html(state: &AppState, viewer: &CurrentUser, id: i64) -> Result<String, AppError> {
    use leptos::prelude::*;
    use leptos::tachys::view::RenderHtml;
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
    use leptos::prelude::*;
    use leptos::tachys::view::RenderHtml;
    let d = crate::server::broadcast::list::dashboard(&state.db, viewer, sort, dir).await?;
    Ok(Owner::new().with(|| view! { <crate::ui::fragments::DashboardBody d=d/> }.to_html()))
}
