//! Starting Herald: configuration, database, demo data, HTTP server.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use leptos_axum::{LeptosRoutes, generate_route_list};

use super::auth::user_for_headers;
use super::clock::{Clock, SystemClock};
use super::db::Db;
use super::{AppState, config, seed};
use crate::app::{App, shell};
use crate::model::list_query::encode_component;

/// Runs Herald until Ctrl-C or SIGTERM. Every failure to start comes back as a message that
/// says what to do, never a panic.
pub async fn run() -> anyhow::Result<()> {
    let path = config::config_path();
    let (leptos_options, config) = config::load(&path)?;
    let db = Db::connect(&config.database_url).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if config.demo_data && seed::is_empty(&db).await? {
        seed::load(&db, clock.now())
            .await
            .context("loading the demo data failed")?;
        println!(
            "Loaded demo data: {} customers, {} broadcasts.",
            db.count_customers().await?,
            db.count_broadcasts().await?
        );
    }
    let addr = leptos_options.site_addr;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let links = super::unsubscribe::Links::load(&db, &public_url).await?;
    let state = super::startup::state(
        leptos_options,
        config,
        super::startup::Parts {
            db: db.clone(),
            clock,
            links,
        },
    );
    if state.config.dispatcher {
        state.dispatcher.clone().spawn();
    }
    let app = router(state.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is another Herald running? (LEPTOS_SITE_ADDR picks another address)")
    })?;
    println!("Herald is running at http://{addr}");
    if state.config.demo_data {
        println!("Demo sign-ins (password \"{}\"):", seed::DEMO_PASSWORD);
        for (email, _, role) in seed::DEMO_USERS {
            println!("  {email:<22} {role}");
        }
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server stopped with an error")?;
    db.close().await;
    Ok(())
}

