//! ForEachItem's two host tasks (see [`super::host_tasks`]); the executor runs the third one,
//! `<id>_items`, which starts one subflow execution per batch.
//!
//! - `<id>_split` ([`SPLIT_TYPE`]) cuts the file `items` (a `kestra:///` URI, usually a FILE
//!   input) into batches of lines by `batch` (Kestra's: `rows`, default 1; `bytes`, e.g. `10MB`;
//!   `partitions`; `separator`, written after each line, default `\n`; with more than one set,
//!   `bytes` wins, then `partitions`, as in Kestra). Each batch is a file of the split task run:
//!   `.../tasks/{slug of the task id}/{taskRunId}/{n}{.ext}`, `n` counting from 0 (the batch's
//!   `taskrun.iteration`) and `.ext` the extension of `items`. The names depend only on the task
//!   run and the batch number, so a retried or taken-over split rewrites the same files. Output:
//!   `splits`, the list of batch URIs, in order.
//! - `<id>_merge` ([`MERGE_TYPE`]) writes the flow outputs of the subflow executions listed in
//!   `executionIds` (in batch order) into one file of its task run, `outputs.ion`: one JSON object
//!   per line and per execution (`{}` for one without outputs). Output: `subflowOutputs`, its URI.
//!
//! Lines end with `\n` or `\r\n` (a last line without one counts). The file is read as a stream:
//! `rows` and `bytes` hold one batch in memory at a time; `partitions` deals the lines out in turn
//! (line i to partition i mod N, as Kestra), through one temporary local file per partition, and
//! drops empty partitions.

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::{Map, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, BufWriter};
use weft_executor::RunTask;
pub(crate) use weft_executor::{MERGE_TYPE, SPLIT_TYPE};
use weft_store::repo::ExecutionFiles;

use weft_executor::Execution;
use weft_store::repo::ExecutionRepo;

use super::host_tasks::{Done, Outcome, Performed};
use super::{Live, Runner};

/// The name of the merge's file in its task run's storage (Kestra's is an Ion file; one JSON
/// object per line is also valid Ion text).
const MERGED_NAME: &str = "outputs.ion";

/// How many subflow executions the merge reads at once.
const MERGE_READS: usize = 8;

/// Where batch boundaries fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// At most this many lines per batch.
    Rows(u64),
    /// A new batch once the current one holds this many bytes or more (a line is never cut, so
    /// a batch may pass the size by less than one line).
    Bytes(u64),
    /// This many batches, line i going to batch i mod N (empty ones dropped).
    Partitions(usize),
}

/// A ForEachItem's `batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Batching {
    cut: Cut,
    /// Written after every line.
    separator: Vec<u8>,
}

impl Cut {
    /// Whether a line goes to a new batch when the current one holds `bytes` bytes in `rows`
    /// lines (`rows` > 0).
    fn full(self, bytes: u64, rows: u64) -> bool {
        match self {
            Cut::Rows(max) => rows >= max,
            Cut::Bytes(max) => bytes >= max,
            Cut::Partitions(_) => false,
        }
    }
}

