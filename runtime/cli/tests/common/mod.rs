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

/// A `weft server` process on `store`, ticking every `tick` seconds (0: never).
pub struct Instance {
    child: Child,
    pub url: String,
}

impl Instance {
    pub fn start(store: &Path, tick: u32) -> Instance {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["server", "--listen", "127.0.0.1:0", "--storage"])
            .arg(store)
            .env("WEFT_LEASE_TTL_SECS", "3")
            .env("WEFT_TICK_INTERVAL_SECS", tick.to_string())
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
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
