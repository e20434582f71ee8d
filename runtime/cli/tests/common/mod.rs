//! Real `weft server` processes for the tests of this folder and the HTTP benchmark.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `weft server` on storage URL `storage`, listening on `listen`, with these environment
/// variables; stdout piped (its first line names the address), stderr dropped, or appended to
/// `$WEFT_TEST_SERVER_LOGS/{port}.log` when that folder is set (to see what a server did).
pub fn server_command(storage: &str, listen: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
    command
        .args(["server", "--listen", listen, "--storage", storage])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(dir) = std::env::var_os("WEFT_TEST_SERVER_LOGS") {
        let name = listen.rsplit(':').next().unwrap_or("server").to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::path::Path::new(&dir).join(format!("{name}.log")))
            .unwrap();
        command.stderr(log).env(
            "WEFT_LOG",
            std::env::var("WEFT_LOG").unwrap_or("info".into()),
        );
    }
    command
}

/// A `weft server` process; killed when dropped.
pub struct Instance {
    child: Child,
    pub url: String,
}

impl Instance {
    /// On the local store `store`, ticking every `tick` seconds (0: never), with leases of 3 s.
    pub fn start(store: &Path, tick: u32) -> Instance {
        Instance::start_on(&store.display().to_string(), "127.0.0.1:0", tick, &[])
    }

    /// As [`Instance::start`], on storage URL `storage`, listening on `listen`, with more
    /// environment variables.
    pub fn start_on(storage: &str, listen: &str, tick: u32, env: &[(&str, &str)]) -> Instance {
        let tick = tick.to_string();
        let mut all = vec![
            ("WEFT_LEASE_TTL_SECS", "3"),
            ("WEFT_TICK_INTERVAL_SECS", tick.as_str()),
        ];
        all.extend_from_slice(env);
        Instance::spawn(server_command(storage, listen, &all))
    }

    /// Runs a [`server_command`] and waits until it listens.
    pub fn spawn(mut command: Command) -> Instance {
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("weft server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Instance { child, url }
    }

    /// Stops the process with SIGTERM (a graceful shutdown) and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        self.child.wait().unwrap()
    }

    /// Kills the process with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a flow through the API of `base`; panics with the answer when it is refused.
pub async fn create_flow(http: &reqwest::Client, base: &str, yaml: &str) {
    create_flow_at(http, &format!("{base}/api/v1"), yaml).await;
}

/// As [`create_flow`], under the API root `api` of a tenant (`{url}/api/v1` or
/// `{url}/api/v1/{tenant}`).
pub async fn create_flow_at(http: &reqwest::Client, api: &str, yaml: &str) {
    let r = http
        .post(format!("{api}/flows"))
        .header("content-type", "application/x-yaml")
        .body(yaml.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// Sends `request` and reads its answer as JSON; panics when either fails.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The environment a `weft server` needs to reach `s3` (credentials for moto; an outside server's
/// come from the caller's AWS variables).
pub fn s3_env(s3: &weft_store::testing::TestS3) -> Vec<(String, String)> {
    let mut env = vec![("AWS_ENDPOINT_URL".to_string(), s3.endpoint().to_string())];
    if s3.is_moto() {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ] {
            env.push((k.to_string(), v.to_string()));
        }
    }
    env
}

/// Borrowed pairs of `env`, as [`server_command`] takes them.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A free TCP port of 127.0.0.1 (free when probed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
