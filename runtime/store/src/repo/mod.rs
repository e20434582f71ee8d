//! Repositories on top of [`ObjectStore`](crate::ObjectStore): executions, worker results, flows
//! with revisions, task logs, the execution index, trigger state, the namespace KV store, plugins and
//! the precompiled plugin cache; internal storage (`kestra:///` files of one execution) and the
//! automatic offload of large outputs.
//!
//! Key layout (DESIGN.md §4), relative to the store's prefix:
//!
//! ```text
//! executions/{executionId}.json                                  execution document (version condition)
//! executions/{executionId}/chunks/{seq}-{hash}.json              immutable chunks of it (task runs)
//! executions/{executionId}/results/{taskRunId}-{attempt}.json    immutable worker results
//! storage/{ns/as/path}/{flowId}/executions/{executionId}/...     internal storage
//! flows/{namespace}/{flowId}/{revision}.yaml + latest.json       flows with revisions
//! logs/{executionId}/{taskRunId}-{attempt}.ndjson                 task logs
//! index/executions/{namespace}/{flowId}/{startDate}-{executionId} execution index
//! triggers/{namespace}/{flowId}/{triggerId}.json                  trigger state
//! triggers/{namespace}/{flowId}/{triggerId}/toggle.json           trigger disabled at run time
//! kv/{namespace}/{key}.json                                       namespace KV store
//! plugins/{name}/{version}.wasm, cache/{engineHash}/{sha256}.cwasm plugins, precompiled code
//! ```
//!
//! Spreading: S3 scales request rates per key prefix (3,500 PUT/s each) and splits hot prefixes
//! by the characters that follow. The hot keys are per execution (`executions/{id}...`,
//! `logs/{id}/...`) and execution ids are random base62, so load spreads over many partitions by
//! itself; the per-namespace keys (flows, index, triggers, kv) are written at the rate of
//! executions starting, far below one prefix's limit.
//!
//! Every method documents how many storage requests it makes. Names that become key segments are
//! checked first (Kestra's id pattern), so nothing a caller passes can escape its key.

mod cas;
mod codec;
mod error;
mod executions;
mod files;
mod flows;
mod index;
mod kv;
mod logs;
mod names;
mod offload;
mod plugins;
mod toggles;
mod triggers;
mod work_cache;

#[cfg(test)]
mod tests;

pub use cas::{RetryPolicy, Updated, Versioned};
pub use codec::{DocumentCodec, Encoded, JsonCodec};
pub use error::{RepoError, RepoResult, UpdateError};
pub use executions::{
    ExecutionRepo, ResultId, ResultRepo, ResultWrite, execution_key, execution_part_key,
};
pub use files::{ExecutionFiles, FileEntry, FilesExprHost, URI_SCHEME};
pub use flows::{FlowRepo, FlowRevision, FlowSummary, flow_identity};
pub use index::{ExecutionIndex, IndexEntry, IndexKey, IndexQuery};
pub use kv::{KvEntry, KvRepo, KvType};
pub use logs::{LogObject, LogRepo};
pub use offload::{
    DEFAULT_DOCUMENT_BUDGET, DEFAULT_OFFLOAD_THRESHOLD, OFFLOAD_MARKER, OffloadConfig,
    OffloadedValue, check_budget, check_outputs_fit, inflate, json_size, load_offloaded, marker,
    marker_for, offload_outputs, outputs_size,
};
pub use plugins::{PluginObject, PluginRepo};
pub use toggles::{ToggleRepo, TriggerToggle};
pub use triggers::TriggerRepo;
pub use work_cache::working_directory_cache_key;
