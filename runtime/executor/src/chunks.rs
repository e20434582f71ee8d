//! How an execution is stored: a small *head* (every field of the execution, the task runs still
//! in it with their positions, and the names of its chunks) and immutable *chunks* of task runs
//! (`{"positions": [..], "taskRunList": [..]}`), so a step writes the head and at most a few new
//! chunks, never the whole execution. Pure: the store writes the bytes this module makes.
//!
//! - Which task runs leave the head: the terminated ones once [`ChunkPolicy::runs_per_chunk`] of
//!   them have gathered there; every run when the execution has terminated (but for an execution
//!   that has no chunk and fewer runs than that: it stays one object); every run when more
//!   than [`ChunkPolicy::max_head_runs`] are in the head (e.g. a ForEach with no concurrency limit
//!   starts thousands at once).
//! - A run changed after it left the head comes back into it (every mutation of a task run in
//!   `advance` goes through one accessor that marks it), and the head's copy wins over the chunk's
//!   when the execution is put back together; a later chunk's copy wins over an earlier one's.
//!   Anything that edits the list as a whole (restart, [`Execution::invalidate_index`]) folds every
//!   run back into the head, and the next write makes new chunks.
//! - Positions are stored with the runs, so the list comes back in its order.
//! - A chunk's name is `{seq}-{hash}`: a sequence number and a 128-bit hash of its bytes, so a
//!   racing writer never replaces another's chunk and a corrupt chunk is detected on read.
//! - A document written before chunks existed (a full `taskRunList`, no `weftChunks`) loads as a
//!   head whose runs are all new.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use weft_flow::model::Label;

use crate::execution::{Execution, ExecutionMetadata};
use crate::ids;
use crate::state::StateInfo;
use crate::taskrun::TaskRun;

/// The head field that lists chunks and positions (never in Kestra's JSON of an execution).
pub const CHUNKS_FIELD: &str = "weftChunks";

/// When task runs leave the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPolicy {
    /// Terminated runs in the head that make a new chunk.
    pub runs_per_chunk: usize,
    /// Most runs (of any state) kept in the head; above it, every run leaves it.
    pub max_head_runs: usize,
    /// Most runs in one chunk (a bigger batch is cut into several chunks).
    pub max_chunk_runs: usize,
}

impl Default for ChunkPolicy {
    /// 32 terminated runs per chunk, at most 1,024 runs in the head, 1,024 per chunk.
    fn default() -> Self {
        ChunkPolicy {
            runs_per_chunk: 32,
            max_head_runs: 1024,
            max_chunk_runs: 1024,
        }
    }
}

/// A stored execution that cannot be read back or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The head is not a valid execution head.
    #[error("execution head: {0}")]
    Head(String),
    /// A chunk is corrupt or does not match the head.
    #[error("execution `{execution}`: chunk `{chunk}`: {reason}")]
    Chunk {
        /// The execution.
        execution: String,
        /// The chunk's name.
        chunk: String,
        /// What is wrong.
        reason: String,
    },
    /// Head and chunks together do not make the whole list.
    #[error("execution `{execution}`: {reason}")]
    Inconsistent {
        /// The execution.
        execution: String,
        /// What is wrong.
        reason: String,
    },
    /// The execution cannot be serialised.
    #[error("execution `{execution}`: cannot serialise: {reason}")]
    Encode {
        /// The execution.
        execution: String,
        /// The serialiser's error.
        reason: String,
    },
}

/// What is written for one step: the head and the chunks it references that are new.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The head's JSON.
    pub head: Vec<u8>,
    /// New chunks: `(name, JSON)`.
    pub chunks: Vec<(String, Vec<u8>)>,
}

/// The `weftChunks` field of a head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeadMeta {
    /// Chunk names, oldest first.
    #[serde(default)]
    chunks: Vec<String>,
    /// The position of each task run of the head's `taskRunList`.
    #[serde(default)]
    positions: Vec<u32>,
    /// How many task runs the execution has.
    total: u32,
    /// The sequence number of the next chunk.
    #[serde(default)]
    next_seq: u32,
}

