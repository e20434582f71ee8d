//! Executions driven by this process: each start (or action on a stored execution) gets a tokio
//! task with its own [`Session`] of the runner, which advances the execution (and the subflows
//! it starts) to its end, writing every step to storage. While it runs, kill and resume
//! requests reach it through the session's sender; once it ended, the task is gone and later
//! actions load the execution from storage again, here or on any other instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use tokio::sync::{Notify, oneshot, watch};
use weft_executor::{Event, Execution};
use weft_store::DynStore;

use super::App;
use super::store_flows::StoreFlows;
use crate::lease::{Lease, LeaseError};
use crate::runner::control::{Session, SessionSender};
use crate::runner::{Catalog, Claim, RunError, Runner, SessionDirectory, StartRequest};

/// How an execution comes into a driver.
#[derive(Debug)]
pub(crate) enum Init {
    /// A new execution of a flow.
    Start {
        namespace: String,
        flow_id: String,
        req: StartRequest,
    },
    /// A stored execution, and what to do with it.
    Load { id: String, action: Action },
    /// The executions of an expired lease this process claimed (see [`crate::lease`]).
    TakeOver { lease: Lease },
}

/// An action on a stored execution.
#[derive(Debug)]
pub(crate) enum Action {
    Restart,
    Replay {
        task_run_id: String,
    },
    /// Resume with `onResume` inputs as sent (typed and validated by the session).
    Resume {
        req: StartRequest,
    },
    Kill,
}

/// A driven execution: its document when the driver took it (CREATED for a start, RESTARTED
/// for a restart, ...), and its final document once it ended.
pub(crate) struct Driven {
    pub(crate) first: Execution,
    pub(crate) done: watch::Receiver<Option<Execution>>,
}

/// The drivers of this process.
#[derive(Default)]
pub(crate) struct Drivers {
    /// `tenant/executionId` -> the sender of the session driving it.
    live: Mutex<HashMap<String, SessionSender>>,
    running: AtomicUsize,
    idle: Notify,
}

impl Drivers {
    /// The sender of the session of this process that drives the execution, if any.
    pub(crate) fn sender(&self, tenant: &str, id: &str) -> Option<SessionSender> {
        self.live
            .lock()
            .ok()
            .and_then(|m| m.get(&format!("{tenant}/{id}")).cloned())
    }

    /// Sends `event` to the execution if a driver of this process has it.
    pub(crate) fn send(&self, tenant: &str, id: &str, event: Event) -> bool {
        self.sender(tenant, id).is_some_and(|s| s.send(id, event))
    }

    /// Asks every driver of this process to write what it holds and hand its lease back (see
    /// `drive`).
    pub(crate) fn stop_all(&self) {
        if let Ok(m) = self.live.lock() {
            for sender in m.values() {
                sender.stop();
            }
        }
    }

