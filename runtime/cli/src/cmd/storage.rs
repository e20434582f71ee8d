//! `weft storage check [URL]`: does a store honour conditional writes?

use std::process::ExitCode;

use anyhow::Context as _;

/// Arguments of `weft storage`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StorageCommand {
    /// Check that a store honours conditional writes (create-if-absent twice, a stale If-Match)
    /// before trusting it with weft's state.
    Check {
        /// `s3://bucket/prefix`, `file:///path`, a path, or `memory://`. S3 endpoint, region and
        /// credentials come from the AWS environment (AWS_ENDPOINT_URL, AWS_REGION, ...).
        #[arg(env = "WEFT_STORAGE")]
        url: String,
    },
}

/// Runs `weft storage ...`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        StorageCommand::Check { url } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(check(&url))
        }
    }
}

async fn check(url: &str) -> anyhow::Result<ExitCode> {
    let store = open_unprobed(url).await?;
    let report = weft_store::check_conditional_writes(store.as_ref())
        .await
        .with_context(|| format!("checking {}", store.url()))?;
    println!("storage: {}", report.store);
    for step in &report.steps {
        let mark = match (step.ok, step.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "warn",
        };
        println!("  {mark} {}: {}", step.name, step.detail);
    }
    if report.passed() {
        println!("conditional writes are honoured: weft can keep its state here");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("conditional writes are NOT honoured: weft would lose updates here");
        Ok(ExitCode::from(2))
    }
}

/// Opens the store without the S3 start-up probe, so that the check reports every step itself.
async fn open_unprobed(url: &str) -> anyhow::Result<weft_store::DynStore> {
    match weft_store::StoreUrl::parse(url)? {
        weft_store::StoreUrl::S3 { bucket, prefix } => {
            let mut options = weft_store::S3Options::new(bucket, &prefix);
            options.probe = false;
            let store = weft_store::S3Store::connect(options).await?;
            store.check_bucket().await?;
            Ok(std::sync::Arc::new(store))
        }
        _ => Ok(weft_store::open(url).await?),
    }
}
