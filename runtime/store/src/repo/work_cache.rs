//! Where a WorkingDirectory task keeps its `cache`: one tar archive per namespace, flow and task.

use crate::key::Key;
use crate::repo::error::RepoResult;
use crate::repo::names;

/// The key of the cache archive of WorkingDirectory task `task_id` of flow `namespace.flow_id`:
/// `wd-cache/{namespace}/{flowId}/{taskId}.tar`.
pub fn working_directory_cache_key(
    namespace: &str,
    flow_id: &str,
    task_id: &str,
) -> RepoResult<Key> {
    names::namespace(namespace)?;
    names::id("flow id", flow_id)?;
    names::id("task id", task_id)?;
    names::key(
        &format!("cache of WorkingDirectory `{task_id}` of flow `{namespace}.{flow_id}`"),
        format!("wd-cache/{namespace}/{flow_id}/{task_id}.tar"),
    )
}
