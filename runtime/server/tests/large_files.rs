#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! 100 MB through tasks: Download from a local HTTP server, Split, Concat, Size, on the local store.
//! The data stays in internal storage; the execution document keeps URIs and stays small.

mod common;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use weft_engine::{AllowList, EngineConfig};
use weft_server::runner::{Observer, StartRequest};
use weft_server::setup::Setup;
use weft_store::repo::execution_key;

const SIZE: usize = 100 * 1024 * 1024;
const LINE: usize = 64;

/// One line of the served file: 63 characters and a newline.
fn line(i: usize) -> [u8; LINE] {
    let mut l = [b'x'; LINE];
    let head = format!("line {i:012} ");
    l[..head.len()].copy_from_slice(head.as_bytes());
    l[LINE - 1] = b'\n';
    l
}

/// Prints the errors of the attempts, so a failure says why.
struct Errors;

impl Observer for Errors {
    fn log(&self, _exec: &str, task: &str, level: &str, message: &str) {
        if level == "ERROR" {
            eprintln!("{task}: {message}");
        }
    }
}

/// Serves `SIZE` bytes of lines to every GET, in chunks (never the whole body in memory).
async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut head = vec![0u8; 4096];
            let _ = socket.read(&mut head).await;
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {SIZE}\r\nconnection: close\r\n\r\n"
            );
            if socket.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let mut chunk = Vec::with_capacity(1 << 20);
            for i in 0..SIZE / LINE {
                chunk.extend_from_slice(&line(i));
                if chunk.len() >= 1 << 20 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    chunk.clear();
                }
            }
            let _ = socket.write_all(&chunk).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_file_moves_through_tasks_and_the_execution_stays_small() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener));

    let config = EngineConfig {
        cache_dir: None,
        http_allow: AllowList::new([format!("127.0.0.1:{port}")]),
        ..EngineConfig::default()
    };
    let (setup, _) = Setup::load_with(config, None).await.expect("plugins");
    let yaml = format!(
        r#"
id: big-file
namespace: weft.tests
tasks:
  - id: download
    type: io.kestra.plugin.core.http.Download
    uri: http://127.0.0.1:{port}/big.txt
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{{{ outputs.download.uri }}}}"
    bytes: 10MB
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{{{ outputs.split.uris }}}}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{{{ outputs.concat.uri }}}}"
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let store = weft_store::open(&format!("file://{}", dir.path().display()))
        .await
        .unwrap();
    let runner =
        common::runner(&setup, store.clone(), &[&yaml]).with_observer(std::sync::Arc::new(Errors));
    let started = std::time::Instant::now();
    let exec = runner
        .run("weft.tests", "big-file", StartRequest::default())
        .await
        .expect("run");
    let elapsed = started.elapsed();
    let run = |id: &str| {
        exec.task_run_list
            .iter()
            .find(|r| r.task_id == id)
            .unwrap_or_else(|| panic!("no task run of {id}"))
    };
    assert_eq!(
        exec.state.current.as_str(),
        "SUCCESS",
        "{}",
        serde_json::to_string_pretty(&exec).unwrap()
    );
    let output = |id: &str, key: &str| run(id).outputs.as_ref().and_then(|o| o.get(key)).cloned();
    assert_eq!(output("download", "length"), Some(SIZE.into()));
    let parts = output("split", "uris").unwrap();
    assert_eq!(parts.as_array().map(Vec::len), Some(10), "{parts}");
    assert_eq!(output("size", "size"), Some(SIZE.into()));

    // the concatenated file is the served one, byte for byte
    let uri = output("concat", "uri").unwrap();
    let files = weft_store::repo::ExecutionFiles::new(
        store.clone(),
        &exec.namespace,
        &exec.flow_id,
        &exec.id,
    )
    .unwrap();
    let data = files.get(uri.as_str().unwrap()).await.unwrap();
    assert_eq!(data.len(), SIZE);
    for i in [0, 1, SIZE / LINE / 2, SIZE / LINE - 1] {
        assert_eq!(&data[i * LINE..(i + 1) * LINE], &line(i)[..], "line {i}");
    }

    let document = store
        .get(&execution_key(&exec.id).unwrap())
        .await
        .unwrap()
        .bytes
        .len();
    println!(
        "100 MiB through Download, Split (10 parts), Concat, Size in {:.1} s; execution document {document} bytes",
        elapsed.as_secs_f64()
    );
    assert!(
        document < 64 * 1024,
        "the execution document is {document} bytes"
    );
}
