//! Automatic offload of large task outputs to internal storage, and the execution document's size
//! budget (DESIGN.md §4).
//!
//! [`offload_outputs`] walks a task run's outputs; every value whose JSON text is larger than
//! [`OffloadConfig::threshold`] is written to
//! `kestra:///{ns}/{flowId}/executions/{executionId}/tasks/{taskId}/{taskRunId}/outputs/{path}.json`
//! and replaced in the outputs by a marker object:
//!
//! ```json
//! {"$weft.offloaded": "kestra:///company/team/flow/executions/ID/tasks/t/TR/outputs/body.json", "size": 10485762}
//! ```
//!
//! (`size`: bytes of the stored JSON text). Maps and lists are first offloaded member by member, and
//! offloaded whole only if they are still over the threshold, so small siblings stay inline. The
//! top-level outputs map itself is never replaced. [`load_offloaded`] and [`inflate`] read markers
//! back, for expressions that use the value.

use bytes::Bytes;
use serde_json::{Map, Value as Json};

use crate::repo::cas;
use crate::repo::error::{RepoError, RepoResult};
use crate::repo::files::ExecutionFiles;
use crate::repo::names;

/// The key of the marker object that stands for an offloaded value.
pub const OFFLOAD_MARKER: &str = "$weft.offloaded";

/// Default offload threshold: 64 KiB of JSON text.
pub const DEFAULT_OFFLOAD_THRESHOLD: usize = 64 * 1024;

/// Default execution document budget: 1 MiB of JSON text.
pub const DEFAULT_DOCUMENT_BUDGET: usize = 1024 * 1024;

/// Thresholds of offload and of the execution document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadConfig {
    /// Values whose JSON text is longer than this many bytes are offloaded.
    pub threshold: usize,
    /// Largest execution document, in bytes of JSON text.
    pub document_budget: usize,
}

impl Default for OffloadConfig {
    fn default() -> Self {
        OffloadConfig {
            threshold: DEFAULT_OFFLOAD_THRESHOLD,
            document_budget: DEFAULT_DOCUMENT_BUDGET,
        }
    }
}

/// One value that [`offload_outputs`] moved to internal storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffloadedValue {
    /// Where it was in the outputs, as JSON-pointer-like segments (`["body"]`, `["rows", "3"]`).
    pub path: Vec<String>,
    /// Its URI.
    pub uri: String,
    /// Bytes of its JSON text.
    pub size: u64,
}

/// Bytes of `value`'s compact JSON text (as `serde_json::to_vec` writes it), without building it.
pub fn json_size(value: &Json) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // writing into a counter cannot fail, and a `Value` always serializes
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The URI and size of a marker object, if `value` is one.
pub fn marker(value: &Json) -> Option<(&str, u64)> {
    let map = value.as_object()?;
    let uri = map.get(OFFLOAD_MARKER)?.as_str()?;
    let size = map.get("size").and_then(Json::as_u64).unwrap_or(0);
    Some((uri, size))
}

/// The marker object for `uri`.
pub fn marker_for(uri: &str, size: u64) -> Json {
    let mut map = Map::new();
    map.insert(OFFLOAD_MARKER.to_owned(), Json::String(uri.to_owned()));
    map.insert("size".to_owned(), Json::from(size));
    Json::Object(map)
}

/// The file name of a value at `path`: segments joined by `.`, characters outside `[A-Za-z0-9_-]`
/// replaced by `_`; when that changed or shortened anything, a hash of the true path keeps names of
/// different paths apart.
fn file_name(path: &[String]) -> String {
    let joined = path.join(".");
    let mut name: String = path
        .iter()
        .map(|s| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(".");
    let changed = name != joined || name.len() > 120 || name.is_empty();
    if changed {
        name.truncate(120);
        // FNV-1a over the path with separators that cannot appear in a segment's escape
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in path.join("\u{0}").bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        name = format!("{name}-{h:016x}");
    }
    // a leading `_` is harmless; a leading `.` cannot occur (segments are joined by `.` only
    // between non-empty parts, and empty names got a hash above)
    name.trim_start_matches('.').to_owned()
}

struct Offloader<'a> {
    files: &'a ExecutionFiles,
    task_id: &'a str,
    task_run_id: &'a str,
    threshold: usize,
    done: Vec<OffloadedValue>,
}

