//! The contract tests themselves, each `async fn(Env) -> anyhow::Result<()>`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use weft_store::{Condition, DynStore, Key, ListOptions, LocalStore, ObjectStore, StoreError};

use crate::{Backend, CHILD_ENV, Env};

pub(crate) type TestFn = fn(Env) -> Pin<Box<dyn Future<Output = Result<()>> + Send>>;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |env| Box::pin($name(env)))),*]
    };
}

/// Every contract test, run once per backend.
pub(crate) const CONTRACT: &[(&str, TestFn)] = contract![
    put_get_head,
    conditional_create,
    conditional_update,
    not_found,
    delete,
    list_paging,
    key_validation,
    large_stream,
    concurrent_increments,
];

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

async fn put_get_head(env: Env) -> Result<()> {
    let s = &env.store;
    let k = key("a/b.json");
    let v1 = s
        .put(&k, Bytes::from_static(b"hello"), Condition::None)
        .await?;
    let got = s.get(&k).await?;
    ensure!(got.bytes == "hello", "read back {:?}", got.bytes);
    ensure!(
        got.version == v1,
        "get version {} != put version {v1}",
        got.version
    );
    let meta = s.head(&k).await?;
    ensure!(meta.size == 5 && meta.version == v1, "head {meta:?}");

    let v2 = s
        .put(&k, Bytes::from_static(b"world!"), Condition::None)
        .await?;
    ensure!(v2 != v1, "a write of new content must change the version");
    let mut reader = s.get_stream(&k).await?;
    ensure!(
        reader.meta.version == v2 && reader.meta.size == 6,
        "{:?}",
        reader.meta
    );
    let mut body = Vec::new();
    reader.body.read_to_end(&mut body).await?;
    ensure!(body == b"world!");

    let empty = key("a/empty");
    s.put(&empty, Bytes::new(), Condition::IfAbsent).await?;
    ensure!(s.get(&empty).await?.bytes.is_empty());
    ensure!(s.head(&empty).await?.size == 0);
    Ok(())
}

async fn conditional_create(env: Env) -> Result<()> {
    let s = &env.store;
    let k = key("executions/e1.json");
    let v1 = s
        .put(&k, Bytes::from_static(b"one"), Condition::IfAbsent)
        .await?;
    let before = s.stats().snapshot();
    let err = s
        .put(&k, Bytes::from_static(b"two"), Condition::IfAbsent)
        .await
        .expect_err("a second create-if-absent must fail");
    ensure!(
        matches!(err, StoreError::Conflict { .. }) && err.is_conflict() && !err.is_transient(),
        "expected a Conflict, got {err:?}"
    );
    let after = s.stats().snapshot().since(&before);
    ensure!(after.conflicts == 1 && after.put == 1, "counted {after:?}");
    let got = s.get(&k).await?;
    ensure!(got.bytes == "one" && got.version == v1);
    Ok(())
}

async fn conditional_update(env: Env) -> Result<()> {
    let s = &env.store;
    let k = key("doc");
    let v1 = s
        .put(&k, Bytes::from_static(b"1"), Condition::IfAbsent)
        .await?;
    let v2 = s
        .put(
            &k,
            Bytes::from_static(b"2"),
            Condition::IfVersion(v1.clone()),
        )
        .await?;
    ensure!(v2 != v1);
    let stale = s
        .put(
            &k,
            Bytes::from_static(b"3"),
            Condition::IfVersion(v1.clone()),
        )
        .await
        .expect_err("a stale version must fail");
    ensure!(stale.is_conflict(), "expected a Conflict, got {stale:?}");
    ensure!(s.get(&k).await?.bytes == "2");
    let v3 = s
        .put(
            &k,
            Bytes::from_static(b"33"),
            Condition::IfVersion(v2.clone()),
        )
        .await?;
    // a last-writer-wins put still changes the version under a conditional writer's feet
    let v4 = s
        .put(&k, Bytes::from_static(b"444"), Condition::None)
        .await?;
    ensure!(v4 != v3);
    let lost = s
        .put(&k, Bytes::from_static(b"5"), Condition::IfVersion(v3))
        .await
        .expect_err("the version changed");
    ensure!(lost.is_conflict(), "{lost:?}");
    // a version condition on an absent key is a conflict, not NotFound
    let absent = s
        .put(
            &key("nope"),
            Bytes::from_static(b"x"),
            Condition::IfVersion(v4),
        )
        .await
        .expect_err("no object to match");
    ensure!(absent.is_conflict(), "expected a Conflict, got {absent:?}");
    ensure!(s.get(&key("nope")).await.unwrap_err().is_not_found());
    Ok(())
}

