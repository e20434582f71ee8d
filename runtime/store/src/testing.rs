//! A real S3-compatible server for tests (feature `test-util`).
//!
//! [`TestS3::start`] uses `WEFT_TEST_S3_ENDPOINT` when it is set (credentials and region then come from
//! the usual AWS variables, so the suite can run against MinIO or AWS), and otherwise starts
//! `moto_server` (`python3 -m pip install 'moto[server]'`) on a free port of 127.0.0.1, waits until it
//! answers, and stops it when dropped. [`TestS3::bucket`] creates a fresh bucket per test.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, StoreError};
use crate::s3::{MIN_PART_SIZE, S3Options, S3Store};

/// How long moto may take to start on a loaded machine (it imports a lot of Python).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// An S3 endpoint for tests: a moto server of this process, or an outside one.
#[derive(Debug)]
pub struct TestS3 {
    endpoint: String,
    credentials: Option<(String, String)>,
    region: Option<String>,
    child: Option<Child>,
}

impl TestS3 {
    /// Uses `WEFT_TEST_S3_ENDPOINT`, or starts moto.
    pub fn start() -> Result<TestS3> {
        if let Ok(endpoint) = std::env::var("WEFT_TEST_S3_ENDPOINT")
            && !endpoint.trim().is_empty()
        {
            return Ok(TestS3 {
                endpoint,
                credentials: None,
                region: None,
                child: None,
            });
        }
        let mut last = None;
        // a free port may be taken between our probe and moto's bind: try a few
        for _ in 0..3 {
            match start_moto() {
                Ok(s3) => return Ok(s3),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| setup_error("moto did not start")))
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// True when this is a moto server started here (data in memory, gone when dropped).
    pub fn is_moto(&self) -> bool {
        self.child.is_some()
    }

    /// Options for `bucket` on this endpoint: small parts so that multipart uploads are exercised.
    pub fn options(&self, bucket: &str) -> S3Options {
        let mut options = S3Options::new(bucket, "weft-test");
        options.endpoint = Some(self.endpoint.clone());
        options.credentials = self.credentials.clone();
        options.region = self.region.clone();
        options.path_style = Some(true);
        options.part_size = MIN_PART_SIZE;
        options
    }

    /// Creates a bucket with a unique name (`weft-test-<hint>-<random>`) and connects to it, probe
    /// included.
    pub async fn bucket(&self, hint: &str) -> Result<S3Store> {
        let hint: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(24)
            .collect();
        let name = format!(
            "weft-test-{}-{}",
            hint.trim_matches('-'),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut options = self.options(&name);
        options.probe = false;
        let bare = S3Store::connect(options.clone()).await?;
        bare.client()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(|e| StoreError::BucketUnavailable {
                bucket: name.clone(),
                message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            })?;
        options.probe = true;
        S3Store::connect(options).await
    }

    /// Deletes every object of the store's bucket, then the bucket (for outside endpoints; moto
    /// forgets everything when it stops).
    pub async fn remove_bucket(&self, store: &S3Store) -> Result<()> {
        let client = store.client();
        let bucket = store.bucket();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| remove_error(bucket, &e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    client
                        .delete_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| remove_error(bucket, &e))?;
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        client
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| remove_error(bucket, &e))?;
        Ok(())
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn remove_error<E: std::error::Error + 'static>(bucket: &str, e: &E) -> StoreError {
    StoreError::BucketUnavailable {
        bucket: bucket.to_owned(),
        message: format!(
            "removing the test bucket failed: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ),
    }
}

fn setup_error(message: &str) -> StoreError {
    StoreError::S3 {
        op: "start moto_server",
        key: String::new(),
        status: None,
        code: None,
        message: message.to_owned(),
    }
}

fn start_moto() -> Result<TestS3> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| setup_error(&format!("no free port on 127.0.0.1: {e}")))?
        .port();
    let port_arg = port.to_string();
    let spawn = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .args(["-H", "127.0.0.1", "-p", &port_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    // the repository's launcher (moto with atomic conditional writes, see the script), else the
    // stock `moto_server` script or module when this crate is used outside the repository
    let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/moto-server.py");
    let spawned = if std::path::Path::new(launcher).is_file() {
        spawn("python3", &[launcher])
    } else {
        spawn("moto_server", &[]).or_else(|_| spawn("python3", &["-m", "moto.server"]))
    };
    let mut child = spawned
        .map_err(|e| {
            setup_error(&format!(
                "cannot run `moto_server` ({e}): install it with `python3 -m pip install 'moto[server]'`, \
                 or set WEFT_TEST_S3_ENDPOINT (and the AWS_* variables) to use another S3 server"
            ))
        })?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(setup_error(&format!(
                "moto_server exited at start-up ({status}); is it installed? \
                 `python3 -m pip install 'moto[server]'`, or set WEFT_TEST_S3_ENDPOINT"
            )));
        }
        if moto_answers(addr) {
            break;
        }
        if started.elapsed() > START_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(setup_error("moto_server did not answer within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(TestS3 {
        endpoint: format!("http://{addr}"),
        credentials: Some(("testing".to_owned(), "testing".to_owned())),
        region: Some("us-east-1".to_owned()),
        child: Some(child),
    })
}

/// True when an HTTP request to `addr` gets a response.
fn moto_answers(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