impl Offloader<'_> {
    async fn store(&mut self, path: &[String], value: &mut Json) -> RepoResult<()> {
        let name = format!("outputs/{}.json", file_name(path));
        let uri = self.files.uri_for(&format!(
            "tasks/{}/{}/{name}",
            self.task_id, self.task_run_id
        ))?;
        let bytes = cas::to_json(
            &format!("output `{}` of task `{}`", path.join("."), self.task_id),
            value,
        )?;
        let size = self.files.put(&uri, Bytes::from(bytes)).await?;
        *value = marker_for(&uri, size);
        self.done.push(OffloadedValue {
            path: path.to_vec(),
            uri,
            size,
        });
        Ok(())
    }

    /// Offloads what is too large in `value` (members first), returns its size afterwards.
    fn visit<'s>(
        &'s mut self,
        path: &'s mut Vec<String>,
        value: &'s mut Json,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = RepoResult<usize>> + Send + 's>> {
        Box::pin(async move {
            let size = json_size(value);
            if size <= self.threshold || marker(value).is_some() {
                return Ok(size);
            }
            match value {
                Json::Object(map) => {
                    for (k, v) in map.iter_mut() {
                        path.push(k.clone());
                        let r = self.visit(path, v).await;
                        path.pop();
                        r?;
                    }
                }
                Json::Array(items) => {
                    for (i, v) in items.iter_mut().enumerate() {
                        path.push(i.to_string());
                        let r = self.visit(path, v).await;
                        path.pop();
                        r?;
                    }
                }
                _ => {}
            }
            let size = json_size(value);
            if size <= self.threshold {
                return Ok(size);
            }
            self.store(path, value).await?;
            Ok(json_size(value))
        })
    }
}

/// Offloads every value of `outputs` (a task run's outputs map) whose JSON text is larger than
/// `config.threshold` to internal storage, replacing it by a marker (see the module docs). Values
/// already offloaded are left as they are. Requests: 1 PUT per offloaded value, none otherwise.
pub async fn offload_outputs(
    files: &ExecutionFiles,
    task_id: &str,
    task_run_id: &str,
    outputs: &mut Map<String, Json>,
    config: &OffloadConfig,
) -> RepoResult<Vec<OffloadedValue>> {
    names::id("task id", task_id)?;
    names::id("task run id", task_run_id)?;
    let mut offloader = Offloader {
        files,
        task_id,
        task_run_id,
        threshold: config.threshold,
        done: Vec::new(),
    };
    let mut path = Vec::new();
    for (k, v) in outputs.iter_mut() {
        path.push(k.clone());
        let r = offloader.visit(&mut path, v).await;
        path.pop();
        r?;
    }
    Ok(offloader.done)
}

/// The value a marker stands for (read from internal storage), or a copy of `value` when it is not
/// a marker. 1 GET for a marker, none otherwise.
pub async fn load_offloaded(files: &ExecutionFiles, value: &Json) -> RepoResult<Json> {
    match marker(value) {
        Some((uri, _)) => {
            let bytes = files.get(uri).await?;
            cas::from_json(&format!("offloaded value `{uri}`"), &bytes)
        }
        None => Ok(value.clone()),
    }
}

/// Replaces every marker inside `value` by the value it stands for. 1 GET per marker. Returns how
/// many were loaded.
pub async fn inflate(files: &ExecutionFiles, value: &mut Json) -> RepoResult<usize> {
    fn walk<'a>(
        files: &'a ExecutionFiles,
        value: &'a mut Json,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = RepoResult<usize>> + Send + 'a>> {
        Box::pin(async move {
            if marker(value).is_some() {
                *value = load_offloaded(files, value).await?;
                return Ok(1);
            }
            let mut n = 0;
            match value {
                Json::Object(map) => {
                    for v in map.values_mut() {
                        n += walk(files, v).await?;
                    }
                }
                Json::Array(items) => {
                    for v in items.iter_mut() {
                        n += walk(files, v).await?;
                    }
                }
                _ => {}
            }
            Ok(n)
        })
    }
    walk(files, value).await
}

/// Checks that an execution document of `document_size` bytes fits `budget`; the error names the
/// task whose outputs made it grow, the size and the budget.
pub fn check_budget(task_id: &str, document_size: usize, budget: usize) -> RepoResult<()> {
    if document_size > budget {
        return Err(RepoError::BudgetExceeded {
            task_id: task_id.to_owned(),
            size: document_size,
            budget,
        });
    }
    Ok(())
}

/// Bytes of an outputs map's compact JSON text (about: one comma too many), without building it.
pub fn outputs_size(outputs: &Map<String, Json>) -> usize {
    let mut size = 2; // `{}`
    for (k, v) in outputs {
        size += json_size(&Json::String(k.clone())) + 1 + json_size(v) + 1;
    }
    size
}

/// [`check_budget`] for a document of `document_size` bytes that is about to receive `outputs`
/// (measured as JSON text) from task `task_id`.
pub fn check_outputs_fit(
    task_id: &str,
    document_size: usize,
    outputs: &Map<String, Json>,
    config: &OffloadConfig,
) -> RepoResult<()> {
    check_budget(
        task_id,
        document_size.saturating_add(outputs_size(outputs)),
        config.document_budget,
    )
}
