//! What the runner's integration tests share: the core plugins, a local store in a temporary
//! folder, and a runner of given flows.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use weft_server::runner::{Catalog, Runner};
use weft_server::setup::Setup;
use weft_store::DynStore;

/// The core plugins and a local store in a temporary folder (kept while the folder lives).
pub(crate) async fn local_setup() -> (Setup, tempfile::TempDir, DynStore) {
    let (setup, _) = Setup::load(None).await.expect("plugins");
    let dir = tempfile::tempdir().unwrap();
    let store = weft_store::open(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    (setup, dir, store)
}

/// The flows of `yamls`, parsed and validated (a flow that does not validate panics with why).
pub(crate) fn catalog(setup: &Setup, yamls: &[&str]) -> Catalog {
    let mut catalog = Catalog::default();
    for yaml in yamls {
        let flow = weft_flow::parse_flow(yaml, &setup.registry)
            .map(|p| p.flow)
            .unwrap_or_else(|d| panic!("{d:?}"));
        catalog
            .add(&flow, &setup.registry, setup.renderer.clone())
            .unwrap();
    }
    catalog
}

/// A runner of the flows of `yamls` over `store`.
pub(crate) fn runner(setup: &Setup, store: DynStore, yamls: &[&str]) -> Runner {
    Runner::new(
        setup.engine.clone(),
        store,
        setup.renderer.clone(),
        catalog(setup, yamls),
    )
}
