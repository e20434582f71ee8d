//! Per-render state that functions need and minijinja cannot carry: the context's `now`, the
//! seeded RNG, the root variables (for `render()`) and the channel to the host.
//!
//! It lives in a thread-local stack for the duration of one render; nested renders reuse it.
//! Host calls travel over a channel because the host is only borrowed by the caller: when a
//! template calls a host function, the renderer runs minijinja on a scoped thread and serves
//! the calls on the caller's thread, so no borrowed reference ever has to be `'static`.

use super::host::HostRequest;
use chrono::{DateTime, Utc};
use minijinja::Value;
use serde_json::Value as Json;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc::{Sender, channel};

/// A host call and where to send its answer.
pub(crate) struct HostCall {
    pub(crate) request: HostRequest,
    pub(crate) reply: Sender<Result<Json, String>>,
}

/// The state of one render.
pub(crate) struct Scope {
    pub(crate) now: DateTime<Utc>,
    rng: Cell<u64>,
    pub(crate) vars: Value,
    host: Option<Sender<HostCall>>,
}

thread_local! {
    static SCOPES: RefCell<Vec<Rc<Scope>>> = const { RefCell::new(Vec::new()) };
}

/// Pops the scope when dropped.
pub(crate) struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        SCOPES.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// Makes `scope` current until the guard drops.
pub(crate) fn enter(
    now: DateTime<Utc>,
    seed: u64,
    vars: Value,
    host: Option<Sender<HostCall>>,
) -> Guard {
    let scope = Scope {
        now,
        rng: Cell::new(seed),
        vars,
        host,
    };
    SCOPES.with(|s| s.borrow_mut().push(Rc::new(scope)));
    Guard(())
}

/// The current scope, if a render is running on this thread.
pub(crate) fn current() -> Option<Rc<Scope>> {
    SCOPES.with(|s| s.borrow().last().cloned())
}

impl Scope {
    /// The next number of the seeded generator (splitmix64).
    pub(crate) fn next_u64(&self) -> u64 {
        let mut z = self.rng.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.rng.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Asks the host; fails when this render has no host.
    pub(crate) fn host(&self, request: HostRequest) -> Result<Json, String> {
        let name = request.name();
        let Some(tx) = &self.host else {
            return Err(format!(
                "{name}() is not available here: this expression is rendered without access to secrets, storage or the KV store"
            ));
        };
        let (reply, rx) = channel();
        tx.send(HostCall { request, reply })
            .map_err(|_| format!("{name}(): the host is gone"))?;
        rx.recv()
            .map_err(|_| format!("{name}(): the host did not answer"))?
    }
}

/// A host request from the current scope, or the "not available" error.
pub(crate) fn host_call(request: HostRequest) -> Result<Json, String> {
    match current() {
        Some(s) => s.host(request),
        None => Err(format!("{}() is not available here", request.name())),
    }
}
