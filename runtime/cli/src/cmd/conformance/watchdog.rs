//! A watchdog over the cases of a run: a case still running past its limit ends the process with
//! a failure that names it. Every wait inside a case has its own deadline; this catches what
//! none of them covers (a storage request or a server that never answers), so that a stuck case
//! shows up as a failure within minutes instead of a silent hang until CI's own limit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Watches the case being run (see [`Watchdog::enter`]).
#[derive(Debug)]
pub(crate) struct Watchdog {
    current: Arc<Mutex<Option<(String, Instant)>>>,
}

impl Watchdog {
    /// Starts the watching thread: it checks every second whether the current case has run
    /// longer than `limit`.
    pub(crate) fn start(label: &str, limit: Duration) -> Watchdog {
        let current: Arc<Mutex<Option<(String, Instant)>>> = Arc::default();
        let watched = Arc::downgrade(&current);
        let label = label.to_string();
        std::thread::spawn(move || {
            while let Some(current) = watched.upgrade() {
                let stuck = current
                    .lock()
                    .ok()
                    .and_then(|c| c.clone())
                    .filter(|(_, since)| since.elapsed() > limit);
                drop(current);
                if let Some((name, _)) = stuck {
                    println!(
                        "FAILED  {name}: still running after {} s (the case limit, --case-limit-secs); the run stops here",
                        limit.as_secs()
                    );
                    println!("{label}: stopped by a case that did not end");
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Watchdog { current }
    }

    /// Case `name` starts now.
    pub(crate) fn enter(&self, name: &str) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some((name.to_string(), Instant::now()));
        }
    }

    /// The current case ended.
    pub(crate) fn leave(&self) {
        if let Ok(mut c) = self.current.lock() {
            *c = None;
        }
    }
}