    /// Waits until no driver runs, at most `grace`; returns how many still run.
    pub(crate) async fn wait_idle(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        loop {
            let notified = self.idle.notified();
            let n = self.running.load(Ordering::SeqCst);
            if n == 0 {
                return 0;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return n;
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

/// The drivers of this process for one tenant, as the runner's Resume tasks look them up.
struct TenantDrivers {
    app: Arc<App>,
    tenant: String,
}

impl SessionDirectory for TenantDrivers {
    fn sender(&self, id: &str) -> Option<SessionSender> {
        self.app.drivers.sender(&self.tenant, id)
    }
}

/// Starts a driver for `init` over the tenant's `store`; returns once the execution is in
/// storage (or could not be created), with a receiver of its end.
pub(crate) async fn spawn(
    app: Arc<App>,
    tenant: String,
    store: DynStore,
    mut init: Init,
) -> Result<Driven, RunError> {
    // a new execution's id is known before it is created, so its lease is written first: a
    // process that dies right after creating it leaves a lease that a tick takes over (one
    // that dies before creating it leaves a lease of nothing, which the tick deletes). Not
    // with FILE inputs: their upload may outlast the lease, which a tick would then claim.
    // a start whose caller answers only at its end, with a random id, is kept in memory until
    // its first write, and takes its lease then (see `LeaseOnFirstWrite`)
    let in_memory = match &mut init {
        Init::Start { req, .. } => {
            req.defer_create &= req.seed.is_none() && req.files.is_empty();
            req.defer_create
        }
        _ => false,
    };
    let new_id = match &mut init {
        Init::Start { req, .. } if !in_memory => {
            let seed = *req.seed.get_or_insert_with(rand::random::<u64>);
            req.files
                .is_empty()
                .then(|| weft_executor::ids::execution_id(seed))
        }
        _ => None,
    };
    let first_write_lease = Arc::new(Mutex::new(None));
    // no lease, no new execution: one created without a lease would be driven by nobody if this
    // process died (the caller gets the error and may try again, with its idempotency key)
    let new_lease = match &new_id {
        Some(id) => acquire_new(&app, &tenant, id).await?,
        None => None,
    };
    let (first_tx, first_rx) = oneshot::channel::<Result<Execution, RunError>>();
    let (done_tx, done_rx) = watch::channel(None);
    app.drivers.running.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let source = Arc::new(StoreFlows::new(&app, &tenant, store.clone()));
        let mut runner = Runner::new(
            app.setup.engine.clone(),
            store,
            app.setup.renderer.clone(),
            Catalog::from_source(source),
        )
        .with_flush_interval(app.flush_interval)
        .with_attempt_stats(app.metrics.attempts.clone());
        if in_memory {
            runner = runner.with_claim(Arc::new(LeaseOnFirstWrite {
                app: app.clone(),
                tenant: tenant.clone(),
                slot: first_write_lease.clone(),
            }));
        }
        let runner = runner
            .with_dispatch(app.dispatch_for(&tenant))
            .with_sessions(Arc::new(TenantDrivers {
                app: app.clone(),
                tenant: tenant.clone(),
            }));
        let mut session = runner.session();
        let taking_over = matches!(init, Init::TakeOver { .. });
        let mut lease = match (&init, &new_id) {
            (Init::TakeOver { lease }, _) => Some(lease.clone()),
            (_, Some(_)) => new_lease,
            _ => None,
        };
        match take(&mut session, init).await {
            Err(e) => {
                if taking_over {
                    tracing::error!(error = %e, "could not take the executions over");
                }
                // a start that created nothing (refused inputs, an id that exists: a repeated
                // idempotent request) or a takeover of executions deleted since: nothing to hold;
                // any other takeover failure keeps the lease for a later tick to try again
                let nothing_held = !taking_over || matches!(e, RunError::UnknownExecution(_));
                if let Some(lease) = lease.as_ref().filter(|_| nothing_held) {
                    app.leases.release(lease).await;
                }
                let _ = first_tx.send(Err(e));
            }
            Ok(first) => {
                let id = first.id.clone();
                let key = format!("{tenant}/{id}");
                if let Ok(mut m) = app.drivers.live.lock() {
                    m.insert(key.clone(), session.sender());
                }
                if taking_over {
                    app.metrics.taken_over(session.unfinished().len());
                } else {
                    app.metrics.execution_started();
                }
                let _ = first_tx.send(Ok(first));
                if lease.is_none() && new_id.is_none() && !in_memory {
                    // an action on a stored execution, or a start with files
                    lease = acquire(&app, &tenant, &id, session.unfinished()).await;
                }
                let lease = Leases {
                    held: lease,
                    first_write: first_write_lease,
                };
                if let Err(e) = drive(&app, &mut session, &id, lease, &done_tx).await {
                    tracing::error!(execution = %id, error = %e, "the execution's driver stopped");
                }
                if let Ok(mut m) = app.drivers.live.lock() {
                    m.remove(&key);
                }
            }
        }
        drop(session);
        if app.drivers.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            app.drivers.idle.notify_waiters();
        }
    });
    let first = first_rx.await.map_err(|_| {
        RunError::Storage("the execution's driver stopped before it started".into())
    })??;
    Ok(Driven {
        first,
        done: done_rx,
    })
}

/// Takes the lease of an execution kept in memory before its first write, for the driver to
/// renew: from then on another instance carries it on if this one dies.
struct LeaseOnFirstWrite {
    app: Arc<App>,
    tenant: String,
    slot: Arc<Mutex<Option<Lease>>>,
}

impl Claim for LeaseOnFirstWrite {
    fn claim<'a>(&'a self, id: &'a str) -> weft_engine::BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            match acquire_new(&self.app, &self.tenant, id).await? {
                Some(lease) => {
                    if let Ok(mut slot) = self.slot.lock() {
                        *slot = Some(lease);
                    }
                    Ok(())
                }
                // its random id is held by another live process: never written twice
                None => Err(RunError::Exists(id.to_string())),
            }
        })
    }
}

/// The lease a driver renews: the one it started with, or the one its execution kept in memory
/// took at its first write.
struct Leases {
    held: Option<Lease>,
    first_write: Arc<Mutex<Option<Lease>>>,
}

impl Leases {
    /// The lease held now, if any.
    fn current(&mut self) -> Option<&Lease> {
        if self.held.is_none() {
            self.held = self.first_write.lock().ok().and_then(|mut s| s.take());
        }
        self.held.as_ref()
    }
}

/// Takes the lease of a new execution `id` before it is created; `None` when another live
/// process holds it (a repeated start of the same execution: it exists or is being created there),
/// an error when storage failed.
async fn acquire_new(app: &App, tenant: &str, id: &str) -> Result<Option<Lease>, RunError> {
    match app
        .leases
        .acquire(tenant, id, vec![id.to_string()], Utc::now())
        .await
    {
        Ok(lease) => Ok(Some(lease)),
        Err(LeaseError::Lost(_)) => Ok(None),
        Err(e) => Err(RunError::Storage(format!(
            "could not write the lease of execution {id}, so it was not created: {e}"
        ))),
    }
}

