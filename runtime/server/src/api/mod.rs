//! The HTTP API of `weft server` (axum on hyper), shaped like Kestra's under `/api/v1` and
//! `/api/v1/{tenant}` (see [`tenant`]): flows, executions, logs, files, webhooks; `/health`,
//! `/ready` and `/metrics` beside it; its OpenAPI document at `/api/v1/openapi.yaml` and `.json`
//! ([`openapi`]).
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
mod openapi;
mod schedules;
mod store_flows;
mod tenant;
mod tick;
mod triggers;
mod webhooks;
mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use tower::Layer;
use weft_store::DynStore;

pub use config::{ConfigError, ConfigOverrides, DispatchMode, ServerConfig};

use crate::lease::Leases;
use crate::runner::dispatch::{Credentials, Dispatch, HttpDispatch};
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
    /// The schedule entries as this process last read or wrote them (for the ticks).
    pub(crate) schedule_entries: schedules::Entries,
    pub(crate) wait_timeout: Duration,
    /// How long an execution's steps may stay in memory (`flush_interval_ms`).
    pub(crate) flush_interval: Duration,
    /// The largest request body (`max_body_bytes`), for handlers that read the body themselves.
    pub(crate) max_body: usize,
    /// False once shutdown began (`/ready` answers 503).
    pub(crate) accepting: AtomicBool,
    /// Where the drivers of this process run attempts (for the tenant `main`; see
    /// [`HttpDispatch::for_tenant`]).
    pub(crate) dispatch: Dispatch,
}

impl App {
    /// Where the drivers of `tenant` run attempts.
    pub(crate) fn dispatch_for(&self, tenant: &str) -> Dispatch {
        match &self.dispatch {
            Dispatch::Local => Dispatch::Local,
            Dispatch::Http(http) => Dispatch::Http(http.for_tenant(tenant)),
        }
    }
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
    /// The HTTP client that dispatches attempts to the pool could not be built.
    #[error("cannot build the HTTP client of dispatch: {0}")]
    DispatchClient(reqwest::Error),
}

/// An HTTP method a route answers (the ones weft serves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// The name of the method as an OpenAPI path item keys it (`get`, `post`, ...).
    #[cfg(test)]
    pub(crate) fn openapi_name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }
}