/// A size as Kestra reads `batch.bytes` (Micronaut's readable bytes): a number of bytes, or a
/// number with `KB`, `MB`, `GB` or `TB` (powers of 1024, any case, spaces allowed).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_uppercase();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => {
            return Err(format!(
                "`{text}` is not a size such as 1024, 512KB or 10MB"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{text}` is not a size such as 1024, 512KB or 10MB"))
}

/// A positive count from a number or a numeric string.
fn count(field: &str, value: &Json) -> Result<u64, String> {
    let n = match value {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| *n > 0)
        .ok_or_else(|| format!("`batch.{field}` must be a positive whole number, got {value}"))
}

/// Reads the (rendered) `batch` map.
fn batching(batch: Option<Json>) -> Result<Batching, String> {
    let map = match batch {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(m)) => m,
        Some(other) => {
            return Err(format!(
                "`batch` must be a map with `rows`, `bytes` or `partitions`, got {other}"
            ));
        }
    };
    if let Some(key) = map
        .keys()
        .find(|k| !["rows", "bytes", "partitions", "separator"].contains(&k.as_str()))
    {
        return Err(format!(
            "`batch.{key}` is not a batch option (use `rows`, `bytes`, `partitions` or `separator`)"
        ));
    }
    let set = |k: &str| map.get(k).filter(|v| !v.is_null());
    let cut = if let Some(v) = set("bytes") {
        let size = match v {
            Json::Number(n) => n.as_u64().filter(|n| *n > 0),
            Json::String(s) => Some(parse_size(s).map_err(|e| format!("`batch.bytes`: {e}"))?),
            _ => None,
        };
        Cut::Bytes(
            size.filter(|n| *n > 0)
                .ok_or_else(|| format!("`batch.bytes` must be a positive size, got {v}"))?,
        )
    } else if let Some(v) = set("partitions") {
        let n = count("partitions", v)?;
        // one open local file per partition while splitting
        if n > MAX_PARTITIONS {
            return Err(format!(
                "`batch.partitions` is {n}, more than the {MAX_PARTITIONS} weft splits a file into"
            ));
        }
        Cut::Partitions(
            usize::try_from(n).map_err(|_| format!("`batch.partitions` {n} is too large"))?,
        )
    } else if let Some(v) = set("rows") {
        Cut::Rows(count("rows", v)?)
    } else {
        Cut::Rows(1)
    };
    let separator = match set("separator") {
        None => b"\n".to_vec(),
        Some(Json::String(s)) => s.as_bytes().to_vec(),
        Some(other) => return Err(format!("`batch.separator` must be a string, got {other}")),
    };
    Ok(Batching { cut, separator })
}

/// The extension of the file a URI names, with its dot (`.txt`), if it has a short alphanumeric
/// one.
fn extension(uri: &str) -> String {
    let name = uri.rsplit('/').next().unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 16
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!(".{ext}")
        }
        _ => String::new(),
    }
}

/// Reads lines (without their `\n` or `\r\n`) from a stream, one at a time.
struct Lines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader: BufReader::new(reader),
            line: Vec::new(),
        }
    }

    async fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line).await? == 0 {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
        }
        Ok(Some(&self.line))
    }
}

/// Where the batches of one split go: batch `n` is `{dir}{n}{ext}`.
struct Target {
    files: ExecutionFiles,
    /// `kestra:///.../tasks/{slug}/{taskRunId}/`
    dir: String,
    ext: String,
}

impl Target {
    fn uri(&self, n: usize) -> String {
        format!("{}{n}{}", self.dir, self.ext)
    }

    async fn put(&self, n: usize, body: Vec<u8>) -> Result<String, String> {
        let uri = self.uri(n);
        self.files
            .put(&uri, Bytes::from(body))
            .await
            .map_err(|e| format!("cannot write batch {n}: {e}"))?;
        Ok(uri)
    }
}

/// Splits the file `source` into batch files; their URIs in order.
async fn split(source: &str, batching: &Batching, target: &Target) -> Result<Vec<String>, String> {
    let reader = target.files.get_stream(source).await.map_err(|e| {
        if e.is_not_found() {
            format!("`items`: the file {source} does not exist")
        } else {
            format!("`items`: cannot read {source}: {e}")
        }
    })?;
    let lines = Lines::new(reader.body);
    let read_error = |e: std::io::Error| format!("`items`: cannot read {source}: {e}");
    match batching.cut {
        Cut::Partitions(n) => partition(lines, n, &batching.separator, target, read_error).await,
        cut => {
            let mut lines = lines;
            let mut uris = Vec::new();
            let mut batch = Vec::new();
            let mut rows = 0u64;
            while let Some(line) = lines.next().await.map_err(read_error)? {
                if rows > 0 && cut.full(batch.len() as u64, rows) {
                    uris.push(target.put(uris.len(), std::mem::take(&mut batch)).await?);
                    rows = 0;
                }
                batch.extend_from_slice(line);
                batch.extend_from_slice(&batching.separator);
                rows += 1;
            }
            if rows > 0 {
                uris.push(target.put(uris.len(), batch).await?);
            }
            Ok(uris)
        }
    }
}

/// The most partitions a split makes.
const MAX_PARTITIONS: u64 = 10_000;

/// Deals the lines out to `n` partitions in turn, through temporary local files, then uploads
/// the non-empty ones.
async fn partition<R: AsyncRead + Unpin>(
    mut lines: Lines<R>,
    n: usize,
    separator: &[u8],
    target: &Target,
    read_error: impl Fn(std::io::Error) -> String,
) -> Result<Vec<String>, String> {
    let local = |e: std::io::Error| format!("cannot write a partition on local disk: {e}");
    let dir = tempfile::Builder::new()
        .prefix("weft-split-")
        .tempdir()
        .map_err(local)?;
    let path = |i: usize| -> PathBuf { dir.path().join(i.to_string()) };
    let mut writers = Vec::with_capacity(n);
    for i in 0..n {
        let file = tokio::fs::File::create(path(i)).await.map_err(local)?;
        writers.push((BufWriter::new(file), 0u64));
    }
    let mut next = 0;
    while let Some(line) = lines.next().await.map_err(&read_error)? {
        let (w, size) = &mut writers[next];
        w.write_all(line).await.map_err(local)?;
        w.write_all(separator).await.map_err(local)?;
        *size += (line.len() + separator.len()) as u64;
        next = (next + 1) % n;
    }
    let mut uris = Vec::new();
    for (i, (mut w, size)) in writers.into_iter().enumerate() {
        w.flush().await.map_err(local)?;
        drop(w);
        if size == 0 {
            continue;
        }
        let file = tokio::fs::File::open(path(i)).await.map_err(local)?;
        let uri = target.uri(uris.len());
        target
            .files
            .put_stream(&uri, Box::pin(file))
            .await
            .map_err(|e| format!("cannot write batch {}: {e}", uris.len()))?;
        uris.push(uri);
    }
    Ok(uris)
}

/// The execution ids `executionIds` lists: a list, or its JSON text once rendered.
fn execution_ids(value: Option<Json>) -> Result<Vec<String>, String> {
    let list = match value {
        Some(Json::Array(a)) => a,
        Some(Json::String(s)) if s.trim().is_empty() => Vec::new(),
        Some(Json::String(s)) => match serde_json::from_str(&s) {
            Ok(Json::Array(a)) => a,
            _ => {
                return Err(format!(
                    "`executionIds` must be a list of execution ids, got `{s}`"
                ));
            }
        },
        None | Some(Json::Null) => Vec::new(),
        Some(other) => {
            return Err(format!(
                "`executionIds` must be a list of execution ids, got {other}"
            ));
        }
    };
    list.into_iter()
        .map(|v| match v {
            Json::String(s) => Ok(s),
            other => Err(format!(
                "`executionIds` must list execution ids, got {other}"
            )),
        })
        .collect()
}

/// A split, its properties read: the rest is I/O, run off the driver's loop.
struct SplitJob {
    source: String,
    batching: Batching,
    target: Target,
}

impl SplitJob {
    async fn run(self) -> Outcome {
        let uris = split(&self.source, &self.batching, &self.target).await?;
        let n = uris.len();
        tracing::debug!(batches = n, source = %self.source, "ForEachItem split");
        let mut outputs = Map::new();
        outputs.insert(
            "splits".into(),
            Json::Array(uris.into_iter().map(Json::String).collect()),
        );
        Ok(Done {
            lines: vec![("INFO", format!("split {} into {n} batches", self.source))],
            outputs,
        })
    }
}

/// A merge, its properties read.
struct MergeJob {
    repo: ExecutionRepo<Execution>,
    files: ExecutionFiles,
    ids: Vec<String>,
    /// Where the merged file goes.
    uri: String,
}

impl MergeJob {
    async fn run(self) -> Outcome {
        let mut body = Vec::new();
        for chunk in self.ids.chunks(MERGE_READS) {
            let mut reads = tokio::task::JoinSet::new();
            for (i, id) in chunk.iter().enumerate() {
                let repo = self.repo.clone();
                let id = id.clone();
                reads.spawn(async move { (i, repo.find(&id).await, id) });
            }
            let mut found = vec![Map::new(); chunk.len()];
            while let Some(joined) = reads.join_next().await {
                let (i, read, id) =
                    joined.map_err(|e| format!("cannot read a subflow execution: {e}"))?;
                let exec = read
                    .map_err(|e| format!("cannot read subflow execution {id}: {e}"))?
                    .ok_or_else(|| format!("subflow execution {id} does not exist"))?;
                found[i] = exec.value.outputs.unwrap_or_default();
            }
            for outputs in found {
                // a `Json` map always serializes
                if let Ok(line) = serde_json::to_vec(&outputs) {
                    body.extend_from_slice(&line);
                    body.push(b'\n');
                }
            }
        }
        self.files
            .put(&self.uri, body.into())
            .await
            .map_err(|e| format!("cannot write the merged subflow outputs: {e}"))?;
        let mut outputs = Map::new();
        outputs.insert("subflowOutputs".into(), Json::String(self.uri));
        Ok(Done {
            lines: vec![(
                "DEBUG",
                format!(
                    "merged the outputs of {} subflow executions",
                    self.ids.len()
                ),
            )],
            outputs,
        })
    }
}

impl Runner {
    /// A ForEachItem split attempt of `live`'s execution: its properties read now, the file
    /// split in a spawned task.
    pub(super) fn run_split(&self, live: &Live, task: &RunTask) -> Performed {
        match self.split_job(live, task) {
            Ok(job) => Performed::Later(Box::pin(job.run())),
            Err(e) => Performed::Now(Err(e)),
        }
    }

    fn split_job(&self, live: &Live, task: &RunTask) -> Result<SplitJob, String> {
        let source = self
            .host_str(task, "items")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or("`items` is required: the `kestra:///` URI of the file to split")?;
        if !source.starts_with(weft_store::repo::URI_SCHEME) {
            return Err(format!(
                "`items` must be the `kestra:///` URI of a file in internal storage, got `{source}`"
            ));
        }
        let batching = batching(self.host_value(task, "batch")?)?;
        let slug = weft_flow::expr::slugify(&task.task_id);
        // a file's URI checks the task id and task run id; its folder is the batches' folder
        let probe = live
            .files
            .task_file_uri(&slug, &task.task_run_id, "0")
            .map_err(|e| e.to_string())?;
        let target = Target {
            files: live.files.clone(),
            dir: probe.strip_suffix('0').unwrap_or(&probe).to_string(),
            ext: extension(&source),
        };
        Ok(SplitJob {
            source,
            batching,
            target,
        })
    }

    /// A ForEachItem merge attempt of `live`'s execution: the subflow executions are read in a
    /// spawned task.
    pub(super) fn run_merge(&self, live: &Live, task: &RunTask) -> Performed {
        let job = || -> Result<MergeJob, String> {
            let ids = execution_ids(self.host_value(task, "executionIds")?)?;
            let slug = weft_flow::expr::slugify(&task.task_id);
            let uri = live
                .files
                .task_file_uri(&slug, &task.task_run_id, MERGED_NAME)
                .map_err(|e| e.to_string())?;
            Ok(MergeJob {
                repo: self.repo(),
                files: live.files.clone(),
                ids,
                uri,
            })
        };
        match job() {
            Ok(job) => Performed::Later(Box::pin(job.run())),
            Err(e) => Performed::Now(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn files() -> ExecutionFiles {
        let store: weft_store::DynStore = Arc::new(weft_store::MemoryStore::new());
        ExecutionFiles::new(store, "t", "f", "e1").unwrap()
    }

    /// Splits `content` (stored as `data.txt`) by `batch`; the batches' URIs and contents.
    async fn split_text(content: &str, batch: Json) -> Vec<(String, String)> {
        let files = files();
        let source = files.input_file_uri("file", "data.txt").unwrap();
        files
            .put(&source, Bytes::from(content.to_string()))
            .await
            .unwrap();
        let target = Target {
            files: files.clone(),
            dir: "kestra:///t/f/executions/e1/tasks/each-split/TR/".into(),
            ext: extension(&source),
        };
        let uris = split(&source, &batching(Some(batch)).unwrap(), &target)
            .await
            .unwrap();
        let mut out = Vec::new();
        for uri in uris {
            let text = files.read_text(&uri).await.unwrap();
            out.push((uri, text));
        }
        out
    }

    fn texts(batches: &[(String, String)]) -> Vec<&str> {
        batches.iter().map(|(_, t)| t.as_str()).collect()
    }

    #[tokio::test]
    async fn rows_make_batches_of_n_lines_and_a_last_partial_one() {
        let b = split_text("a\nb\nc\nd\ne\n", json!({"rows": 2})).await;
        assert_eq!(texts(&b), ["a\nb\n", "c\nd\n", "e\n"]);
        let uris: Vec<&str> = b.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            uris,
            [
                "kestra:///t/f/executions/e1/tasks/each-split/TR/0.txt",
                "kestra:///t/f/executions/e1/tasks/each-split/TR/1.txt",
                "kestra:///t/f/executions/e1/tasks/each-split/TR/2.txt",
            ]
        );
        // the default: one line per batch; `rows` as rendered text
        assert_eq!(
            texts(&split_text("a\nb\n", json!({})).await),
            ["a\n", "b\n"]
        );
        assert_eq!(
            texts(&split_text("a\nb\nc\n", json!({"rows": "3"})).await),
            ["a\nb\nc\n"]
        );
    }

    #[tokio::test]
    async fn an_empty_file_has_no_batch_and_a_last_line_without_newline_counts() {
        assert!(split_text("", json!({"rows": 2})).await.is_empty());
        assert!(split_text("", json!({"partitions": 3})).await.is_empty());
        assert_eq!(
            texts(&split_text("a\r\nb\nc", json!({"rows": 2})).await),
            ["a\nb\n", "c\n"]
        );
        // empty lines are lines; the separator is written after each
        assert_eq!(
            texts(&split_text("a\n\nb\n", json!({"rows": 2, "separator": ";"})).await),
            ["a;;", "b;"]
        );
    }

    #[tokio::test]
    async fn bytes_start_a_batch_once_the_current_one_reaches_the_size() {
        // lines of 4 bytes with their newline: a batch is full at 8 bytes
        let b = split_text("aaa\nbbb\nccc\nddd\neee\n", json!({"bytes": "8"})).await;
        assert_eq!(texts(&b), ["aaa\nbbb\n", "ccc\nddd\n", "eee\n"]);
        // a line is never cut: a batch passes the size by less than one line
        let b = split_text("aaa\nbbbbbbbbbb\nc\n", json!({"bytes": 5})).await;
        assert_eq!(texts(&b), ["aaa\nbbbbbbbbbb\n", "c\n"]);
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size(" 2 kb").unwrap(), 2048);
        assert!(parse_size("10 parsecs").is_err());
    }

    #[tokio::test]
    async fn partitions_deal_lines_in_turn_and_drop_empty_ones() {
        let b = split_text("1\n2\n3\n4\n5\n", json!({"partitions": 2})).await;
        assert_eq!(texts(&b), ["1\n3\n5\n", "2\n4\n"]);
        let b = split_text("1\n2\n", json!({"partitions": 4})).await;
        assert_eq!(texts(&b), ["1\n", "2\n"]);
        assert!(b[1].0.ends_with("/1.txt"), "{}", b[1].0);
        // `bytes` wins over `partitions`, which wins over `rows` (as Kestra)
        let b = split_text("1\n2\n3\n", json!({"rows": 1, "partitions": 1})).await;
        assert_eq!(texts(&b), ["1\n2\n3\n"]);
    }

    #[test]
    fn bad_batch_options_name_the_property() {
        let err = |b: Json| batching(Some(b)).unwrap_err();
        assert!(err(json!({"rows": 0})).starts_with("`batch.rows`"));
        assert!(err(json!({"rows": "many"})).starts_with("`batch.rows`"));
        assert!(err(json!({"partitions": -1})).starts_with("`batch.partitions`"));
        assert!(err(json!({"partitions": 1_000_000_000u64})).contains("more than the 10000"));
        assert!(err(json!({"bytes": "lots"})).starts_with("`batch.bytes`"));
        assert!(err(json!({"bytes": 0})).starts_with("`batch.bytes`"));
        assert!(err(json!({"row": 2})).starts_with("`batch.row` is not a batch option"));
        assert!(err(json!("rows")).starts_with("`batch` must be a map"));
    }

    #[tokio::test]
    async fn a_missing_file_fails_naming_items() {
        let files = files();
        let target = Target {
            files,
            dir: "kestra:///t/f/executions/e1/tasks/s/TR/".into(),
            ext: String::new(),
        };
        let source = "kestra:///t/f/executions/e1/inputs/file/none.txt";
        let e = split(source, &batching(None).unwrap(), &target)
            .await
            .unwrap_err();
        assert_eq!(e, format!("`items`: the file {source} does not exist"));
    }

    #[test]
    fn execution_ids_come_as_a_list_or_its_json_text() {
        assert_eq!(execution_ids(Some(json!(["a", "b"]))).unwrap(), ["a", "b"]);
        assert_eq!(
            execution_ids(Some(json!("[\"a\",\"b\"]"))).unwrap(),
            ["a", "b"]
        );
        assert!(execution_ids(Some(json!("a,b"))).is_err());
        assert_eq!(extension("kestra:///x/inputs/file/data.csv"), ".csv");
        assert_eq!(extension("kestra:///x/inputs/file/data"), "");
    }
}
