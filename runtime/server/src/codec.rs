//! The stored form of executions: a small head and immutable chunks of task runs (the executor's
//! [`weft_executor::chunks`]), plugged into the store's generic [`ExecutionRepo`].

use std::sync::Arc;

use bytes::Bytes;
use weft_executor::{ChunkPolicy, Execution};
use weft_store::DynStore;
use weft_store::repo::{DocumentCodec, Encoded, ExecutionRepo};

/// Stores an [`Execution`] as a head (`executions/{id}.json`) and chunks
/// (`executions/{id}/chunks/{seq}-{hash}.json`) by its [`ChunkPolicy`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecutionCodec {
    /// When task runs leave the head.
    pub policy: ChunkPolicy,
}

impl DocumentCodec<Execution> for ExecutionCodec {
    fn encode(&self, doc: &mut Execution) -> Result<Encoded, String> {
        let stored = doc.encode_stored(&self.policy).map_err(|e| e.to_string())?;
        Ok(Encoded {
            head: stored.head,
            parts: stored.chunks,
        })
    }

    fn decode(&self, head: &[u8]) -> Result<(Execution, Vec<String>), String> {
        Execution::decode_head(head).map_err(|e| e.to_string())
    }

    fn attach(&self, doc: &mut Execution, parts: Vec<(String, Bytes)>) -> Result<(), String> {
        doc.attach_chunks(parts).map_err(|e| e.to_string())
    }
}

/// The execution repository every part of weft uses: [`ExecutionCodec`] with the default policy.
pub fn executions(store: DynStore) -> ExecutionRepo<Execution> {
    ExecutionRepo::with_codec(store, Arc::new(ExecutionCodec::default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use bytes::Bytes;
    use chrono::{DateTime, TimeDelta, Utc};
    use serde_json::{Map, json};
    use weft_executor::{Effect, Event, Executor, RunTask, State, WorkerResult};
    use weft_flow::Registry;
    use weft_flow::expr::Renderer;
    use weft_store::repo::{Versioned, execution_key};
    use weft_store::{Condition, DynStore, MemoryStore};

    use super::executions;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-06-01T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// A ForEach over `n` values run step by step through the repository, one write per result.
    async fn run_stored(store: &DynStore, n: usize) -> Versioned<weft_executor::Execution> {
        let values: Vec<String> = (0..n).map(|i| format!("\"v{i}\"")).collect();
        let src = format!(
            "id: f\nnamespace: t\ntasks:\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [{}]\n    tasks:\n      - {{id: r, type: io.kestra.plugin.core.debug.Return, format: x}}\n",
            values.join(", ")
        );
        let flow = weft_flow::parse_flow(&src, &Registry::core()).unwrap().flow;
        let ex = Executor::new(&flow, &Registry::core(), Arc::new(Renderer::new())).unwrap();
        let repo = executions(store.clone());
        let mut exec = ex.create_execution(1, t0());
        let id = exec.id.clone();
        let version = repo.create(&id, &mut exec).await.unwrap();
        let mut current = Versioned {
            value: exec,
            version,
        };
        let mut events = vec![Event::Start { running: 0 }];
        let mut now = t0();
        loop {
            let up = repo
                .update_from(&id, current, |e| {
                    Ok::<_, String>(ex.advance(e, events.clone(), now))
                })
                .await
                .unwrap();
            // at most 32 terminated runs (~800 bytes each here) and the running one
            assert!(up.size < 40_000, "head of {} bytes", up.size);
            current = Versioned {
                value: up.value,
                version: up.version,
            };
            let tasks: Vec<RunTask> = up
                .result
                .into_iter()
                .filter_map(|e| match e {
                    Effect::RunTask(t) => Some(*t),
                    _ => None,
                })
                .collect();
            if tasks.is_empty() {
                return current;
            }
            now += TimeDelta::milliseconds(5);
            events = tasks
                .iter()
                .map(|t| {
                    let mut outputs = Map::new();
                    outputs.insert("value".into(), json!(t.task_run_id));
                    Event::WorkerResult(WorkerResult {
                        task_run_id: t.task_run_id.clone(),
                        attempt: t.attempt,
                        state: State::Success,
                        outputs,
                        metrics: Vec::new(),
                        log_file: None,
                        working_directory_outputs: Default::default(),
                    })
                })
                .collect();
        }
    }

    #[tokio::test]
    async fn a_long_execution_is_a_small_head_and_chunks() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let done = run_stored(&store, 600).await;
        assert_eq!(done.value.state.current, State::Success);
        assert_eq!(done.value.task_run_list.len(), 601);
        let id = done.value.id.clone();
        let got = executions(store.clone()).get(&id).await.unwrap();
        assert_eq!(got.value, done.value);
        assert_eq!(got.version, done.version);
        let head = store.get(&execution_key(&id).unwrap()).await.unwrap();
        let full = serde_json::to_vec(&done.value).unwrap();
        assert!(
            head.bytes.len() * 20 < full.len(),
            "{} vs {}",
            head.bytes.len(),
            full.len()
        );
        let chunks = store
            .list_all(&format!("executions/{id}/chunks/"))
            .await
            .unwrap();
        assert_eq!(chunks.len(), got.value.chunk_names().len());
        assert!(chunks.len() >= 600 / 32);
    }

    #[tokio::test]
    async fn an_execution_written_whole_still_loads_and_is_then_chunked() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let done = run_stored(&store, 300).await;
        let id = done.value.id.clone();
        // the format written before chunks: Kestra's JSON, the whole list in the document
        let whole = serde_json::to_vec(&done.value).unwrap();
        let key = execution_key(&id).unwrap();
        store
            .put(&key, Bytes::from(whole.clone()), Condition::None)
            .await
            .unwrap();
        let repo = executions(store.clone());
        let got = repo.get(&id).await.unwrap();
        assert_eq!(got.value, done.value);
        let up = repo
            .update(&id, |e| {
                e.labels.push(weft_flow::model::Label {
                    key: "k".into(),
                    value: "v".into(),
                });
                Ok::<_, String>(())
            })
            .await
            .unwrap();
        assert!(up.size * 10 < whole.len());
        let again = repo.get(&id).await.unwrap().value;
        assert_eq!(again.task_run_list, done.value.task_run_list);
        assert_eq!(again.label("k"), Some("v"));
    }
}