/// Where each task run of an execution is stored (kept beside the list, never serialised as
/// part of Kestra's JSON).
#[derive(Debug, Clone, Default)]
pub(crate) struct Archive {
    /// Chunks the stored head references, oldest first.
    chunks: Vec<String>,
    /// By position: the stored copy is in a chunk and the run has not changed since. Positions
    /// at or past its length are new runs (in the head at the next write).
    archived: Vec<bool>,
    /// Positions below `archived.len()` that are in the head.
    head: BTreeSet<u32>,
    next_seq: u32,
    /// Read from a head, waiting for its chunks ([`Execution::attach_chunks`]).
    loaded: Option<HeadMeta>,
}

impl<'de> Deserialize<'de> for Archive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Archive {
            loaded: Some(HeadMeta::deserialize(d)?),
            ..Archive::default()
        })
    }
}

impl Archive {
    /// The run at `pos` is about to change: if its stored copy is in a chunk, it returns to
    /// the head.
    pub(crate) fn touch(&mut self, pos: u32) {
        if let Some(a) = self.archived.get_mut(pos as usize)
            && *a
        {
            *a = false;
            self.head.insert(pos);
        }
    }

    /// Every run back into the head (after the list was edited as a whole); the next write makes
    /// new chunks of them.
    pub(crate) fn fold(&mut self) {
        self.chunks.clear();
        self.archived.clear();
        self.head.clear();
    }
}

/// The head as written: the execution's fields (as [`Execution`] serialises them) with only the
/// head's task runs, and `weftChunks`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadOut<'a> {
    id: &'a String,
    namespace: &'a String,
    flow_id: &'a String,
    flow_revision: u32,
    inputs: &'a Map<String, Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: &'a Option<Map<String, Json>>,
    labels: &'a Vec<Label>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variables: &'a Option<Map<String, Json>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: &'a Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_id: &'a Option<String>,
    state: &'a StateInfo,
    task_run_list: Vec<&'a TaskRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: &'a Option<ExecutionMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_date: &'a Option<DateTime<Utc>>,
    weft_chunks: HeadMetaOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadMetaOut<'a> {
    chunks: &'a [String],
    positions: Vec<u32>,
    total: u32,
    next_seq: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChunkOut<'a> {
    positions: &'a [u32],
    task_run_list: Vec<&'a TaskRun>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChunkIn {
    positions: Vec<u32>,
    task_run_list: Vec<TaskRun>,
}

fn chunk_hash(bytes: &[u8]) -> String {
    format!("{:032x}", ids::hash128(&[b"weft-chunk", bytes]))
}

fn position(pos: usize) -> u32 {
    u32::try_from(pos).unwrap_or(u32::MAX)
}

