//! `io.kestra.plugin.core.debug.Return`, `Echo` and `io.kestra.plugin.core.flow.Sleep`.

use serde::{Deserialize, Serialize};
use weft_sdk::schemars::JsonSchema;
use weft_sdk::{Context, Error, Property, Result, Task};

use crate::NoOutputs;
use crate::duration::parse_duration;
use crate::log::level_of;

/// Return a value, rendered from a template.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Return {
    /// The template of the value to return.
    #[serde(default)]
    format: Option<Property<String>>,
}

/// Outputs of `Return`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct ReturnOutputs {
    /// The rendered value.
    value: Option<String>,
}

impl Task for Return {
    const TYPE: &'static str = "io.kestra.plugin.core.debug.Return";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.debugs.Return"];
    const DESCRIPTION: &'static str =
        "Return a value (for debugging): `format` rendered into output `value`.";
    type Outputs = ReturnOutputs;

    fn run(self, ctx: &Context) -> Result<ReturnOutputs> {
        let value = match &self.format {
            Some(f) => Some(ctx.render(f)?),
            None => None,
        };
        Ok(ReturnOutputs { value })
    }
}

/// Log a rendered template (legacy; use Log).
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Echo {
    /// The template to log.
    format: Property<String>,
    /// TRACE, DEBUG, INFO (default), WARN or ERROR.
    #[serde(default)]
    level: Option<Property<String>>,
}

impl Task for Echo {
    const TYPE: &'static str = "io.kestra.plugin.core.debug.Echo";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.debugs.Echo"];
    const DESCRIPTION: &'static str = "Log a message (legacy: use io.kestra.plugin.core.log.Log).";
    type Outputs = NoOutputs;

    fn run(self, ctx: &Context) -> Result<NoOutputs> {
        let level = level_of(ctx, &self.level)?;
        ctx.log(level, &ctx.render(&self.format)?);
        Ok(NoOutputs {})
    }
}

/// Wait for a duration.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Sleep {
    /// ISO-8601 duration, e.g. `PT5S`.
    duration: Property<String>,
}

impl Task for Sleep {
    const TYPE: &'static str = "io.kestra.plugin.core.flow.Sleep";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.flows.Sleep"];
    const DESCRIPTION: &'static str = "Wait for a duration (ISO-8601, e.g. PT5S).";
    type Outputs = NoOutputs;

    fn run(self, ctx: &Context) -> Result<NoOutputs> {
        let text = ctx.render(&self.duration)?;
        let d = parse_duration(&text).map_err(|e| Error::invalid(format!("duration: {e}")))?;
        std::thread::sleep(d);
        Ok(NoOutputs {})
    }
}
