//! The process-wide wasmtime engine: configuration, pooling probe, epoch ticker, linker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings;
use crate::config::{EngineConfig, Pooling};
use crate::http::HttpClient;
use crate::registry::LoadError;
use crate::state::AttemptState;

/// The process-wide engine. Cheap to clone; dropping the last clone stops its ticker thread.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) config: EngineConfig,
    pub(crate) linker: Linker<AttemptState>,
    pub(crate) http: HttpClient,
    pub(crate) pooling: bool,
    pub(crate) compiled: Mutex<HashMap<String, wasmtime::component::Component>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pooling", &self.inner.pooling)
            .field("config", &self.inner.config)
            .finish()
    }
}

fn base_config(c: &EngineConfig) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(c.consume_fuel)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    cfg
}

fn pooling_config(c: &EngineConfig) -> PoolingAllocationConfig {
    let n = c.pool_instances;
    let mut p = PoolingAllocationConfig::default();
    p.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .max_memory_size(usize::try_from(c.max_memory_bytes).unwrap_or(usize::MAX))
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_core_instances_per_component(16)
        // A slot's memory is zeroed with memset up to this size instead of being given back
        // with madvise: the next attempt in the slot takes no page faults for it (an attempt
        // touches a few hundred KiB). Still reset to zero: nothing leaks between attempts.
        .linear_memory_keep_resident(c.pool_keep_resident_bytes)
        .table_keep_resident(c.pool_keep_resident_bytes / 16)
        // where the kernel can tell which pages were touched (Linux 6.7+), only those are reset
        .pagemap_scan(wasmtime::Enabled::Auto);
    p
}

/// Whether a pooling engine works here: build one and instantiate a module with one memory.
fn probe_pooling(c: &EngineConfig) -> Result<wasmtime::Engine, String> {
    let mut cfg = base_config(c);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(c)));
    let engine = wasmtime::Engine::new(&cfg).map_err(|e| e.to_string())?;
    // (module (memory 1))
    const PROBE: &[u8] = &[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 3, 1, 0, 1];
    let module = wasmtime::Module::new(&engine, PROBE).map_err(|e| e.to_string())?;
    let mut store = wasmtime::Store::new(&engine, ());
    store.set_epoch_deadline(u64::MAX / 2);
    if c.consume_fuel {
        store.set_fuel(1_000).map_err(|e| e.to_string())?;
    }
    wasmtime::Instance::new(&mut store, &module, &[]).map_err(|e| e.to_string())?;
    Ok(engine)
}

impl Engine {
    /// Build the engine (and start its epoch ticker thread).
    pub fn new(config: EngineConfig) -> Result<Self, LoadError> {
        let (wasmtime, pooling) = match config.pooling {
            Pooling::Off => (Self::on_demand(&config)?, false),
            Pooling::On => (
                probe_pooling(&config)
                    .map_err(|e| LoadError::Engine(format!("pooling allocator: {e}")))?,
                true,
            ),
            Pooling::Auto => match probe_pooling(&config) {
                Ok(e) => (e, true),
                Err(e) => {
                    tracing::info!("pooling allocator unavailable ({e}); allocating on demand");
                    (Self::on_demand(&config)?, false)
                }
            },
        };
        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Engine(format!("linking WASI: {e}")))?;
        bindings::Task::add_to_linker::<AttemptState, HasSelf<AttemptState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("linking weft:plugin: {e}")))?;
        let http = HttpClient::new().map_err(LoadError::Engine)?;
        spawn_ticker(&wasmtime, config.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(Inner {
                wasmtime,
                config,
                linker,
                http,
                pooling,
                compiled: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn on_demand(config: &EngineConfig) -> Result<wasmtime::Engine, LoadError> {
        wasmtime::Engine::new(&base_config(config)).map_err(|e| LoadError::Engine(e.to_string()))
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }
}

/// One thread per engine increments the epoch every tick; it holds only a weak reference, so it
/// ends when the engine is dropped.
fn spawn_ticker(engine: &wasmtime::Engine, tick: Duration) -> Result<(), LoadError> {
    let weak = engine.weak();
    let tick = tick.max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("weft-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))
}
