//! Flow triggers in a session: when an execution terminates, the flows whose Flow triggers match
//! it (see [`weft_flow::flow_trigger`]) get an execution, started in the same session.
//!
//! - Candidates are the flows of the [`Catalog`]: those added and those its [`FlowSource`]
//!   lists ([`FlowSource::triggered`]), listed once per catalog. A flow never triggers itself;
//!   disabled flows and triggers never fire, nor do triggers disabled at run time (their
//!   toggle document, [`ToggleRepo`], read only for a trigger whose conditions match).
//! - A trigger with a `MultipleCondition` or `preconditions` keeps its state in storage,
//!   `triggers/{namespace}/{flowId}/{triggerId}.json` ([`TriggerRepo`]), read and written back
//!   with a version condition (re-applied on a conflict), so instances never lose each other's
//!   results and exactly one of them sees the last condition met.
//! - The new execution's id derives from the source execution, its end and the trigger, and is
//!   created only if absent: an end handled twice starts one execution.
//! - A trigger that cannot be evaluated (unsupported condition type) or whose `inputs` do not
//!   render is logged and does not fire.
//!
//! [`FlowSource`]: super::FlowSource
//! [`FlowSource::triggered`]: super::FlowSource::triggered

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use indexmap::IndexMap;
use weft_executor::Executor;
use weft_executor::execution::CORRELATION_LABEL;
use weft_executor::inputs::RawInput;
use weft_flow::flow_trigger::{FlowTrigger, FlowTriggerState, Source};
use weft_flow::model::Flow;
use weft_store::repo::{ToggleRepo, TriggerRepo};

use super::control::Session;
use super::{Catalog, RunError, Runner, StartRequest};

/// A flow with enabled Flow triggers.
pub(crate) struct Listener {
    executor: Arc<Executor>,
    triggers: Vec<FlowTrigger>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flow = self.executor.flow();
        f.debug_struct("Listener")
            .field("flow", &format!("{}.{}", flow.namespace, flow.id))
            .field("triggers", &self.triggers.len())
            .finish()
    }
}

/// The enabled Flow triggers of an enabled flow (an invalid one is logged and left out).
fn listener(executor: Arc<Executor>) -> Option<Listener> {
    let flow = executor.flow();
    if flow.disabled {
        return None;
    }
    let triggers: Vec<FlowTrigger> = flow
        .triggers
        .iter()
        .filter(|t| !t.disabled)
        .filter_map(|t| match FlowTrigger::from_trigger(t) {
            Ok(ft) => ft,
            Err(e) => {
                tracing::warn!(namespace = %flow.namespace, flow = %flow.id, error = %e,
                    "Flow trigger left out");
                None
            }
        })
        .collect();
    (!triggers.is_empty()).then_some(Listener { executor, triggers })
}

impl Catalog {
    /// The flows with Flow triggers: those added, then those of the source (an added flow
    /// hides the source's flow of the same name). Listed once; a failed listing is not kept.
    pub(crate) async fn listeners(&self) -> Result<Arc<Vec<Listener>>, RunError> {
        self.listeners
            .get_or_try_init(|| async {
                let mut out: Vec<Listener> =
                    self.flows.values().cloned().filter_map(listener).collect();
                if let Some(source) = &self.source {
                    let added: HashSet<&String> = self.flows.keys().collect();
                    for executor in source.triggered().await? {
                        let flow = executor.flow();
                        if !added.contains(&format!("{}.{}", flow.namespace, flow.id)) {
                            out.extend(listener(executor));
                        }
                    }
                }
                Ok(Arc::new(out))
            })
            .await
            .cloned()
    }
}

impl Runner {
    /// Whether trigger `t` of `flow` fires for `src`; for a stateful trigger, `src` is recorded
    /// in its stored state.
    async fn flow_trigger_fires(
        &self,
        flow: &Flow,
        t: &FlowTrigger,
        src: &Source<'_>,
    ) -> Result<bool, String> {
        if !t.matches(src, &self.renderer)? {
            return Ok(false);
        }
        // disabled at run time (API, Toggle task): read only for the triggers that match
        let toggles = ToggleRepo::new(self.store.clone());
        if toggles
            .is_disabled(&flow.namespace, &flow.id, t.trigger_id())
            .await
            .map_err(|e| e.to_string())?
        {
            tracing::debug!(namespace = %flow.namespace, flow = %flow.id,
                trigger = t.trigger_id(), "Flow trigger disabled at run time: not fired");
            return Ok(false);
        }
        if !t.is_stateful() {
            return Ok(true);
        }
        let repo = TriggerRepo::<FlowTriggerState>::new(self.store.clone());
        let renderer = &*self.renderer;
        repo.update(
            &flow.namespace,
            &flow.id,
            t.trigger_id(),
            &FlowTriggerState::default,
            |state| t.record(state, src, renderer),
        )
        .await
        .map(|u| u.result)
        .map_err(|e| e.to_string())
    }
}

