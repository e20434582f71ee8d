//! The Toggle task (`io.kestra.plugin.core.trigger.Toggle`): enables or disables a trigger of a
//! flow at run time, in the trigger's toggle document ([`ToggleRepo`]). It writes to storage, so
//! the runner performs it itself (a host task, see [`super::host_tasks`]); it has no outputs.
//!
//! Properties (Kestra's): `namespace` and `flowId` (default: the execution's flow), `trigger`
//! (required) and `enabled` (default false, i.e. a Toggle without `enabled` disables). Strings are
//! rendered with the task's variables (without `secret()`/`kv()`). The target flow must exist and
//! have the trigger, else the task fails saying which is missing.

use chrono::Utc;
use serde_json::Value as Json;
use weft_executor::RunTask;
use weft_store::repo::ToggleRepo;

use super::Runner;
use super::host_tasks::task_var;

/// The canonical type name of the Toggle task.
pub(crate) const TOGGLE_TYPE: &str = "io.kestra.plugin.core.trigger.Toggle";

/// What one Toggle asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    namespace: String,
    flow_id: String,
    trigger: String,
    enabled: bool,
}

impl Runner {
    fn toggle_request(&self, task: &RunTask) -> Result<Request, String> {
        let flow_var = |key: &str| task_var(task, &format!("/flow/{key}"));
        let namespace = match self.host_str(task, "namespace")? {
            Some(n) => n,
            None => flow_var("namespace").ok_or("`namespace` is not set")?,
        };
        let flow_id = match self.host_str(task, "flowId")? {
            Some(f) => f,
            None => flow_var("id").ok_or("`flowId` is not set")?,
        };
        let trigger = self
            .host_str(task, "trigger")?
            .filter(|t| !t.is_empty())
            .ok_or("`trigger` is required")?;
        let enabled = match task.properties.get("enabled") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(Json::String(_)) => {
                match self.host_str(task, "enabled")?.as_deref().map(str::trim) {
                    Some("true") => true,
                    Some("false") => false,
                    other => {
                        return Err(format!(
                            "`enabled` must be true or false, got `{}`",
                            other.unwrap_or_default()
                        ));
                    }
                }
            }
            Some(other) => return Err(format!("`enabled` must be a boolean, got {other}")),
        };
        Ok(Request {
            namespace,
            flow_id,
            trigger,
            enabled,
        })
    }

    /// Performs a Toggle attempt; returns its log line.
    pub(super) async fn run_toggle(&self, task: &RunTask) -> Result<String, String> {
        let req = self.toggle_request(task)?;
        let executor = self
            .catalog
            .resolve(&req.namespace, &req.flow_id)
            .await
            .map_err(|e| match e {
                super::RunError::UnknownFlow(_) => format!(
                    "cannot toggle trigger `{}`: flow `{}.{}` does not exist",
                    req.trigger, req.namespace, req.flow_id
                ),
                other => other.to_string(),
            })?;
        let flow = executor.flow();
        let Some(trigger) = flow.triggers.iter().find(|t| t.id == req.trigger) else {
            return Err(format!(
                "cannot toggle trigger `{}`: flow `{}.{}` has no trigger `{}`",
                req.trigger, req.namespace, req.flow_id, req.trigger
            ));
        };
        ToggleRepo::new(self.store.clone())
            .set(
                &req.namespace,
                &req.flow_id,
                &req.trigger,
                !req.enabled,
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let what = if req.enabled { "enabled" } else { "disabled" };
        let mut line = format!(
            "trigger `{}` of flow `{}.{}` {what}",
            req.trigger, req.namespace, req.flow_id
        );
        if trigger.disabled && req.enabled {
            line.push_str(" (it stays disabled: `disabled: true` in the flow's source wins)");
        }
        Ok(line)
    }
}