/// A router that records (in tests) every `(method, path)` it serves, so that the OpenAPI
/// document ([`openapi`]) can be checked against the routes.
pub(crate) struct Routes {
    router: Router<Arc<App>>,
    #[cfg(test)]
    served: Vec<(Verb, &'static str)>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            #[cfg(test)]
            served: Vec::new(),
        }
    }

    /// Serves `verb path` with `handler`.
    fn add<H, T>(mut self, verb: Verb, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, Arc<App>>,
        T: 'static,
    {
        self.router = self.router.route(path, on(verb.filter(), handler));
        #[cfg(test)]
        self.served.push((verb, path));
        self
    }

    /// The `(method, path)` pairs served, in the order they were added.
    #[cfg(test)]
    pub(crate) fn served(&self) -> &[(Verb, &'static str)] {
        &self.served
    }
}

/// The routes behind authentication (when configured), relative to a tenant.
pub(crate) fn protected_routes() -> Routes {
    use Verb::{Delete, Get, Post, Put};
    Routes::new()
        .add(Post, "/api/v1/flows", flows::create)
        .add(Post, "/api/v1/flows/validate", flows::validate)
        .add(Get, "/api/v1/flows/{namespace}", flows::list)
        .add(Get, "/api/v1/flows/{namespace}/{id}", flows::get)
        .add(Put, "/api/v1/flows/{namespace}/{id}", flows::update)
        .add(Delete, "/api/v1/flows/{namespace}/{id}", flows::delete)
        .add(
            Get,
            "/api/v1/flows/{namespace}/{id}/revisions",
            flows::revisions,
        )
        .add(Get, "/api/v1/executions/search", executions::search)
        .add(Get, "/api/v1/executions/{id}", executions::get)
        .add(Delete, "/api/v1/executions/{id}", executions::delete)
        // `{id}` here is the namespace: one name per position keeps the router unambiguous
        .add(Post, "/api/v1/executions/{id}/{flow_id}", executions::start)
        .add(Get, "/api/v1/executions/{id}/logs", executions::logs)
        .add(Get, "/api/v1/logs/{id}", executions::logs)
        .add(Get, "/api/v1/executions/{id}/file", executions::file)
        .add(Delete, "/api/v1/executions/{id}/kill", executions::kill)
        .add(Post, "/api/v1/executions/{id}/kill", executions::kill)
        .add(Post, "/api/v1/executions/{id}/resume", executions::resume)
        .add(Post, "/api/v1/executions/{id}/restart", executions::restart)
        .add(Post, "/api/v1/executions/{id}/replay", executions::replay)
        .add(Put, "/api/v1/triggers", triggers::update)
        .add(
            Post,
            "/api/v1/triggers/set-disabled/by-triggers",
            triggers::set_disabled_by_triggers,
        )
        .add(
            Post,
            "/api/v1/triggers/set-disabled/by-query",
            triggers::set_disabled_by_query,
        )
        .add(Get, "/api/v1/triggers/search", triggers::search)
        .add(
            Post,
            "/api/v1/triggers/backfill/pause",
            triggers::pause_backfill,
        )
        .add(
            Post,
            "/api/v1/triggers/backfill/unpause",
            triggers::unpause_backfill,
        )
        .add(
            Post,
            "/api/v1/triggers/backfill/delete",
            triggers::delete_backfill,
        )
        .add(
            Get,
            "/api/v1/triggers/{namespace}/{flow_id}",
            triggers::for_flow,
        )
        .add(Post, "/api/v1/tick", tick::handle)
        .add(Post, "/api/v1/worker/attempts", worker::attempt)
        .add(Get, "/metrics", health::metrics)
}

/// The routes without authentication: webhooks (their key is their authentication), health,
/// readiness and the OpenAPI document.
pub(crate) fn public_routes() -> Routes {
    use Verb::{Get, Post, Put};
    const WEBHOOK: &str = "/api/v1/executions/webhook/{namespace}/{flow_id}/{key}";
    Routes::new()
        .add(Get, WEBHOOK, webhooks::call)
        .add(Post, WEBHOOK, webhooks::call)
        .add(Put, WEBHOOK, webhooks::call)
        .add(Get, "/health", health::health)
        .add(Get, "/ready", health::ready)
        .add(Get, "/api/v1/openapi.yaml", openapi::yaml)
        .add(Get, "/api/v1/openapi.json", openapi::json)
}

/// The routes, relative to a tenant (see [`tenant::rewrite`]).
fn routes(app: Arc<App>, max_body: usize) -> Router {
    let api = protected_routes()
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_token,
        ));
    api.merge(public_routes().router)
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
        let metrics = Metrics::default();
        let dispatch = match (config.dispatch, &config.dispatch_url) {
            (DispatchMode::Http, Some(url)) => {
                // this server's own credentials: a pool shares them
                let credentials = match (&config.auth_token, &config.basic_auth) {
                    (Some(token), _) => Some(Credentials::Bearer(token.clone())),
                    (None, Some(pair)) => Some(Credentials::Basic(pair.clone())),
                    (None, None) => None,
                };
                let http = HttpDispatch::new(url, credentials, metrics.dispatch.clone())
                    .map_err(ServeError::DispatchClient)?;
                tracing::info!(pool = %http.endpoint(), "attempts are dispatched over HTTP");
                Dispatch::Http(http)
            }
            // `validate` refuses http without a URL
            _ => Dispatch::Local,
        };
        let app = Arc::new(App {
            setup,
            store: store.clone(),
            auth_token: config.auth_token.clone(),
            basic_auth: config.basic_auth.clone(),
            metrics,
            drivers: Drivers::default(),
            flows: Arc::default(),
            leases: Leases::new(store.clone(), Duration::from_secs(config.lease_ttl_secs)),
            schedule_entries: schedules::Entries::default(),
            wait_timeout: Duration::from_secs(config.wait_timeout_secs),
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            max_body: config.max_body_bytes,
            accepting: AtomicBool::new(true),
            dispatch,
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
            // the rest are handed back: their steps held in memory are written and their leases
            // expire now, for a tick on another instance to carry them on
            app.drivers.stop_all();
            let still = app.drivers.wait_idle(HAND_BACK_WAIT).await;
            tracing::warn!(
                executions = left,
                not_handed_back = still,
                "executions still running at the end of the grace period were handed back to the pool"
            );
        }
        Ok(())
    }
}

/// How long the drivers still running after the grace period have to write what they hold and
/// hand their leases back.
const HAND_BACK_WAIT: Duration = Duration::from_secs(5);

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
