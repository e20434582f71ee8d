//! The HTTP API of `weft server` (axum on hyper), shaped like Kestra's under `/api/v1` and
//! `/api/v1/{tenant}` (see [`tenant`]): flows, executions, logs, files, webhooks; `/health`,
//! `/ready` and `/metrics` beside it.
//!
//! Nothing a request needs later is kept in memory: flows and executions are read from storage
//! on every request, and executions started here are driven by tokio tasks of this process
//! ([`drive`]) that write every step to storage with conditional writes, so any instance can
//! answer about them.

mod auth;
mod config;
mod drive;
mod error;
mod executions;
mod flows;
mod health;
mod inputs;
mod metrics;
mod schedules;
mod secrets;
mod store_flows;
mod tenant;
mod tick;
mod triggers;
mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::routing::{get, post};
use tower::Layer;
use weft_store::DynStore;

pub use config::{ConfigError, ConfigOverrides, ServerConfig};

use crate::lease::Leases;
use crate::setup::Setup;
use drive::Drivers;
use metrics::Metrics;

/// What every request handler shares.
pub(crate) struct App {
    pub(crate) setup: Setup,
    /// The store, as configured (tenants get views of it).
    pub(crate) store: DynStore,
    pub(crate) auth_token: Option<String>,
    /// `user:password` for HTTP basic auth.
    pub(crate) basic_auth: Option<String>,
    pub(crate) metrics: Metrics,
    pub(crate) drivers: Drivers,
    /// Parsed flows and flows with Flow triggers, shared by the drivers.
    pub(crate) flows: Arc<store_flows::FlowCache>,
    /// The leases of the executions this process drives.
    pub(crate) leases: Leases,
    pub(crate) wait_timeout: Duration,
    /// The largest request body (`max_body_bytes`), for handlers that read the body themselves.
    pub(crate) max_body: usize,
    /// False once shutdown began (`/ready` answers 503).
    pub(crate) accepting: AtomicBool,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The routes, relative to a tenant (see [`tenant::rewrite`]).
fn routes(app: Arc<App>, max_body: usize) -> Router {
    let api = Router::new()
        .route("/api/v1/flows", post(flows::create))
        .route("/api/v1/flows/validate", post(flows::validate))
        .route("/api/v1/flows/{namespace}", get(flows::list))
        .route(
            "/api/v1/flows/{namespace}/{id}",
            get(flows::get).put(flows::update).delete(flows::delete),
        )
        .route(
            "/api/v1/flows/{namespace}/{id}/revisions",
            get(flows::revisions),
        )
        .route("/api/v1/executions/search", get(executions::search))
        .route(
            "/api/v1/executions/{id}",
            get(executions::get).delete(executions::delete),
        )
        // `{id}` here is the namespace: one name per position keeps the router unambiguous
        .route("/api/v1/executions/{id}/{flow_id}", post(executions::start))
        .route("/api/v1/executions/{id}/logs", get(executions::logs))
        .route("/api/v1/logs/{id}", get(executions::logs))
        .route("/api/v1/executions/{id}/file", get(executions::file))
        .route(
            "/api/v1/executions/{id}/kill",
            axum::routing::delete(executions::kill).post(executions::kill),
        )
        .route("/api/v1/executions/{id}/resume", post(executions::resume))
        .route("/api/v1/executions/{id}/restart", post(executions::restart))
        .route("/api/v1/executions/{id}/replay", post(executions::replay))
        .route("/api/v1/triggers", axum::routing::put(triggers::update))
        .route(
            "/api/v1/triggers/set-disabled/by-triggers",
            post(triggers::set_disabled_by_triggers),
        )
        .route(
            "/api/v1/triggers/{namespace}/{flow_id}",
            get(triggers::for_flow),
        )
        .route("/api/v1/tick", post(tick::handle))
        .route("/metrics", get(health::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ));
    let public = Router::new()
        .route(
            "/api/v1/executions/webhook/{namespace}/{flow_id}/{key}",
            get(webhooks::call).post(webhooks::call).put(webhooks::call),
        )
        .route("/health", get(health::health))
        .route("/ready", get(health::ready));
    api.merge(public)
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    max_body: usize,
    grace: Duration,
    tick_every: Option<Duration>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `config.listen` over `store` (opened from `config.storage` by the caller).
    pub async fn bind(
        config: &ServerConfig,
        setup: Setup,
        store: DynStore,
    ) -> Result<Server, ServeError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        let app = Arc::new(App {
            setup,
            store: store.clone(),
            auth_token: config.auth_token.clone(),
            basic_auth: config.basic_auth.clone(),
            metrics: Metrics::default(),
            drivers: Drivers::default(),
            flows: Arc::default(),
            leases: Leases::new(store.clone(), Duration::from_secs(config.lease_ttl_secs)),
            wait_timeout: Duration::from_secs(config.wait_timeout_secs),
            max_body: config.max_body_bytes,
            accepting: AtomicBool::new(true),
        });
        Ok(Server {
            listener,
            app,
            max_body: config.max_body_bytes,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            tick_every: (config.tick_interval_secs > 0)
                .then(|| Duration::from_secs(config.tick_interval_secs)),
        })
    }

    /// The address it listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes, then stops taking requests, lets the requests in
    /// flight finish, and waits for the executions this process drives (up to the grace
    /// period; what is left stays in storage).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = self.app.clone();
        let ticker = self
            .tick_every
            .map(|every| tokio::spawn(tick::every(app.clone(), every)));
        let router = routes(self.app.clone(), self.max_body);
        let service = tower::util::MapRequestLayer::new(tenant::rewrite).layer(router);
        let make = axum::ServiceExt::<Request>::into_make_service(service);
        let on_shutdown = {
            let app = app.clone();
            async move {
                shutdown.await;
                app.accepting
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                tracing::info!("shutting down: no new requests");
            }
        };
        axum::serve(self.listener, make)
            .with_graceful_shutdown(on_shutdown)
            .await
            .map_err(ServeError::Serve)?;
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        let left = app.drivers.wait_idle(self.grace).await;
        if left > 0 {
            tracing::warn!(
                executions = left,
                "executions still running at the end of the grace period; their state is in storage"
            );
        }
        Ok(())
    }
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
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
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
