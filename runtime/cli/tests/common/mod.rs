//! Real `weft server` processes for the tests of this folder.
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

/// A `weft server` process on `store`, ticking every `tick` seconds (0: never), with leases of
/// 3 s.
pub struct Instance {
    child: Child,
    pub url: String,
}

impl Instance {
    pub fn start(store: &Path, tick: u32) -> Instance {
        Instance::start_on(&store.display().to_string(), "127.0.0.1:0", tick, &[])
    }

    /// On storage URL `storage`, listening on `listen`, with more environment variables.
    pub fn start_on(storage: &str, listen: &str, tick: u32, env: &[(&str, &str)]) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["server", "--listen", listen, "--storage", storage])
            .env("WEFT_LEASE_TTL_SECS", "3")
            .env("WEFT_TICK_INTERVAL_SECS", tick.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
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

    /// Kills the process with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