async fn not_found(env: Env) -> Result<()> {
    let s = &env.store;
    let k = key("missing/thing.json");
    let err = s.get(&k).await.expect_err("absent");
    ensure!(
        matches!(err, StoreError::NotFound { .. }) && !err.is_transient(),
        "{err:?}"
    );
    ensure!(s.head(&k).await.unwrap_err().is_not_found());
    ensure!(s.get_stream(&k).await.unwrap_err().is_not_found());
    s.delete(&k, None).await?;
    // with the local store, a key below an object's name, or a folder's name, is not an object either
    s.put(&key("f"), Bytes::from_static(b"x"), Condition::None)
        .await?;
    s.put(&key("d/x"), Bytes::from_static(b"x"), Condition::None)
        .await?;
    ensure!(s.get(&key("f/x")).await.unwrap_err().is_not_found());
    ensure!(s.get(&key("d")).await.unwrap_err().is_not_found());
    ensure!(s.head(&key("d")).await.unwrap_err().is_not_found());
    Ok(())
}

async fn delete(env: Env) -> Result<()> {
    let s = &env.store;
    let k = key("triggers/ns/flow/t.json");
    let v1 = s.put(&k, Bytes::from_static(b"a"), Condition::None).await?;
    let v2 = s
        .put(&k, Bytes::from_static(b"bb"), Condition::None)
        .await?;
    let err = s.delete(&k, Some(&v1)).await.expect_err("stale delete");
    ensure!(err.is_conflict(), "{err:?}");
    ensure!(s.get(&k).await?.bytes == "bb");
    s.delete(&k, Some(&v2)).await?;
    ensure!(s.get(&k).await.unwrap_err().is_not_found());
    let gone = s
        .delete(&k, Some(&v2))
        .await
        .expect_err("nothing to delete");
    ensure!(gone.is_conflict(), "{gone:?}");
    ensure!(s.list_all("triggers/").await?.is_empty());
    // the name is free again, even as a folder's name
    s.put(&k, Bytes::from_static(b"c"), Condition::IfAbsent)
        .await?;
    s.delete(&k, None).await?;
    s.put(
        &key("triggers/ns/flow"),
        Bytes::from_static(b"d"),
        Condition::IfAbsent,
    )
    .await?;
    ensure!(s.list_all("triggers/").await?.len() == 1);
    Ok(())
}