impl Execution {
    /// What to write for this execution now: the head and the new chunks (see the module docs).
    /// Records that the runs moved to those chunks are stored there; drop the execution (or
    /// reload it) if the head is not written. Costs in proportion to the head and the runs
    /// that leave it, not to the whole execution.
    pub fn encode_stored(&mut self, policy: &ChunkPolicy) -> Result<Stored, ChunkError> {
        if self.archive.loaded.is_some() {
            return Err(ChunkError::Inconsistent {
                execution: self.id.clone(),
                reason: "its head was read but its chunks were not attached".into(),
            });
        }
        let len = self.task_run_list.len();
        if self.archive.archived.len() > len {
            // the list shrank without `invalidate_index`: start over from the whole list
            self.archive.fold();
        }
        for pos in self.archive.archived.len()..len {
            self.archive.head.insert(position(pos));
        }
        self.archive.archived.resize(len, false);

        // a small execution that ended without a chunk stays one object: one PUT, not two
        let small = self.archive.chunks.is_empty()
            && self.archive.head.len() < policy.runs_per_chunk.max(1);
        let leaving: Vec<u32> = if (self.state.current.is_terminal() && !small)
            || self.archive.head.len() > policy.max_head_runs
        {
            self.archive.head.iter().copied().collect()
        } else {
            let done: Vec<u32> = self
                .archive
                .head
                .iter()
                .copied()
                .filter(|&p| {
                    self.task_run_list
                        .get(p as usize)
                        .is_some_and(|r| r.state.current.is_terminal())
                })
                .collect();
            if done.len() >= policy.runs_per_chunk.max(1) {
                done
            } else {
                Vec::new()
            }
        };
        let mut chunks = Vec::new();
        for batch in leaving.chunks(policy.max_chunk_runs.max(1)) {
            let out = ChunkOut {
                positions: batch,
                task_run_list: batch
                    .iter()
                    .filter_map(|&p| self.task_run_list.get(p as usize))
                    .collect(),
            };
            let bytes = serde_json::to_vec(&out).map_err(|e| ChunkError::Encode {
                execution: self.id.clone(),
                reason: e.to_string(),
            })?;
            let name = format!("{:06}-{}", self.archive.next_seq, chunk_hash(&bytes));
            self.archive.next_seq += 1;
            self.archive.chunks.push(name.clone());
            for &p in batch {
                self.archive.head.remove(&p);
                if let Some(a) = self.archive.archived.get_mut(p as usize) {
                    *a = true;
                }
            }
            chunks.push((name, bytes));
        }

        let positions: Vec<u32> = self.archive.head.iter().copied().collect();
        let head = HeadOut {
            id: &self.id,
            namespace: &self.namespace,
            flow_id: &self.flow_id,
            flow_revision: self.flow_revision,
            inputs: &self.inputs,
            outputs: &self.outputs,
            labels: &self.labels,
            variables: &self.variables,
            trigger: &self.trigger,
            parent_id: &self.parent_id,
            original_id: &self.original_id,
            state: &self.state,
            task_run_list: positions
                .iter()
                .filter_map(|&p| self.task_run_list.get(p as usize))
                .collect(),
            metadata: &self.metadata,
            schedule_date: &self.schedule_date,
            weft_chunks: HeadMetaOut {
                chunks: &self.archive.chunks,
                positions,
                total: position(len),
                next_seq: self.archive.next_seq,
            },
        };
        let head = serde_json::to_vec(&head).map_err(|e| ChunkError::Encode {
            execution: self.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(Stored { head, chunks })
    }

    /// Reads a head (or a whole execution written before chunks): the execution with only the
    /// head's task runs, and the names of the chunks to read and pass to
    /// [`Execution::attach_chunks`], in this order.
    pub fn decode_head(head: &[u8]) -> Result<(Execution, Vec<String>), ChunkError> {
        let exec: Execution =
            serde_json::from_slice(head).map_err(|e| ChunkError::Head(e.to_string()))?;
        let names = exec
            .archive
            .loaded
            .as_ref()
            .map(|m| m.chunks.clone())
            .unwrap_or_default();
        Ok((exec, names))
    }

    /// Puts the chunks named by [`Execution::decode_head`] (in that order) back into the
    /// execution: the whole task-run list, in order. A chunk whose hash does not match its name,
    /// that is not valid JSON, or a position that neither the head nor a chunk holds, is an error
    /// naming the execution and the chunk.
    pub fn attach_chunks<B: AsRef<[u8]>>(
        &mut self,
        chunks: Vec<(String, B)>,
    ) -> Result<(), ChunkError> {
        let Some(meta) = self.archive.loaded.take() else {
            if let Some((name, _)) = chunks.first() {
                return Err(ChunkError::Chunk {
                    execution: self.id.clone(),
                    chunk: name.clone(),
                    reason: "the head references no chunk".into(),
                });
            }
            return Ok(());
        };
        let inconsistent = |reason: String| ChunkError::Inconsistent {
            execution: self.id.clone(),
            reason,
        };
        let total = meta.total as usize;
        if meta.positions.len() != self.task_run_list.len() {
            return Err(inconsistent(format!(
                "the head holds {} task runs but lists {} positions",
                self.task_run_list.len(),
                meta.positions.len()
            )));
        }
        if chunks.len() != meta.chunks.len() {
            return Err(inconsistent(format!(
                "the head references {} chunks, {} were read",
                meta.chunks.len(),
                chunks.len()
            )));
        }
        let mut slots: Vec<Option<TaskRun>> = Vec::new();
        slots.resize_with(total, || None);
        let mut archived = vec![false; total];
        for (expected, (name, bytes)) in meta.chunks.iter().zip(chunks) {
            let bad = |reason: String| ChunkError::Chunk {
                execution: self.id.clone(),
                chunk: expected.clone(),
                reason,
            };
            if &name != expected {
                return Err(bad(format!("chunk `{name}` was read in its place")));
            }
            let bytes = bytes.as_ref();
            let hash = chunk_hash(bytes);
            if expected.rsplit_once('-').map(|(_, h)| h) != Some(hash.as_str()) {
                return Err(bad(format!(
                    "its content does not match its name (hash {hash}): corrupt"
                )));
            }
            let chunk: ChunkIn =
                serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
            if chunk.positions.len() != chunk.task_run_list.len() {
                return Err(bad(format!(
                    "{} positions for {} task runs",
                    chunk.positions.len(),
                    chunk.task_run_list.len()
                )));
            }
            for (p, run) in chunk.positions.into_iter().zip(chunk.task_run_list) {
                let Some(slot) = slots.get_mut(p as usize) else {
                    return Err(bad(format!(
                        "position {p} is past the {total} task runs of the head"
                    )));
                };
                *slot = Some(run);
                archived[p as usize] = true;
            }
        }
        let head_runs = std::mem::take(&mut self.task_run_list);
        for (&p, run) in meta.positions.iter().zip(head_runs) {
            let Some(slot) = slots.get_mut(p as usize) else {
                return Err(inconsistent(format!(
                    "the head's position {p} is past its {total} task runs"
                )));
            };
            *slot = Some(run);
            archived[p as usize] = false;
        }
        let mut list = Vec::with_capacity(total);
        for (p, slot) in slots.into_iter().enumerate() {
            match slot {
                Some(run) => list.push(run),
                None => {
                    return Err(inconsistent(format!(
                        "task run {p} of {total} is in neither the head nor its chunks ({})",
                        meta.chunks.join(", ")
                    )));
                }
            }
        }
        self.task_run_list = list;
        self.archive = Archive {
            chunks: meta.chunks,
            archived,
            head: meta.positions.into_iter().collect(),
            next_seq: meta.next_seq,
            loaded: None,
        };
        Ok(())
    }

    /// Names of the chunks the stored head references (after a write or a read).
    pub fn chunk_names(&self) -> &[String] {
        &self.archive.chunks
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashMap;

    use chrono::{DateTime, TimeDelta, Utc};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::index::IndexSlot;
    use crate::state::State;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-06-01T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn exec() -> Execution {
        Execution {
            id: "E1".into(),
            namespace: "n".into(),
            flow_id: "f".into(),
            flow_revision: 3,
            inputs: json!({"a": 1}).as_object().cloned().unwrap(),
            outputs: Some(json!({"o": [1, 2]}).as_object().cloned().unwrap()),
            labels: vec![Label {
                key: "k".into(),
                value: "v".into(),
            }],
            variables: Some(json!({"x": "y"}).as_object().cloned().unwrap()),
            trigger: Some(json!({"id": "t", "type": "x"})),
            parent_id: Some("P".into()),
            original_id: Some("O".into()),
            state: StateInfo::new(State::Running, t0()),
            task_run_list: Vec::new(),
            metadata: Some(ExecutionMetadata {
                attempt_number: 2,
                original_created_date: t0(),
            }),
            schedule_date: Some(t0()),
            index: IndexSlot::default(),
            archive: Archive::default(),
        }
    }

    fn run(i: usize, done: bool) -> TaskRun {
        let mut state = StateInfo::new(State::Created, t0());
        state.transition(State::Running, t0() + TimeDelta::seconds(1));
        if done {
            state.transition(State::Success, t0() + TimeDelta::seconds(2));
        }
        TaskRun {
            id: format!("R{i}"),
            execution_id: "E1".into(),
            namespace: "n".into(),
            flow_id: "f".into(),
            task_id: "t".into(),
            parent_task_run_id: None,
            value: Some(format!("v{i}")),
            iteration: Some(u32::try_from(i).unwrap()),
            attempts: None,
            outputs: Some(json!({"value": i}).as_object().cloned().unwrap()),
            state,
            loop_values: None,
        }
    }

    /// A store of heads and chunks that never replaces a chunk.
    #[derive(Default)]
    struct Store {
        head: Vec<u8>,
        chunks: HashMap<String, Vec<u8>>,
    }

    impl Store {
        fn write(&mut self, e: &mut Execution, p: &ChunkPolicy) {
            let s = e.encode_stored(p).unwrap();
            for (n, b) in s.chunks {
                assert!(
                    self.chunks.insert(n, b).is_none(),
                    "a chunk name came twice"
                );
            }
            self.head = s.head;
        }
        fn read(&self) -> Execution {
            let (mut e, names) = Execution::decode_head(&self.head).unwrap();
            let parts: Vec<(String, &[u8])> = names
                .iter()
                .map(|n| (n.clone(), self.chunks[n].as_slice()))
                .collect();
            e.attach_chunks(parts).unwrap();
            e
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// New runs, terminated or not.
        Push(Vec<bool>),
        /// Change the run at this index (modulo the length), as `advance` does.
        Change(usize),
        /// Remove the run (modulo the length) as a restart does, by hand.
        Remove(usize),
        Write,
        /// Go on from the copy read back.
        Reload,
        Terminate,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop::collection::vec(any::<bool>(), 0..12).prop_map(Op::Push),
            3 => any::<usize>().prop_map(Op::Change),
            1 => any::<usize>().prop_map(Op::Remove),
            4 => Just(Op::Write),
            1 => Just(Op::Reload),
            1 => Just(Op::Terminate),
        ]
    }

    proptest! {
        #[test]
        fn split_then_reassemble_is_the_original(
            ops in prop::collection::vec(op(), 1..60),
            per_chunk in 1usize..8,
            max_head in 4usize..40,
            max_chunk in 1usize..10,
        ) {
            let policy = ChunkPolicy {
                runs_per_chunk: per_chunk,
                max_head_runs: max_head,
                max_chunk_runs: max_chunk,
            };
            let mut e = exec();
            let mut store = Store::default();
            store.write(&mut e, &policy);
            let mut n = 0;
            for op in ops {
                match op {
                    Op::Push(flags) => {
                        for done in flags {
                            e.task_run_list.push(run(n, done));
                            n += 1;
                        }
                    }
                    Op::Change(i) if !e.task_run_list.is_empty() => {
                        let p = i % e.task_run_list.len();
                        e.archive.touch(position(p));
                        let r = &mut e.task_run_list[p];
                        r.outputs = Some(json!({"changed": i}).as_object().cloned().unwrap());
                        if !r.state.current.is_terminal() {
                            r.state.transition(State::Failed, t0() + TimeDelta::seconds(3));
                        }
                    }
                    Op::Remove(i) if !e.task_run_list.is_empty() => {
                        let p = i % e.task_run_list.len();
                        e.task_run_list.remove(p);
                        e.invalidate_index();
                    }
                    Op::Write => {
                        store.write(&mut e, &policy);
                        prop_assert_eq!(&store.read(), &e);
                    }
                    Op::Reload => {
                        store.write(&mut e, &policy);
                        e = store.read();
                    }
                    Op::Terminate => {
                        if !e.state.current.is_terminal() {
                            e.state.transition(State::Success, t0() + TimeDelta::seconds(9));
                        }
                    }
                    Op::Change(_) | Op::Remove(_) => {}
                }
            }
            store.write(&mut e, &policy);
            let back = store.read();
            prop_assert_eq!(&back, &e);
            // the head never holds more than `max_head_runs`, and once terminated nothing, but
            // for a small execution without chunks
            let head: serde_json::Value = serde_json::from_slice(&store.head).unwrap();
            let in_head = head["taskRunList"].as_array().unwrap().len();
            if e.state.current.is_terminal() {
                let chunks = head[CHUNKS_FIELD]["chunks"].as_array().map_or(0, Vec::len);
                let small = chunks == 0 && in_head < per_chunk;
                prop_assert!(in_head == 0 || small, "{} runs in the head", in_head);
            } else {
                prop_assert!(in_head <= max_head, "{} runs in the head", in_head);
            }
        }
    }

    #[test]
    fn the_head_has_every_field_of_the_execution() {
        let mut e = exec();
        e.task_run_list = (0..40).map(|i| run(i, true)).collect();
        e.state.transition(State::Success, t0());
        let stored = e.encode_stored(&ChunkPolicy::default()).unwrap();
        let mut head: serde_json::Value = serde_json::from_slice(&stored.head).unwrap();
        let meta = head.as_object_mut().unwrap().remove(CHUNKS_FIELD).unwrap();
        assert_eq!(meta["total"], 40);
        assert_eq!(meta["chunks"].as_array().unwrap().len(), 1);
        let mut full = serde_json::to_value(&e).unwrap();
        full["taskRunList"] = json!([]);
        assert_eq!(
            head, full,
            "the head is Kestra's JSON without the archived runs"
        );
        // and Kestra's JSON never shows the stored layout
        assert!(
            serde_json::to_value(&e)
                .unwrap()
                .get(CHUNKS_FIELD)
                .is_none()
        );
    }

    #[test]
    fn a_small_execution_that_ended_stays_one_object() {
        let policy = ChunkPolicy::default();
        let mut e = exec();
        e.task_run_list = (0..3).map(|i| run(i, true)).collect();
        e.state.transition(State::Success, t0());
        let stored = e.encode_stored(&policy).unwrap();
        assert!(stored.chunks.is_empty());
        let store = Store {
            head: stored.head,
            ..Store::default()
        };
        assert_eq!(store.read(), e);
        // once it has a chunk, its end moves every run out of the head
        let mut e = exec();
        e.task_run_list = (0..40).map(|i| run(i, true)).collect();
        let first = e.encode_stored(&policy).unwrap();
        assert_eq!(first.chunks.len(), 1);
        e.task_run_list.push(run(40, true));
        e.state.transition(State::Success, t0());
        assert_eq!(e.encode_stored(&policy).unwrap().chunks.len(), 1);
    }

    #[test]
    fn a_step_serialises_only_the_head() {
        let policy = ChunkPolicy::default();
        let mut e = exec();
        e.task_run_list = (0..10_000).map(|i| run(i, true)).collect();
        let mut store = Store::default();
        store.write(&mut e, &policy);
        assert_eq!(store.chunks.len(), 10_000 / policy.max_chunk_runs + 1);
        // one more run and one changed archived run: a head of two runs, no chunk
        e.task_run_list.push(run(10_000, false));
        e.archive.touch(17);
        e.task_run_list[17].outputs = None;
        let s = e.encode_stored(&policy).unwrap();
        assert!(s.chunks.is_empty());
        assert!(s.head.len() < 5_000, "head {}", s.head.len());
        store.head = s.head;
        assert_eq!(
            store.read(),
            e,
            "the head's copy of run 17 wins over its chunk's"
        );
    }
}
