//! Repository tests: every test function runs against the memory store and the local store.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use super::*;
use crate::object::{Condition, DynStore};
use crate::{LocalStore, MemoryStore, RequestCounts};

pub(super) struct Env {
    pub(super) store: DynStore,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    pub(super) fn memory() -> Env {
        Env {
            store: Arc::new(MemoryStore::new()),
            _dir: None,
        }
    }

    pub(super) fn local() -> Env {
        let shm = std::path::Path::new("/dev/shm");
        let mut builder = tempfile::Builder::new();
        builder.prefix("weft-repo-test-");
        let dir = if shm.is_dir() {
            builder.tempdir_in(shm)
        } else {
            builder.tempdir()
        }
        .unwrap();
        Env {
            store: Arc::new(LocalStore::open(dir.path()).unwrap()),
            _dir: Some(dir),
        }
    }

    pub(super) fn counts(&self) -> RequestCounts {
        self.store.stats().snapshot()
    }
}

/// Runs `$f(Env)` once on the memory store and once on the local store.
macro_rules! on_both {
    ($($f:ident),* $(,)?) => {
        $(
            mod $f {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn memory() {
                    super::$f(super::Env::memory()).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn local() {
                    super::$f(super::Env::local()).await
                }
            }
        )*
    };
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    id: String,
    n: u64,
    #[serde(default)]
    tags: Vec<String>,
}

fn doc(id: &str) -> Doc {
    Doc {
        id: id.to_owned(),
        n: 0,
        tags: vec![],
    }
}

on_both!(
    chunked_execution_round_trips,
    chunked_execution_conflict_reapplies,
    chunked_execution_lost_race_stays_consistent,
    execution_create_get_update,
    execution_update_race,
    results_are_immutable,
    files_are_scoped,
    offload_moves_large_outputs,
    expr_host_reads_files,
    flows_keep_revisions,
    logs_per_attempt,
    index_lists_by_flow_and_date,
    trigger_state_is_conditional,
    trigger_toggles,
    concurrent_toggles_are_not_lost,
    kv_with_ttl,
    plugins_and_cache,
);

async fn execution_create_get_update(env: Env) {
    let repo: ExecutionRepo<Doc> = ExecutionRepo::new(env.store.clone());
    let before = env.counts();
    let v1 = repo.create("exec1", &mut doc("exec1")).await.unwrap();
    assert_eq!(env.counts().since(&before).put, 1);
    let again = repo.create("exec1", &mut doc("exec1")).await.unwrap_err();
    assert!(again.is_conflict(), "{again}");

    let got = repo.get("exec1").await.unwrap();
    assert_eq!(got.value, doc("exec1"));
    assert_eq!(got.version, v1);
    assert!(repo.find("nope").await.unwrap().is_none());
    assert!(repo.get("nope").await.unwrap_err().is_not_found());
    assert!(matches!(
        repo.get("../x").await.unwrap_err(),
        RepoError::InvalidName { .. }
    ));

    // one GET + one conditional PUT when nobody races
    let before = env.counts();
    let up = repo
        .update("exec1", |d| {
            d.n += 1;
            Ok::<_, String>(d.n)
        })
        .await
        .unwrap();
    let cost = env.counts().since(&before);
    assert_eq!((cost.get, cost.put, cost.total()), (1, 1, 2), "{cost:?}");
    assert_eq!((up.result, up.attempts, up.written), (1, 1, true));

    // no change: only the GET
    let before = env.counts();
    let same = repo.update("exec1", |_| Ok::<_, String>(())).await.unwrap();
    assert!(!same.written);
    assert_eq!(env.counts().since(&before).total(), 1);

    // an aborted update writes nothing
    let before = env.counts();
    let err = repo
        .update("exec1", |d| {
            d.n = 99;
            Err::<(), _>("refused".to_owned())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, UpdateError::Aborted(ref m) if m == "refused"));
    assert_eq!(env.counts().since(&before).put, 0);
    assert_eq!(repo.get("exec1").await.unwrap().value.n, 1);

    // a stale version is a typed conflict
    let stale = repo
        .put_if_version("exec1", &mut doc("exec1"), &v1)
        .await
        .unwrap_err();
    assert!(stale.is_conflict(), "{stale}");

    // from a held copy: one PUT
    let held = Versioned {
        value: up.value.clone(),
        version: up.version.clone(),
    };
    let before = env.counts();
    let up2 = repo
        .update_from("exec1", held.clone(), |d| {
            d.tags.push("a".into());
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    let cost = env.counts().since(&before);
    assert_eq!((cost.get, cost.put), (0, 1));
    // the held copy is stale now: re-applied on a fresh read
    let up3 = repo
        .update_from("exec1", held, |d| {
            d.n += 10;
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    assert_eq!(up3.attempts, 2);
    assert_eq!(up3.value.tags, vec!["a".to_owned()]);
    assert_eq!(up3.value.n, 11);
    assert_ne!(up3.version, up2.version);

    repo.delete("exec1", None).await.unwrap();
    assert!(repo.find("exec1").await.unwrap().is_none());
}

/// A document that keeps its items in immutable parts, 3 at a time: the shape of the executor's
/// chunked executions, with nothing of the executor.
#[derive(Clone, Debug, Default, PartialEq)]
struct Log {
    n: u64,
    items: Vec<String>,
    /// Items stored in parts (a prefix of `items`).
    stored: usize,
    parts: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct LogHead {
    n: u64,
    items: Vec<String>,
    parts: Vec<String>,
}

struct LogCodec;

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl DocumentCodec<Log> for LogCodec {
    fn encode(&self, doc: &mut Log) -> Result<Encoded, String> {
        let mut parts = Vec::new();
        if doc.items.len() - doc.stored >= 3 {
            let bytes = serde_json::to_vec(&doc.items[doc.stored..]).map_err(|e| e.to_string())?;
            let name = format!("{}-{:016x}", doc.parts.len(), fnv(&bytes));
            doc.parts.push(name.clone());
            doc.stored = doc.items.len();
            parts.push((name, bytes));
        }
        let head = LogHead {
            n: doc.n,
            items: doc.items[doc.stored..].to_vec(),
            parts: doc.parts.clone(),
        };
        Ok(Encoded {
            head: serde_json::to_vec(&head).map_err(|e| e.to_string())?,
            parts,
        })
    }

    fn decode(&self, head: &[u8]) -> Result<(Log, Vec<String>), String> {
        let head: LogHead = serde_json::from_slice(head).map_err(|e| e.to_string())?;
        let names = head.parts.clone();
        Ok((
            Log {
                n: head.n,
                items: head.items,
                stored: 0,
                parts: head.parts,
            },
            names,
        ))
    }

    fn attach(&self, doc: &mut Log, parts: Vec<(String, Bytes)>) -> Result<(), String> {
        let mut items = Vec::new();
        for (name, bytes) in parts {
            if name.rsplit_once('-').map(|(_, h)| h) != Some(&format!("{:016x}", fnv(&bytes))) {
                return Err(format!("part `{name}` is corrupt"));
            }
            let more: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            items.extend(more);
        }
        doc.stored = items.len();
        items.append(&mut doc.items);
        doc.items = items;
        Ok(())
    }
}

fn logs(store: &DynStore) -> ExecutionRepo<Log> {
    ExecutionRepo::with_codec(store.clone(), Arc::new(LogCodec))
}

fn add(doc: &mut Log, k: usize) {
    for _ in 0..k {
        let i = doc.items.len();
        doc.items.push(format!("item{i}"));
    }
}

async fn chunked_execution_round_trips(env: Env) {
    let repo = logs(&env.store);
    let mut doc = Log::default();
    add(&mut doc, 4);
    let v = repo.create("c1", &mut doc).await.unwrap();
    assert_eq!(doc.parts.len(), 1, "4 items make a part at once");
    let mut held = Versioned {
        value: doc,
        version: v,
    };
    for round in 0..5 {
        let before = env.counts();
        let up = repo
            .update_from("c1", held, |d| {
                add(d, 2);
                Ok::<_, String>(())
            })
            .await
            .unwrap();
        let cost = env.counts().since(&before);
        // every other round makes a part: PUT it, then the head
        let parts = usize::from(up.value.items.len() - up.value.stored == 0);
        assert_eq!((cost.get, cost.put), (0, 1 + parts as u64), "round {round}");
        assert!(up.size < 200, "the head holds at most 2 items: {}", up.size);
        held = Versioned {
            value: up.value,
            version: up.version,
        };
    }
    assert_eq!(held.value.items.len(), 14);
    let before = env.counts();
    let got = repo.get("c1").await.unwrap();
    let cost = env.counts().since(&before);
    assert_eq!(got.value, held.value);
    assert_eq!(got.version, held.version);
    assert_eq!(cost.get, 1 + held.value.parts.len() as u64, "{cost:?}");
    let keys = env.store.list_all("executions/c1/chunks/").await.unwrap();
    assert_eq!(keys.len(), held.value.parts.len());

    // a missing part is an error naming the execution and the part's key, not "not found"
    let part = execution_part_key("c1", &held.value.parts[1]).unwrap();
    env.store.delete(&part, None).await.unwrap();
    let e = repo.get("c1").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("c1") && text.contains(part.as_str()),
        "{text}"
    );
    assert!(
        repo.find("c1").await.is_err(),
        "a missing part is not an absent execution"
    );
    // a corrupt part too
    env.store
        .put(&part, Bytes::from_static(b"[\"x\"]"), Condition::None)
        .await
        .unwrap();
    let text = repo.get("c1").await.unwrap_err().to_string();
    assert!(
        text.contains("corrupt") && text.contains(&held.value.parts[1]),
        "{text}"
    );

    // delete removes the head and every part
    repo.delete("c1", None).await.unwrap();
    assert!(repo.find("c1").await.unwrap().is_none());
    let left = env.store.list_all("executions/c1/").await.unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
}

async fn chunked_execution_conflict_reapplies(env: Env) {
    let repo = logs(&env.store);
    let mut doc = Log::default();
    add(&mut doc, 2);
    let v = repo.create("c2", &mut doc).await.unwrap();
    let held = Versioned {
        value: doc,
        version: v,
    };
    // another writer gets there first, with a new part
    let other = repo
        .update_from("c2", held.clone(), |d| {
            d.n = 7;
            add(d, 3);
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    assert_eq!(other.value.parts.len(), 1);
    // the stale copy: its write loses, the change is re-applied to head + parts read again
    let before = env.counts();
    let up = repo
        .update_from("c2", held, |d| {
            d.n += 1;
            add(d, 4);
            Ok::<_, String>(d.items.len())
        })
        .await
        .unwrap();
    let cost = env.counts().since(&before);
    assert_eq!(up.attempts, 2);
    assert_eq!(up.result, 9, "re-applied on the 5 stored items");
    assert_eq!(up.value.n, 8);
    // lost attempt: 1 part + head; then 1 head + 1 part read; then 1 part + head
    assert_eq!((cost.get, cost.put), (2, 4), "{cost:?}");
    let got = repo.get("c2").await.unwrap().value;
    assert_eq!(got, up.value);
    let expected: Vec<String> = (0..9).map(|i| format!("item{i}")).collect();
    assert_eq!(got.items, expected);
}

async fn chunked_execution_lost_race_stays_consistent(env: Env) {
    let repo = logs(&env.store);
    let mut doc = Log::default();
    let v1 = repo.create("c3", &mut doc).await.unwrap();
    let mut winner = doc.clone();
    add(&mut winner, 3);
    repo.put_if_version("c3", &mut winner, &v1).await.unwrap();
    // the loser writes its part, then loses the head
    let mut loser = doc;
    add(&mut loser, 5);
    loser.items[0] = "other".into();
    let e = repo
        .put_if_version("c3", &mut loser, &v1)
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "{e}");
    let keys = env.store.list_all("executions/c3/chunks/").await.unwrap();
    assert_eq!(keys.len(), 2, "the loser's part stays, unreferenced");
    let got = repo.get("c3").await.unwrap().value;
    assert_eq!(got, winner, "the head references only the winner's part");

    // and the racing writers of `race` still add up with parts
    let repo = logs(&env.store).with_retry(RetryPolicy {
        max_attempts: 10_000,
        ..RetryPolicy::default()
    });
    repo.create("c4", &mut Log::default()).await.unwrap();
    let mut handles = Vec::new();
    for t in 0..4 {
        let repo = repo.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..10 {
                repo.update("c4", |d| {
                    d.n += 1;
                    d.items.push(format!("{t}-{i}"));
                    Ok::<_, String>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let got = repo.get("c4").await.unwrap().value;
    assert_eq!(got.n, 40);
    let mut items = got.items.clone();
    items.sort();
    items.dedup();
    assert_eq!(items.len(), 40, "no item lost or doubled");
}

async fn race(store: DynStore, tasks: u64, increments: u64) {
    let repo: ExecutionRepo<Doc> = ExecutionRepo::new(store.clone()).with_retry(RetryPolicy {
        max_attempts: 10_000,
        ..RetryPolicy::default()
    });
    repo.create("race", &mut doc("race")).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let repo = repo.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..increments {
                repo.update("race", |d| {
                    d.n += 1;
                    Ok::<_, String>(())
                })
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(repo.get("race").await.unwrap().value.n, tasks * increments);
}

async fn execution_update_race(env: Env) {
    race(env.store.clone(), 8, 50).await;
}

async fn results_are_immutable(env: Env) {
    let repo: ResultRepo<Json> = ResultRepo::new(env.store.clone());
    let r = json!({"state": "SUCCESS", "outputs": {"x": 1}});
    assert_eq!(
        repo.put("e1", "tr2", 0, &r).await.unwrap(),
        ResultWrite::Stored
    );
    assert_eq!(
        repo.put("e1", "tr2", 0, &r).await.unwrap(),
        ResultWrite::AlreadyStored
    );
    let other = repo
        .put("e1", "tr2", 0, &json!({"state": "FAILED"}))
        .await
        .unwrap_err();
    assert!(matches!(other, RepoError::Conflict { .. }), "{other}");
    assert!(other.to_string().contains("tr2"), "{other}");
    repo.put("e1", "tr1", 1, &r).await.unwrap();
    repo.put("e1", "tr1", 0, &r).await.unwrap();
    repo.put("e2", "tr1", 0, &r).await.unwrap();
    assert_eq!(repo.get("e1", "tr2", 0).await.unwrap(), Some(r.clone()));
    assert_eq!(repo.get("e1", "tr2", 1).await.unwrap(), None);
    let ids: Vec<(String, u32)> = repo
        .list("e1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.task_run_id, r.attempt))
        .collect();
    assert_eq!(
        ids,
        vec![("tr1".into(), 0), ("tr1".into(), 1), ("tr2".into(), 0)]
    );
    // the execution document's key is a sibling, not listed among the results
    let execs: ExecutionRepo<Doc> = ExecutionRepo::new(env.store.clone());
    execs.create("e1", &mut doc("e1")).await.unwrap();
    assert_eq!(repo.list("e1").await.unwrap().len(), 3);
}

async fn files_are_scoped(env: Env) {
    let files = ExecutionFiles::new(env.store.clone(), "company.team", "flow1", "exec1").unwrap();
    assert_eq!(
        files.base_uri(),
        "kestra:///company/team/flow1/executions/exec1/"
    );
    let uri = files.task_file_uri("t1", "tr1", "out put.txt").unwrap();
    assert_eq!(
        uri,
        "kestra:///company/team/flow1/executions/exec1/tasks/t1/tr1/out%20put.txt"
    );
    let input = files.input_file_uri("file", "data.csv").unwrap();
    assert_eq!(
        input,
        "kestra:///company/team/flow1/executions/exec1/inputs/file/data.csv"
    );
    assert_eq!(
        files.put(&uri, Bytes::from_static(b"hello")).await.unwrap(),
        5
    );
    files
        .put(&input, Bytes::from_static(b"a,b\n"))
        .await
        .unwrap();
    assert_eq!(files.get(&uri).await.unwrap(), Bytes::from_static(b"hello"));
    assert_eq!(files.read_text(&uri).await.unwrap(), "hello");
    assert_eq!(files.size(&uri).await.unwrap(), 5);
    {
        use tokio::io::AsyncReadExt;
        let mut reader = files.get_stream(&uri).await.unwrap();
        let mut s = String::new();
        reader.body.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello");
    }
    // the key is under storage/
    assert_eq!(
        files.key_for(&uri, false).unwrap().as_str(),
        "storage/company/team/flow1/executions/exec1/tasks/t1/tr1/out put.txt"
    );
    // list (all, and one directory)
    let all = files.list(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|f| f.uri == uri && f.size == 5));
    assert_eq!(files.list(Some("tasks/t1")).await.unwrap().len(), 1);

    // a sibling execution's files are not listed
    let other = ExecutionFiles::new(env.store.clone(), "company.team", "flow1", "exec10").unwrap();
    let other_uri = other.task_file_uri("t1", "tr1", "x").unwrap();
    other
        .put(&other_uri, Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(files.list(None).await.unwrap().len(), 2);

    // a child execution reads its parent's files (as Kestra's `read()`), never writes them
    let child = ExecutionFiles::new(env.store.clone(), "company.team", "child", "exec2")
        .unwrap()
        .also_reading("company.team", "flow1", "exec1")
        .unwrap();
    assert_eq!(child.get(&uri).await.unwrap(), Bytes::from_static(b"hello"));
    assert!(matches!(
        child.put(&uri, Bytes::from_static(b"x")).await.unwrap_err(),
        RepoError::OutsideExecution { .. }
    ));
    assert!(matches!(
        child.get(&other_uri).await.unwrap_err(),
        RepoError::OutsideExecution { .. }
    ));

    for bad in [
        other_uri.as_str(),
        "kestra:///company/team/flow2/executions/exec1/tasks/t1/tr1/out",
        "kestra:///company/flow1/executions/exec1/tasks/t1/tr1/out",
        "kestra:///company/team/flow1/executions/exec1",
    ] {
        let e = files.get(bad).await.unwrap_err();
        assert!(
            matches!(e, RepoError::OutsideExecution { .. }),
            "{bad}: {e}"
        );
    }
    for bad in [
        "kestra:///company/team/flow1/executions/exec1/../exec10/tasks/t1/tr1/x",
        "kestra:///company/team/flow1/executions/exec1/tasks/%2e%2e/%2E%2E/../../exec10/x",
        "kestra:///company/team/flow1/executions/exec1/a%2Fb",
        "kestra:///company/team/flow1/executions/exec1/a%5Cb",
        "kestra:///company/team/flow1/executions/exec1/a%00b",
        "kestra:///company/team/flow1/executions/exec1/a%zz",
        "kestra:///company/team/flow1/executions/exec1//x",
        "kestra:///company/team/flow1/executions/exec1/",
        "kestra:///company/team/flow1/executions/exec1/./x",
        "kestra:///company/team/flow1/executions/exec1/x?y",
        "kestra://host/company/team/flow1/executions/exec1/x",
        "file:///etc/passwd",
        "/company/team/flow1/executions/exec1/x",
    ] {
        let e = files.get(bad).await.unwrap_err();
        assert!(matches!(e, RepoError::InvalidUri { .. }), "{bad}: {e}");
    }
    // `%2e%2e` decoded is `..`
    let e = files
        .get("kestra:///company/team/flow1/executions/exec1/%2e%2e/exec10/tasks/t1/tr1/x")
        .await
        .unwrap_err();
    assert!(matches!(e, RepoError::InvalidUri { .. }), "{e}");
    // harmless escapes decode
    assert_eq!(
        files
            .get("kestra:///company/team/flow1/executions/exec1/tasks/t1/tr1/out%20put.txt")
            .await
            .unwrap(),
        Bytes::from_static(b"hello")
    );
    assert!(files.task_file_uri("t1", "tr1", "../x").is_err());
    assert!(files.task_file_uri("../t", "tr1", "x").is_err());
    assert!(files.uri_for("a/../../b").is_err());

    // namespace files: readable, not writable
    let ns_uri = files.namespace_file_uri("scripts/a.py").unwrap();
    assert_eq!(ns_uri, "kestra:///company/team/_files/scripts/a.py");
    assert!(matches!(
        files.put(&ns_uri, Bytes::new()).await.unwrap_err(),
        RepoError::OutsideExecution { .. }
    ));
    assert!(files.get(&ns_uri).await.unwrap_err().is_not_found());

    files.delete(&uri).await.unwrap();
    assert!(files.get(&uri).await.unwrap_err().is_not_found());
    files.delete(&uri).await.unwrap();
}

async fn offload_moves_large_outputs(env: Env) {
    let files = ExecutionFiles::new(env.store.clone(), "company.team", "flow1", "exec1").unwrap();
    let config = OffloadConfig::default();
    let big = "x".repeat(10 * 1024 * 1024);
    let rows: Vec<Json> = (0..200)
        .map(|i| json!({"i": i, "pad": "p".repeat(500)}))
        .collect();
    let mut outputs = Map::new();
    outputs.insert("body".into(), Json::String(big.clone()));
    outputs.insert("code".into(), json!(200));
    outputs.insert(
        "nested".into(),
        json!({"small": "s", "large": "y".repeat(100_000), "weird key/..": "z".repeat(70_000)}),
    );
    outputs.insert("rows".into(), Json::Array(rows.clone()));
    let original = Json::Object(outputs.clone());

    let before = env.counts();
    let done = offload_outputs(&files, "t1", "tr1", &mut outputs, &config)
        .await
        .unwrap();
    assert_eq!(env.counts().since(&before).put, 4, "{done:?}");
    assert_eq!(done.len(), 4);
    let doc = serde_json::to_vec(&outputs).unwrap();
    assert!(doc.len() < 64 * 1024, "{}", doc.len());
    assert!(doc.len() < 2048, "{}", doc.len());

    let (uri, size) = marker(&outputs["body"]).unwrap();
    assert_eq!(
        uri,
        "kestra:///company/team/flow1/executions/exec1/tasks/t1/tr1/outputs/body.json"
    );
    assert_eq!(size, big.len() as u64 + 2);
    assert_eq!(outputs["code"], json!(200));
    assert_eq!(outputs["nested"]["small"], json!("s"));
    assert!(marker(&outputs["nested"]["large"]).is_some());
    assert!(marker(&outputs["nested"]["weird key/.."]).is_some());
    assert!(marker(&outputs["rows"]).is_some());
    let uris: std::collections::HashSet<&str> = done.iter().map(|d| d.uri.as_str()).collect();
    assert_eq!(uris.len(), 4);

    // read back on demand
    assert_eq!(
        load_offloaded(&files, &outputs["body"]).await.unwrap(),
        Json::String(big)
    );
    assert_eq!(
        load_offloaded(&files, &outputs["code"]).await.unwrap(),
        json!(200)
    );
    let mut back = Json::Object(outputs.clone());
    assert_eq!(inflate(&files, &mut back).await.unwrap(), 4);
    assert_eq!(back, original);
    // `read()` of the marker's URI gives the JSON text
    assert_eq!(files.size(uri).await.unwrap(), size);

    // idempotent: markers stay markers, nothing is written
    let before = env.counts();
    let again = offload_outputs(&files, "t1", "tr1", &mut outputs, &config)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(env.counts().since(&before).total(), 0);

    // a configurable threshold
    let mut small = Map::new();
    small.insert("a".into(), json!("0123456789"));
    let tight = OffloadConfig {
        threshold: 8,
        ..OffloadConfig::default()
    };
    offload_outputs(&files, "t2", "tr2", &mut small, &tight)
        .await
        .unwrap();
    assert!(marker(&small["a"]).is_some());
}

#[test]
fn budget_errors_name_task_size_and_budget() {
    check_budget("t1", 1000, 1000).unwrap();
    let e = check_budget("t1", 2_000_000, DEFAULT_DOCUMENT_BUDGET).unwrap_err();
    let text = e.to_string();
    assert!(matches!(
        e,
        RepoError::BudgetExceeded {
            size: 2_000_000,
            budget: 1_048_576,
            ..
        }
    ));
    assert!(
        text.contains("`t1`") && text.contains("2000000") && text.contains("1048576"),
        "{text}"
    );
    let mut outputs = Map::new();
    outputs.insert("x".into(), json!("a".repeat(100)));
    let config = OffloadConfig {
        document_budget: 500,
        ..OffloadConfig::default()
    };
    check_outputs_fit("t2", 300, &outputs, &config).unwrap();
    let e = check_outputs_fit("t2", 450, &outputs, &config).unwrap_err();
    assert!(matches!(e, RepoError::BudgetExceeded { ref task_id, .. } if task_id == "t2"));
}

#[test]
fn json_size_is_exact() {
    for v in [
        json!(null),
        json!({"a": [1, 2.5, "é\"\n"], "b": {}}),
        json!("x".repeat(1000)),
    ] {
        assert_eq!(json_size(&v), serde_json::to_vec(&v).unwrap().len());
    }
}

async fn expr_host_reads_files(env: Env) {
    use weft_flow::expr::ExprHost;
    let files = ExecutionFiles::new(env.store.clone(), "a.b", "f", "e1").unwrap();
    let uri = files.task_file_uri("t", "tr", "hello.txt").unwrap();
    files
        .put(&uri, Bytes::from_static(b"hi there"))
        .await
        .unwrap();
    let host = FilesExprHost::new(files.clone(), tokio::runtime::Handle::current());
    assert_eq!(host.read(&uri).unwrap(), "hi there");
    assert_eq!(host.file_size(&uri).unwrap(), 8);
    assert_eq!(
        host.file_uri("x/y.sql").unwrap(),
        "kestra:///a/b/_files/x/y.sql"
    );
    let err = host
        .read("kestra:///a/b/f/executions/e2/tasks/t/tr/hello.txt")
        .unwrap_err();
    assert!(
        err.starts_with("read():") && err.contains("outside"),
        "{err}"
    );
    // through the renderer
    let renderer = weft_flow::expr::Renderer::new();
    let vars = json!({"outputs": {"t": {"uri": uri}}});
    let ctx = weft_flow::expr::Context {
        vars: &vars,
        now: chrono::Utc::now(),
        seed: 1,
        host: Some(&host),
    };
    let out = renderer
        .render(
            "{{ read(outputs.t.uri) }} {{ fileSize(outputs.t.uri) }}",
            &ctx,
        )
        .unwrap();
    assert_eq!(out, "hi there 8");
    // errorLogs(): the ERROR records of the execution, in time order
    assert!(host.error_logs().unwrap_err().contains("no log store"));
    let logs = LogRepo::new(env.store.clone());
    let rec = |ts: &str, level: &str, msg: &str| json!({"timestamp": ts, "level": level, "message": msg, "taskId": "t"});
    logs.put(
        "e1",
        "tr2",
        1,
        &[rec("2024-01-01T00:00:02.000Z", "ERROR", "late")],
    )
    .await
    .unwrap();
    logs.put(
        "e1",
        "tr1",
        1,
        &[
            rec("2024-01-01T00:00:01.000Z", "INFO", "fine"),
            rec("2024-01-01T00:00:01.500Z", "ERROR", "early"),
        ],
    )
    .await
    .unwrap();
    logs.put(
        "e2",
        "tr1",
        1,
        &[rec("2024-01-01T00:00:00.000Z", "ERROR", "other")],
    )
    .await
    .unwrap();
    let host = host.with_logs(logs);
    let found = host.error_logs().unwrap();
    let messages: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["early", "late"]);
}

const FLOW: &str = "id: hello\nnamespace: company.team\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

async fn flows_keep_revisions(env: Env) {
    let repo = FlowRepo::new(env.store.clone());
    assert!(repo.get("company.team", "hello").await.unwrap().is_none());
    let before = env.counts();
    let r1 = repo.save(FLOW).await.unwrap();
    assert_eq!(env.counts().since(&before).total(), 3);
    assert_eq!((r1.revision, r1.deleted), (1, false));
    let v2 = FLOW.replace("hi", "hello  # kept verbatim");
    let r2 = repo.update("company.team", "hello", &v2).await.unwrap();
    assert_eq!(r2.revision, 2);
    let before = env.counts();
    let latest = repo.get("company.team", "hello").await.unwrap().unwrap();
    assert_eq!(env.counts().since(&before).total(), 2);
    assert_eq!(latest.source, v2);
    assert_eq!(latest.revision, 2);
    assert_eq!(
        repo.get_revision("company.team", "hello", 1)
            .await
            .unwrap()
            .unwrap()
            .source,
        FLOW
    );
    // the namespace cannot change
    let moved = FLOW.replace("company.team", "other");
    let e = repo
        .update("company.team", "hello", &moved)
        .await
        .unwrap_err();
    assert!(matches!(e, RepoError::NamespaceChanged { .. }), "{e}");
    assert!(matches!(
        repo.save("tasks: []").await.unwrap_err(),
        RepoError::InvalidFlow { .. }
    ));
    assert!(matches!(
        repo.save("id: a\nnamespace: ../x\n").await.unwrap_err(),
        RepoError::InvalidName { .. }
    ));
    // another flow and another namespace
    repo.save(&FLOW.replace("id: hello", "id: bye"))
        .await
        .unwrap();
    repo.save(&moved).await.unwrap();
    let ids: Vec<(String, u32)> = repo
        .list("company.team")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.revision))
        .collect();
    assert_eq!(ids, vec![("bye".into(), 1), ("hello".into(), 2)]);
    // delete keeps history
    let del = repo.delete("company.team", "hello").await.unwrap();
    assert_eq!((del.revision, del.deleted), (3, true));
    assert!(repo.get("company.team", "hello").await.unwrap().is_none());
    assert!(
        repo.delete("company.team", "hello")
            .await
            .unwrap_err()
            .is_not_found()
    );
    let revs = repo.revisions("company.team", "hello").await.unwrap();
    assert_eq!(
        revs.iter()
            .map(|r| (r.revision, r.deleted))
            .collect::<Vec<_>>(),
        vec![(1, false), (2, false), (3, true)]
    );
    assert!(
        repo.get_revision("company.team", "hello", 3)
            .await
            .unwrap()
            .unwrap()
            .deleted
    );
    assert_eq!(repo.list("company.team").await.unwrap().len(), 1);
    // saved again after a delete: a new revision
    assert_eq!(repo.save(FLOW).await.unwrap().revision, 4);
    // 12 revisions sort numerically
    for _ in 0..8 {
        repo.save(FLOW).await.unwrap();
    }
    let revs = repo.revisions("company.team", "hello").await.unwrap();
    assert_eq!(revs.last().unwrap().revision, 12);
    assert_eq!(
        repo.get("company.team", "hello")
            .await
            .unwrap()
            .unwrap()
            .revision,
        12
    );
    assert_eq!(repo.list("company.team").await.unwrap()[1].revision, 12);
    // every namespace: the other namespace's flow too, sorted by namespace then id
    let every: Vec<(String, String, u32)> = repo
        .list_every()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.namespace, s.id, s.revision))
        .collect();
    assert_eq!(every.len(), 3, "{every:?}");
    assert!(every.contains(&("company.team".into(), "hello".into(), 12)));
    assert!(every.contains(&("company.team".into(), "bye".into(), 1)));
    let mut sorted = every.clone();
    sorted.sort();
    assert_eq!(every, sorted);
}

async fn logs_per_attempt(env: Env) {
    let logs = LogRepo::new(env.store.clone());
    logs.put(
        "e1",
        "trB",
        0,
        &[
            json!({"timestamp": "2024-01-01T00:00:02.000Z", "message": "b0"}),
            json!({"timestamp": "2024-01-01T00:00:04.000Z", "message": "b1"}),
        ],
    )
    .await
    .unwrap();
    logs.put(
        "e1",
        "trA",
        0,
        &[json!({"timestamp": "2024-01-01T00:00:01.000Z", "message": "a0"})],
    )
    .await
    .unwrap();
    logs.put(
        "e1",
        "trA",
        1,
        &[json!({"timestamp": "2024-01-01T00:00:03.000Z", "message": "a1"})],
    )
    .await
    .unwrap();
    logs.put("e2", "trA", 0, &[json!({"message": "other"})])
        .await
        .unwrap();
    assert_eq!(logs.read("e1", "trB", 0).await.unwrap().len(), 2);
    assert!(logs.read("e1", "trC", 0).await.unwrap().is_empty());
    let listed = logs.list("e1").await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id.task_run_id, "trA");
    let all: Vec<String> = logs
        .read_all("e1")
        .await
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, vec!["a0", "b0", "a1", "b1"]);
}

async fn index_lists_by_flow_and_date(env: Env) {
    use chrono::TimeZone;
    let index = ExecutionIndex::new(env.store.clone());
    let day = |d: u32, h: u32| chrono::Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap();
    for (flow, id, date) in [
        ("f1", "e1", day(1, 10)),
        ("f1", "e2", day(2, 10)),
        ("f1", "e3", day(3, 10)),
        ("f2", "e4", day(2, 12)),
    ] {
        index
            .put(&IndexEntry {
                namespace: "a.b".into(),
                flow_id: flow.into(),
                id: id.into(),
                start_date: date,
                state: "RUNNING".into(),
                end_date: None,
                extra: Json::Null,
            })
            .await
            .unwrap();
    }
    // another namespace sharing a prefix
    index
        .put(&IndexEntry {
            namespace: "a.bc".into(),
            flow_id: "f1".into(),
            id: "e9".into(),
            start_date: day(2, 0),
            state: "SUCCESS".into(),
            end_date: None,
            extra: Json::Null,
        })
        .await
        .unwrap();
    let ids = |v: Vec<IndexKey>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
    let all = index
        .list(&IndexQuery {
            namespace: "a.b",
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(all), vec!["e1", "e2", "e3", "e4"]);
    let q = IndexQuery {
        namespace: "a.b",
        flow_id: Some("f1"),
        from: Some(day(2, 0)),
        to: Some(day(3, 10)),
    };
    let got = index.list(&q).await.unwrap();
    assert_eq!(got[0].start_date, day(2, 10));
    assert_eq!(ids(got.clone()), vec!["e2"]);
    // rewrite with a new state
    let mut entry = index.get(&got[0]).await.unwrap().unwrap();
    assert_eq!(entry.state, "RUNNING");
    entry.state = "SUCCESS".into();
    index.put(&entry).await.unwrap();
    let entries = index.list_entries(&q).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].state, "SUCCESS");
    let q2 = IndexQuery {
        namespace: "a.b",
        flow_id: None,
        from: Some(day(2, 11)),
        to: None,
    };
    assert_eq!(ids(index.list(&q2).await.unwrap()), vec!["e3", "e4"]);
    // `a.b` and below, never `a.bc`; and every namespace
    let mut under = ids(index.list_under(Some("a.b")).await.unwrap());
    under.sort();
    assert_eq!(under, vec!["e1", "e2", "e3", "e4"]);
    assert_eq!(index.list_under(Some("a")).await.unwrap().len(), 5);
    assert_eq!(index.list_under(None).await.unwrap().len(), 5);
    index.delete(&got[0]).await.unwrap();
    assert!(index.get(&got[0]).await.unwrap().is_none());
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Schedule {
    last: Option<String>,
    fired: u32,
}

async fn trigger_state_is_conditional(env: Env) {
    let repo: TriggerRepo<Schedule> = TriggerRepo::new(env.store.clone());
    assert!(repo.get("a", "f", "every").await.unwrap().is_none());
    let before = env.counts();
    let up = repo
        .update("a", "f", "every", &Schedule::default, |s| {
            s.fired += 1;
            s.last = Some("t1".into());
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    assert_eq!(env.counts().since(&before).total(), 2);
    assert_eq!(up.value.fired, 1);
    let got = repo.get("a", "f", "every").await.unwrap().unwrap();
    assert_eq!(got.version, up.version);
    // two instances fire with the same version: one wins
    let next = Schedule {
        last: Some("t2".into()),
        fired: 2,
    };
    repo.put("a", "f", "every", &next, Some(&got.version))
        .await
        .unwrap();
    let e = repo
        .put("a", "f", "every", &next, Some(&got.version))
        .await
        .unwrap_err();
    assert!(e.is_conflict());
    assert!(
        repo.put("a", "f", "every", &next, None)
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert_eq!(repo.list("a", "f").await.unwrap(), vec!["every".to_owned()]);
    // a toggle of the same trigger is a document of its own
    ToggleRepo::new(env.store.clone())
        .set("a", "f", "every", true, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(repo.list("a", "f").await.unwrap(), vec!["every".to_owned()]);
    assert_eq!(
        repo.get("a", "f", "every").await.unwrap().unwrap().value,
        next
    );
    repo.delete("a", "f", "every").await.unwrap();
    assert!(repo.get("a", "f", "every").await.unwrap().is_none());
}

async fn kv_with_ttl(env: Env) {
    let kv = KvRepo::new(env.store.clone());
    let now = chrono::Utc::now();
    kv.set("a.b", "k1", &KvEntry::new(json!("v"), now, None), true)
        .await
        .unwrap();
    kv.set(
        "a.b",
        "k2",
        &KvEntry::new(json!({"x": 1}), now, Some(chrono::Duration::seconds(10))),
        true,
    )
    .await
    .unwrap();
    let k1 = kv.get("a.b", "k1", now).await.unwrap().unwrap();
    assert_eq!((k1.value, k1.kind), (json!("v"), KvType::String));
    let k2 = kv.get("a.b", "k2", now).await.unwrap().unwrap();
    assert_eq!(k2.kind, KvType::Json);
    assert!(
        kv.get("a.b", "k2", now + chrono::Duration::seconds(11))
            .await
            .unwrap()
            .is_none()
    );
    assert!(kv.get("a.b", "nope", now).await.unwrap().is_none());
    let e = kv
        .set("a.b", "k1", &KvEntry::new(json!(2), now, None), false)
        .await
        .unwrap_err();
    assert!(e.is_conflict());
    assert!(kv.get("a.b", "../x", now).await.is_err());
    assert_eq!(
        kv.keys("a.b").await.unwrap(),
        vec!["k1".to_owned(), "k2".to_owned()]
    );
    assert!(kv.delete("a.b", "k1").await.unwrap());
    assert!(!kv.delete("a.b", "k1").await.unwrap());
    // the stored shape
    let raw = env
        .store
        .get(&crate::Key::new("kv/a.b/k2.json").unwrap())
        .await
        .unwrap();
    let v: Json = serde_json::from_slice(&raw.bytes).unwrap();
    assert_eq!(v["type"], json!("JSON"));
    assert!(v.get("expirationDate").is_some());
}

async fn plugins_and_cache(env: Env) {
    let repo = PluginRepo::new(env.store.clone());
    repo.put_plugin("core", "0.1.0", Bytes::from_static(b"\0asm"))
        .await
        .unwrap();
    assert_eq!(
        repo.get_plugin("core", "0.1.0").await.unwrap(),
        Some(Bytes::from_static(b"\0asm"))
    );
    assert!(repo.get_plugin("core", "0.2.0").await.unwrap().is_none());
    assert!(repo.get_plugin("../x", "1").await.is_err());
    let listed = repo.list_plugins().await.unwrap();
    assert_eq!(
        listed,
        vec![PluginObject {
            name: "core".into(),
            version: "0.1.0".into(),
            size: 4
        }]
    );
    repo.put_cached("wasmtime-48-x86_64", "abc123", Bytes::from_static(b"code"))
        .await
        .unwrap();
    repo.put_cached("wasmtime-48-x86_64", "abc123", Bytes::from_static(b"code"))
        .await
        .unwrap();
    assert_eq!(
        repo.get_cached("wasmtime-48-x86_64", "abc123")
            .await
            .unwrap(),
        Some(Bytes::from_static(b"code"))
    );
    assert!(repo.get_cached("other", "abc123").await.unwrap().is_none());
    repo.delete_plugin("core", "0.1.0").await.unwrap();
    assert!(repo.list_plugins().await.unwrap().is_empty());
}

async fn trigger_toggles(env: Env) {
    let repo = ToggleRepo::new(env.store.clone());
    let t0 = chrono::Utc::now();
    let t1 = t0 + chrono::Duration::seconds(1);
    assert!(repo.get("a.b", "f", "sched").await.unwrap().is_none());
    assert!(!repo.is_disabled("a.b", "f", "sched").await.unwrap());
    let before = env.counts();
    let set = repo.set("a.b", "f", "sched", true, t0).await.unwrap();
    // GET (absent) + PUT if absent
    assert_eq!(env.counts().since(&before).total(), 2);
    assert_eq!(
        set,
        TriggerToggle {
            disabled: true,
            date: t0
        }
    );
    assert!(repo.is_disabled("a.b", "f", "sched").await.unwrap());
    // already disabled: nothing written, the date stays the switch's
    let before = env.counts();
    assert_eq!(
        repo.set("a.b", "f", "sched", true, t1).await.unwrap().date,
        t0
    );
    assert_eq!(env.counts().since(&before).total(), 1);
    let enabled = repo.set("a.b", "f", "sched", false, t1).await.unwrap();
    assert_eq!((enabled.disabled, enabled.date), (false, t1));
    repo.set("a.b", "f", "hook", true, t1).await.unwrap();
    let listed = repo.list("a.b", "f").await.unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["hook", "sched"]);
    assert!(listed["hook"].disabled && !listed["sched"].disabled);
    // the stored shape
    let raw = env
        .store
        .get(&crate::Key::new("triggers/a.b/f/hook/toggle.json").unwrap())
        .await
        .unwrap();
    let v: Json = serde_json::from_slice(&raw.bytes).unwrap();
    assert_eq!(v["disabled"], json!(true));
    assert!(v["date"].is_string());
    assert!(repo.set("a.b", "f", "../x", true, t1).await.is_err());
    repo.delete_flow("a.b", "f").await.unwrap();
    assert!(repo.list("a.b", "f").await.unwrap().is_empty());
}

async fn concurrent_toggles_are_not_lost(env: Env) {
    // many writers switch distinct triggers and one shared trigger: every switch lands
    let repo = ToggleRepo::new(env.store.clone());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let now = chrono::Utc::now();
            repo.set("a", "f", &format!("t{i}"), true, now)
                .await
                .unwrap();
            repo.set("a", "f", "shared", i % 2 == 0, now).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let listed = repo.list("a", "f").await.unwrap();
    assert_eq!(listed.len(), 9);
    assert!((0..8).all(|i| listed[&format!("t{i}")].disabled));
}
