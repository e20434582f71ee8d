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