async fn list_paging(env: Env) -> Result<()> {
    let s = &env.store;
    let mut want = Vec::new();
    for i in 0..25 {
        let k = format!("p/{i:02}");
        s.put(&key(&k), Bytes::from(vec![b'x'; i]), Condition::None)
            .await?;
        want.push(k);
    }
    for k in ["p/sub/x", "p2/y", "q/z", "p.a"] {
        s.put(&key(k), Bytes::from_static(b"1"), Condition::None)
            .await?;
    }
    want.push("p/sub/x".to_owned());

    let mut got = Vec::new();
    let mut pages = 0;
    let mut token = None;
    loop {
        let page = s
            .list("p/", ListOptions::default().after(token).limit(7))
            .await?;
        pages += 1;
        ensure!(page.entries.len() <= 7);
        for e in &page.entries {
            ensure!(e.size == s.head(&e.key).await?.size, "size of {}", e.key);
            got.push(e.key.to_string());
        }
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
        ensure!(pages < 10, "paging does not end");
    }
    ensure!(got == want, "listed {got:?}");
    ensure!((4..=5).contains(&pages), "{pages} pages for 26 keys by 7");

    let all = s.list_all("").await?;
    let keys: Vec<String> = all.iter().map(|e| e.key.to_string()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    ensure!(keys == sorted, "not in key order: {keys:?}");
    ensure!(all.len() == 29, "{} keys in all", all.len());
    ensure!(s.list_all("p").await?.len() == 28);
    ensure!(s.list_all("p/1").await?.len() == 10);
    ensure!(s.list_all("p/sub/").await?.len() == 1);
    let none = s.list("nothing/", ListOptions::default()).await?;
    ensure!(none.entries.is_empty() && none.next.is_none());
    let v = s.head(&key("q/z")).await?.version;
    ensure!(s.list_all("q/").await?[0].version == v);
    Ok(())
}

async fn key_validation(env: Env) -> Result<()> {
    let s = &env.store;
    for bad in [
        "../x",
        "/etc/passwd",
        "a//b",
        "a/../../x",
        "a/./b",
        "a/",
        "",
        ".weft/locks/00.lock",
    ] {
        ensure!(
            matches!(Key::new(bad), Err(StoreError::InvalidKey { .. })),
            "{bad:?} accepted"
        );
    }
    for bad in ["/x", "../", "a/../", "a//"] {
        let err = s.list(bad, ListOptions::default()).await.expect_err(bad);
        ensure!(
            matches!(err, StoreError::InvalidKey { .. }),
            "{bad}: {err:?}"
        );
    }
    // nothing left the store: the local store's directory holds only what was written
    s.put(&key("inside"), Bytes::from_static(b"1"), Condition::None)
        .await?;
    if let Some(dir) = &env.dir {
        let names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        ensure!(
            names.len() == 2 && names.contains(&"inside".to_owned()),
            "{names:?}"
        );
    }
    Ok(())
}

/// A deterministic body of `len` bytes, generated on the fly (never held in memory).
struct Pattern {
    pos: u64,
    len: u64,
    seed: u64,
}

fn pattern_byte(seed: u64, pos: u64) -> u8 {
    let x = (pos ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

impl AsyncRead for Pattern {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (self.len - self.pos)
            .min(buf.remaining() as u64)
            .min(256 * 1024);
        let chunk: Vec<u8> = (self.pos..self.pos + n)
            .map(|p| pattern_byte(self.seed, p))
            .collect();
        buf.put_slice(&chunk);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

fn large_size() -> u64 {
    std::env::var("WEFT_TEST_LARGE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(24)
        * 1024
        * 1024
}

async fn check_stream(s: &DynStore, k: &Key, seed: u64, len: u64) -> Result<()> {
    let mut reader = s.get_stream(k).await?;
    ensure!(
        reader.meta.size == len,
        "size {} != {len}",
        reader.meta.size
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    loop {
        let n = reader.body.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b != pattern_byte(seed, pos + i as u64) {
                bail!("byte {} differs", pos + i as u64);
            }
        }
        pos += n as u64;
    }
    ensure!(pos == len, "read {pos} of {len} bytes");
    Ok(())
}

async fn large_stream(env: Env) -> Result<()> {
    let s = &env.store;
    let k = key("storage/ns/flow/executions/e/tasks/t/tr/big.bin");
    let len = large_size();
    let before = s.stats().snapshot();
    let started = Instant::now();
    let v1 = s
        .put_stream(
            &k,
            Box::pin(Pattern {
                pos: 0,
                len,
                seed: 1,
            }),
            Condition::IfAbsent,
        )
        .await?;
    let put_time = started.elapsed();
    let puts = s.stats().snapshot().since(&before).put;
    if env.backend == Backend::S3 {
        ensure!(
            puts > 2,
            "a {len}-byte body must go as a multipart upload ({puts} requests)"
        );
    }
    ensure!(s.head(&k).await?.version == v1);
    let started = Instant::now();
    check_stream(s, &k, 1, len).await?;
    println!(
        "    {:?}: {} MiB streamed up in {:.2?} ({puts} requests), down in {:.2?}",
        env.backend,
        len >> 20,
        put_time,
        started.elapsed()
    );

    let again = s
        .put_stream(
            &k,
            Box::pin(Pattern {
                pos: 0,
                len,
                seed: 2,
            }),
            Condition::IfAbsent,
        )
        .await
        .expect_err("exists");
    ensure!(again.is_conflict(), "{again:?}");
    check_stream(s, &k, 1, len).await?;

    let len2 = len / 2 + 3;
    let v2 = s
        .put_stream(
            &k,
            Box::pin(Pattern {
                pos: 0,
                len: len2,
                seed: 3,
            }),
            Condition::IfVersion(v1),
        )
        .await?;
    ensure!(s.head(&k).await?.version == v2);
    check_stream(s, &k, 3, len2).await?;
    // a small body through the streaming path is a plain put
    let small = key("small.bin");
    s.put_stream(
        &small,
        Box::pin(Pattern {
            pos: 0,
            len: 1000,
            seed: 4,
        }),
        Condition::None,
    )
    .await?;
    check_stream(s, &small, 4, 1000).await?;
    Ok(())
}

/// One writer: `n` read-modify-conditional-write increments of the counter at `k`, backing off with
/// jitter after a conflict. Returns the number of conflicts it met.
async fn increment(s: &dyn ObjectStore, k: &Key, n: usize) -> Result<u64> {
    let mut conflicts = 0;
    for _ in 0..n {
        let mut attempt = 0u32;
        loop {
            let (value, condition) = match s.get(k).await {
                Ok(o) => (
                    std::str::from_utf8(&o.bytes)?.parse::<u64>()?,
                    Condition::IfVersion(o.version),
                ),
                Err(e) if e.is_not_found() => (0, Condition::IfAbsent),
                Err(e) => return Err(e.into()),
            };
            match s
                .put(k, Bytes::from((value + 1).to_string()), condition)
                .await
            {
                Ok(_) => break,
                Err(e) if e.is_conflict() => {
                    conflicts += 1;
                    attempt = (attempt + 1).min(6);
                    let ceiling = 1u64 << attempt;
                    let ms = rand::random_range(0..=ceiling);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(conflicts)
}

/// `writers` tasks of `n` increments each on `k`; the conflicts they met.
async fn writers(store: DynStore, k: &Key, writers: usize, n: usize) -> Result<u64> {
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = Arc::clone(&store);
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            increment(store.as_ref(), &k, n).await
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await??;
    }
    Ok(conflicts)
}

/// 16 writers x 200 increments of one object. On S3, 8 x 25 unless `WEFT_TEST_S3_FULL_RACE=1`:
/// moto serves ~230 requests/s and 16 x 200 takes ~65,000 requests (282 s measured).
async fn concurrent_increments(env: Env) -> Result<()> {
    let k = key("counter");
    let full = std::env::var("WEFT_TEST_S3_FULL_RACE").is_ok_and(|v| v == "1");
    let (w, n) = match env.backend {
        Backend::S3 if !full => (8, 25),
        Backend::S3 | Backend::Memory | Backend::Local => (16, 200),
    };
    let started = Instant::now();
    let conflicts = writers(Arc::clone(&env.store), &k, w, n).await?;
    let elapsed = started.elapsed();
    let value = env.store.get(&k).await?.bytes;
    let stats = env.store.stats().snapshot();
    println!(
        "    {:?} {w}x{n}: value {} in {elapsed:.2?}, {conflicts} conflicts, {} requests",
        env.backend,
        String::from_utf8_lossy(&value),
        stats.total()
    );
    let expected = (w * n).to_string();
    ensure!(
        value == expected.as_bytes(),
        "lost updates: the counter is {}, not {expected}",
        String::from_utf8_lossy(&value)
    );
    Ok(())
}

/// Two processes, 8 writers each, 200 increments per writer, on one local directory.
pub(crate) fn two_processes() -> Result<()> {
    let dir = crate::temp_dir()?;
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let children: Vec<_> = (0..2)
        .map(|id| {
            Command::new(&exe)
                .env(CHILD_ENV, dir.path())
                .env("WEFT_STORE_CONTRACT_CHILD_ID", id.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut lines = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() {
            bail!(
                "child failed ({}): {stdout} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lines.push(stdout);
    }
    let elapsed = started.elapsed();
    let rt = crate::runtime()?;
    let value = rt.block_on(async {
        let store = LocalStore::open(dir.path())?;
        anyhow::Ok(store.get(&key("counter")).await?.bytes)
    })?;
    println!(
        "    local, 2 processes x 8 writers x 200: value {} in {elapsed:.2?} ({})",
        String::from_utf8_lossy(&value),
        lines.join("; ")
    );
    ensure!(
        value == "3200",
        "lost updates: the counter is {value:?}, not 3200"
    );
    Ok(())
}

/// The second (and first) process of [`two_processes`].
pub(crate) fn child_main(dir: PathBuf) -> ExitCode {
    let run = || -> Result<String> {
        let id = std::env::var("WEFT_STORE_CONTRACT_CHILD_ID").unwrap_or_default();
        let rt = crate::runtime()?;
        rt.block_on(async {
            let store: DynStore = Arc::new(LocalStore::open(&dir)?);
            // start together: each announces itself, then waits for the other
            store
                .put(&key(&format!("ready/{id}")), Bytes::new(), Condition::None)
                .await?;
            while store.list_all("ready/").await?.len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let conflicts = writers(Arc::clone(&store), &key("counter"), 8, 200)
                .await
                .context("increments")?;
            Ok(format!("process {id}: {conflicts} conflicts"))
        })
    };
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