impl Session<'_> {
    /// Starts the executions that the end of execution `exec_id` triggers (every problem is
    /// logged: a trigger never stops the session).
    pub(super) async fn fire_flow_triggers(&mut self, exec_id: &str) {
        let runner = self.runner;
        let listeners = match runner.catalog.listeners().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(execution = exec_id, error = %e,
                    "could not list the flows with Flow triggers");
                return;
            }
        };
        if listeners.is_empty() {
            return;
        }
        let Some(live) = self.lives.get_mut(exec_id) else {
            return;
        };
        let executor = live.executor.clone();
        let mut exec = match live.current(&runner.repo(), exec_id).await {
            Ok(c) => c.value.clone(),
            Err(e) => {
                tracing::warn!(execution = exec_id, error = %e, "Flow triggers not evaluated");
                return;
            }
        };
        let context = executor.execution_context(&mut exec);
        let src = Source {
            execution_id: &exec.id,
            termination: exec.state.histories.len(),
            namespace: &exec.namespace,
            flow_id: &exec.flow_id,
            flow_revision: exec.flow_revision,
            state: exec.state.current.as_str(),
            labels: &exec.labels,
            outputs: exec.outputs.as_ref(),
            context: &context,
            // the end, not the time of this call: a takeover that fires them again later sees
            // the conditions as they were
            now: exec.state.end_date.unwrap_or_else(Utc::now),
        };
        let mut fired = Vec::new();
        for l in listeners.iter() {
            let flow = l.executor.flow();
            if flow.namespace == exec.namespace && flow.id == exec.flow_id {
                continue;
            }
            for t in &l.triggers {
                match runner.flow_trigger_fires(flow, t, &src).await {
                    Ok(true) => fired.push((l.executor.clone(), t)),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        namespace = %flow.namespace, flow = %flow.id, trigger = t.trigger_id(),
                        execution = exec_id, error = %e, "Flow trigger not evaluated"
                    ),
                }
            }
        }
        for (executor, t) in fired {
            self.start_triggered(executor, t, &src).await;
        }
    }

    /// Starts the execution trigger `t` asks for (its id derived from the source's end).
    async fn start_triggered(
        &mut self,
        executor: Arc<Executor>,
        t: &FlowTrigger,
        src: &Source<'_>,
    ) {
        let flow = executor.flow();
        let (namespace, flow_id) = (flow.namespace.clone(), flow.id.clone());
        let inputs = match t.render_inputs(src, &self.runner.renderer) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%namespace, flow = %flow_id, trigger = t.trigger_id(),
                    execution = src.execution_id, error = %e,
                    "Flow trigger inputs do not render: no execution created");
                return;
            }
        };
        let mut labels = t.labels().0.clone();
        labels.extend(
            src.labels
                .iter()
                .filter(|l| l.key == CORRELATION_LABEL)
                .cloned(),
        );
        let termination = src.termination.to_string();
        let seed = weft_executor::ids::hash64(&[
            b"flow-trigger",
            src.execution_id.as_bytes(),
            termination.as_bytes(),
            namespace.as_bytes(),
            flow_id.as_bytes(),
            t.trigger_id().as_bytes(),
        ]);
        let req = StartRequest {
            inputs: inputs
                .into_iter()
                .map(|(k, v)| (k, RawInput::Json(v)))
                .collect::<IndexMap<_, _>>(),
            labels,
            trigger: Some(t.trigger_json(src)),
            seed: Some(seed),
            ..StartRequest::default()
        };
        // as Kestra, the trigger's inputs go in as rendered (defaults added, nothing validated)
        match self.start_executor(executor, req, true).await {
            Ok(id) => tracing::info!(%namespace, flow = %flow_id, trigger = t.trigger_id(),
                source = src.execution_id, execution = %id, "Flow trigger fired"),
            // this end was handled before
            Err(RunError::Exists(_)) => {}
            Err(e) => tracing::warn!(%namespace, flow = %flow_id, trigger = t.trigger_id(),
                source = src.execution_id, error = %e, "Flow trigger execution not started"),
        }
    }
}
