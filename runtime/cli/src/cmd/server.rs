//! `weft server`: the HTTP API (see `weft_server::api`) on one instance. Configuration comes in
//! layers: defaults, `--config FILE` (YAML), `WEFT_*` environment variables, then these flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_server::api::{ConfigOverrides, DispatchMode, Server, ServerConfig, shutdown_signal};
use weft_server::setup::{Setup, storage_url};

/// Arguments of `weft server`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A YAML configuration file (keys: listen, storage, plugins, auth_token, basic_auth, insecure_no_auth,
    /// wait_timeout_secs, shutdown_grace_secs, max_body_bytes, lease_ttl_secs, tick_interval_secs,
    /// dispatch, dispatch_url, flush_interval_ms).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1:8080; env WEFT_LISTEN].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where state is kept: a folder or a storage URL (`s3://bucket/prefix`, `file:///path`)
    /// [default: .weft; env WEFT_STORAGE].
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// A folder of extra plugins (`*.wasm`) [env WEFT_PLUGINS].
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Every API call must send `Authorization: Bearer TOKEN` [env WEFT_AUTH_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    auth_token: Option<String>,
    /// Every API call may also send HTTP basic auth with these credentials, `USER:PASSWORD`
    /// [env WEFT_BASIC_AUTH].
    #[arg(long, value_name = "USER:PASSWORD")]
    basic_auth: Option<String>,
    /// Allow listening on a non-loopback address without authentication [env WEFT_INSECURE_NO_AUTH].
    #[arg(long)]
    insecure_no_auth: bool,
    /// Where runnable attempts run: `local` (in this process) or `http` (posted to the pool at
    /// --dispatch-url, so a fan-out spreads over instances) [default: local; env WEFT_DISPATCH].
    #[arg(long, value_name = "MODE")]
    dispatch: Option<DispatchMode>,
    /// The pool's base URL (its load balancer's) for `--dispatch http`
    /// [env WEFT_DISPATCH_URL].
    #[arg(long, value_name = "URL")]
    dispatch_url: Option<String>,
}

/// Runs `weft server` until SIGTERM or ctrl-c.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let flags = ConfigOverrides {
        listen: args.listen,
        storage: args.storage,
        plugins: args.plugins,
        auth_token: args.auth_token,
        basic_auth: args.basic_auth,
        insecure_no_auth: args.insecure_no_auth.then_some(true),
        dispatch: args.dispatch,
        dispatch_url: args.dispatch_url,
    };
    let config = ServerConfig::load(args.config.as_deref(), &flags)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let url = storage_url(&config.storage)?;
    let store = weft_store::open(&url)
        .await
        .with_context(|| format!("cannot open the store {url}"))?;
    let (setup, warnings) = Setup::load(config.plugins.as_deref()).await?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let server = Server::bind(&config, setup, store).await?;
    let addr = server
        .local_addr()
        .context("the listener has no local address")?;
    // the conformance runner and scripts read this line to learn the port
    println!("weft server listening on http://{addr}");
    tracing::info!(
        %addr,
        store = %url,
        auth = config.auth_token.is_some() || config.basic_auth.is_some(),
        startup_ms = started.elapsed().as_millis() as u64,
        "weft server ready"
    );
    server.run(shutdown_signal()).await?;
    eprintln!("weft server stopped");
    Ok(())
}
