//! The object-store contract: the same tests against the memory store, the local store and a real
//! S3 server (moto started here, or `WEFT_TEST_S3_ENDPOINT`). A libtest-mimic harness, so each test is
//! listed once per backend (`memory::conditional_update`, `s3::conditional_update`, ...), and so this
//! binary can re-run itself as the second process of the local store's two-process test.
// `harness = false` targets are not compiled with cfg(test), where clippy.toml allows these
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};
use weft_store::testing::TestS3;
use weft_store::{DynStore, LocalStore, MemoryStore, S3Store};

/// Set in the environment of a child process: the local store directory it works on.
pub(crate) const CHILD_ENV: &str = "WEFT_STORE_CONTRACT_CHILD";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Memory,
    Local,
    S3,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Local => "local",
            Backend::S3 => "s3",
        }
    }
}

/// What a contract test gets: a fresh, empty store.
#[derive(Clone)]
pub(crate) struct Env {
    pub(crate) store: DynStore,
    pub(crate) backend: Backend,
    /// The local store's directory.
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Default)]
struct Shared {
    s3: OnceLock<Result<TestS3, String>>,
}

impl Shared {
    fn s3(&self) -> anyhow::Result<&TestS3> {
        self.s3
            .get_or_init(|| TestS3::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// A temporary directory on tmpfs when there is one: the same code paths (fsync included), without
/// waiting on the disk for thousands of small synced writes.
pub(crate) fn temp_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = PathBuf::from("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("weft-store-test-");
    Ok(if shm.is_dir() {
        builder.tempdir_in(shm)?
    } else {
        builder.tempdir()?
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?)
}

fn run_trial(
    shared: &Shared,
    backend: Backend,
    name: &str,
    test: tests::TestFn,
) -> Result<(), Failed> {
    let rt = runtime()?;
    let result: anyhow::Result<()> = rt.block_on(async {
        match backend {
            Backend::Memory => {
                let store: DynStore = Arc::new(MemoryStore::new());
                test(Env {
                    store,
                    backend,
                    dir: None,
                })
                .await
            }
            Backend::Local => {
                let dir = temp_dir()?;
                let store: DynStore = Arc::new(LocalStore::open(dir.path())?);
                test(Env {
                    store,
                    backend,
                    dir: Some(dir.path().to_owned()),
                })
                .await
            }
            Backend::S3 => {
                let s3 = shared.s3()?;
                let store: Arc<S3Store> = Arc::new(s3.bucket(name).await?);
                let outcome = test(Env {
                    store: store.clone(),
                    backend,
                    dir: None,
                })
                .await;
                if !s3.is_moto() {
                    s3.remove_bucket(&store).await?;
                }
                outcome
            }
        }
    });
    result.map_err(|e| Failed::from(format!("{e:#}")))
}

fn main() -> ExitCode {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return tests::child_main(PathBuf::from(dir));
    }
    let args = Arguments::from_args();
    let shared = Arc::new(Shared::default());
    let mut trials = Vec::new();
    for backend in [Backend::Memory, Backend::Local, Backend::S3] {
        for &(name, test) in tests::CONTRACT {
            let shared = Arc::clone(&shared);
            trials.push(Trial::test(
                format!("{}::{name}", backend.name()),
                move || run_trial(&shared, backend, name, test),
            ));
        }
    }
    trials.push(Trial::test("local::two_processes_16x200", || {
        tests::two_processes().map_err(|e| Failed::from(format!("{e:#}")))
    }));
    let conclusion = libtest_mimic::run(&args, trials);
    // stops moto
    drop(shared);
    conclusion.exit_code()
}