/// `herald generate-customers N`: adds N generated customers to the configured database.
pub async fn generate_customers(count: usize) -> anyhow::Result<()> {
    let (_, config) = config::load(&config::config_path())?;
    let db = Db::connect(&config.database_url).await?;
    let started = std::time::Instant::now();
    println!(
        "Adding {count} customers to {} …",
        super::db::redact_url(&config.database_url)
    );
    super::customers::generate(&db, count, SystemClock.now(), |done| {
        println!(
            "  {done:>9} ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    })
    .await?;
    println!(
        "Done in {:.1} s; {} customers in all.",
        started.elapsed().as_secs_f64(),
        db.count_customers().await?
    );
    db.close().await;
    Ok(())
}

/// `herald import-customers FILE [--skip-bad]`: the page's import, from the command line,
/// with the columns guessed from the header.
pub async fn import_customers(path: &std::path::Path, skip_bad: bool) -> anyhow::Result<()> {
    use super::import::{self, Failure, Progress};
    let (_, config) = config::load(&config::config_path())?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let headers = import::read_header(std::io::BufReader::new(file)).map_err(anyhow::Error::msg)?;
    let mapping = crate::model::import::Mapping::from_header(
        &headers.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .map_err(anyhow::Error::msg)?;
    let db = Db::connect(&config.database_url).await?;
    let started = std::time::Instant::now();
    let progress = Arc::new(Progress::default());
    let result = import::run(&db, path, mapping, skip_bad, progress, SystemClock.now()).await;
    db.close().await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(o) => {
            println!(
                "Imported in {seconds:.1} s: {} created, {} updated, {} lines skipped.",
                o.created, o.updated, o.skipped
            );
            for e in o.errors.iter().take(20) {
                println!("  line {}: {}", e.line, e.message);
            }
            Ok(())
        }
        Err(Failure::Lines { count, errors }) => {
            for e in errors.iter().take(20) {
                eprintln!("  line {}: {}", e.line, e.message);
            }
            anyhow::bail!(
                "{count} lines cannot be imported; nothing was imported (--skip-bad imports the rest)"
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The app's routes, listed once per process. Listing runs the app with resource loading
/// suppressed through a process-wide flag (leptos_server's `SuppressResourceLoad`), so a page
/// that another router was rendering at that moment would wait forever for its data
/// (leptos-rs/leptos#4773). One listing, before any router exists, rules that out; it is what
/// made the HTTP tests, which build a router each, hang now and then.
fn routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP application for `state`.
pub fn router(state: AppState) -> Router {
    let routes = routes();
    let options = state.leptos_options.clone();
    Router::new()
        .route(
            "/customers/export.csv",
            axum::routing::get(super::export::customers_csv),
        )
        .route(
            "/customers/tags",
            axum::routing::post(super::bulk_tags::handle),
        )
        .route(
            "/customers/{id}/save",
            axum::routing::post(super::customer_edit::save),
        )
        .route("/labels", axum::routing::post(super::labels::handle))
        .route(
            "/channels",
            axum::routing::post(super::channels_web::handle),
        )
        .route(
            "/customers/import",
            axum::routing::post(super::import_web::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/broadcasts/wizard",
            // Step 1 may carry an attachment (20 MB at most; each type has its own limit).
            axum::routing::post(super::wizard::save)
                .layer(axum::extract::DefaultBodyLimit::max(21 * 1024 * 1024)),
        )
        .route(
            "/broadcasts/{id}/copy",
            axum::routing::post(super::wizard::copy),
        )
        .route(
            "/attachments",
            axum::routing::post(super::attachments::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/attachments/{id}",
            axum::routing::get(super::attachments::serve),
        )
        .route(
            "/webhooks/whatsapp/{channel_id}",
            axum::routing::get(super::inbound::whatsapp_verify)
                .post(super::inbound::whatsapp)
                .layer(axum::extract::DefaultBodyLimit::max(
                    super::inbound::MAX_BODY,
                )),
        )
        .route(
            "/webhooks/sms/{channel_id}",
            axum::routing::post(super::inbound::sms).layer(axum::extract::DefaultBodyLimit::max(
                super::inbound::MAX_BODY,
            )),
        )
        .route(
            "/webhooks/telegram/{channel_id}",
            axum::routing::post(super::inbound::telegram).layer(
                axum::extract::DefaultBodyLimit::max(super::inbound::MAX_BODY),
            ),
        )
        .route(
            "/webhooks/sandbox/{channel_id}",
            axum::routing::post(super::inbound::sandbox).layer(
                axum::extract::DefaultBodyLimit::max(super::inbound::MAX_BODY),
            ),
        )
        .route(
            "/customers/{id}/events",
            axum::routing::get(super::chat::events),
        )
        .route(
            "/broadcasts/{id}/recipients.csv",
            axum::routing::get(super::export::recipients_csv),
        )
        .route(
            "/unsubscribe/{token}",
            axum::routing::get(super::unsubscribe::confirm).post(super::unsubscribe::apply),
        )
        .route(
            "/customers/import/{id}",
            axum::routing::post(super::import_web::choose),
        )
        .leptos_routes_with_context(&state, routes, || {}, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_sign_in,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Page requests without a valid session go to the sign-in page (which then comes back).
/// Server functions check roles themselves; static files are public.
async fn require_sign_in(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = req.method() == Method::GET
        && !path.starts_with("/pkg/")
        && !path.starts_with("/api/")
        // Providers call webhooks (Meta's verification handshake is a GET).
        && !path.starts_with("/webhooks/")
        // Customers follow unsubscribe links from their mail; the link itself is the permission.
        && !path.starts_with("/unsubscribe/")
        && !path.contains('.');
    if !is_page {
        return next.run(req).await;
    }
    let user = match user_for_headers(&state, req.headers()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = ?e, "session lookup failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Herald cannot reach its database right now. Please try again in a moment.",
            )
                .into_response();
        }
    };
    match (path, user) {
        ("/login", Some(_)) => Redirect::to("/").into_response(),
        ("/login", None) | (_, Some(_)) => next.run(req).await,
        (_, None) => {
            let wanted = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = if wanted == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", encode_component(wanted))
            };
            Redirect::to(&to).into_response()
        }
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    res
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