/// Takes the lease of a new driver; `None` when another live process holds the key (the
/// execution is then driven here without a lease, as an action on it needs) or storage failed.
async fn acquire(app: &App, tenant: &str, id: &str, executions: Vec<String>) -> Option<Lease> {
    match app.leases.acquire(tenant, id, executions, Utc::now()).await {
        Ok(lease) => Some(lease),
        Err(LeaseError::Lost(_)) => None,
        Err(e) => {
            tracing::warn!(execution = %id, error = %e, "no lease: the execution is not taken over if this process dies");
            None
        }
    }
}

/// Drives the session until every execution in it ended, renewing the lease as it goes; reports
/// the end of execution `id` on `done` as soon as it ends. Stops at once when another instance
/// took the lease over.
async fn drive(
    app: &App,
    session: &mut Session<'_>,
    id: &str,
    mut lease: Leases,
    done: &watch::Sender<Option<Execution>>,
) -> Result<(), RunError> {
    let renew_every = app.leases.ttl() / 3;
    let mut reported = false;
    loop {
        session
            .drive_until(Instant::now() + renew_every, |s| {
                s.all_done() || (!reported && s.is_done(id))
            })
            .await?;
        if !reported
            && session.is_done(id)
            && let Some(exec) = session.execution(id)
        {
            app.metrics.execution_ended(exec.state.current.as_str());
            let _ = done.send(Some(exec.clone()));
            reported = true;
        }
        if session.all_done() {
            break;
        }
        if session.stopped() {
            // the process shuts down: what the session held is written; the lease expires now,
            // so the next tick on another instance carries the executions on
            if let Some(held) = lease.current() {
                let unfinished = session.unfinished();
                match app.leases.hand_back(held, unfinished, Utc::now()).await {
                    Ok(_) => tracing::info!(execution = %id, "handed back to the pool"),
                    Err(e) => {
                        tracing::warn!(execution = %id, error = %e, "could not hand the lease back; it expires on its own");
                    }
                }
            }
            return Ok(());
        }
        let Some(held) = lease.current() else {
            continue;
        };
        match app
            .leases
            .renew(held, session.unfinished(), Utc::now())
            .await
        {
            Ok(renewed) => lease.held = Some(renewed),
            Err(LeaseError::Lost(root)) => {
                tracing::warn!(%root, "another instance took these executions over: this driver stops");
                return Ok(());
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the lease; trying again"),
        }
    }
    if let Some(lease) = lease.current() {
        app.leases.release(lease).await;
    }
    Ok(())
}

/// Puts the execution of `init` into the session; returns its document as it is now.
async fn take(session: &mut Session<'_>, init: Init) -> Result<Execution, RunError> {
    match init {
        Init::Start {
            namespace,
            flow_id,
            req,
        } => {
            let id = session.start(&namespace, &flow_id, req, false).await?;
            session
                .execution(&id)
                .cloned()
                .ok_or(RunError::UnknownExecution(id))
        }
        Init::TakeOver { lease } => {
            let doc = lease.doc();
            session.take_over(&doc.executions).await?;
            tracing::info!(root = %doc.root, executions = doc.executions.len(), "took over the executions of an expired lease");
            let first = session
                .execution(&doc.root)
                .or_else(|| session.executions().into_iter().next())
                .cloned();
            first.ok_or_else(|| RunError::UnknownExecution(doc.root.clone()))
        }
        Init::Load { id, action } => {
            let exec = session.load(&id).await?;
            match action {
                Action::Restart => session.restart(&id).await,
                Action::Replay { task_run_id } => session.replay(&id, &task_run_id).await,
                Action::Resume { req } => {
                    if exec.state.current != weft_executor::State::Paused {
                        return Err(RunError::InvalidState(format!(
                            "execution {id} is {}, only a PAUSED execution can be resumed",
                            exec.state.current.as_str()
                        )));
                    }
                    session.resume_with(&id, req).await?;
                    Ok(exec)
                }
                Action::Kill => {
                    if exec.state.current.is_terminal() {
                        return Err(RunError::InvalidState(format!(
                            "execution {id} already ended ({})",
                            exec.state.current.as_str()
                        )));
                    }
                    session.sender().send(&id, Event::Kill);
                    Ok(exec)
                }
            }
        }
    }
}

/// Waits for the end of a driven execution, at most `limit`; true when it ended.
pub(crate) async fn wait_done(
    done: &mut watch::Receiver<Option<Execution>>,
    limit: Duration,
) -> bool {
    let ended = tokio::time::timeout(limit, done.wait_for(Option::is_some)).await;
    matches!(ended, Ok(Ok(_)))
}
