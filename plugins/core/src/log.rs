//! `io.kestra.plugin.core.log.Log`.

use serde::Deserialize;
use weft_sdk::schemars::JsonSchema;
use weft_sdk::{Context, Error, Level, Property, Result, Task};

use crate::NoOutputs;

/// A message: one string or a list of strings.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(untagged)]
pub(crate) enum Message {
    /// One message.
    One(String),
    /// Several messages, one log line each.
    Many(Vec<String>),
}

/// Log a message in the task logs.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Log {
    /// The message(s) to log; may hold expressions.
    message: Message,
    /// TRACE, DEBUG, INFO (default), WARN or ERROR.
    #[serde(default)]
    level: Option<Property<String>>,
}

pub(crate) fn level_of(ctx: &Context, level: &Option<Property<String>>) -> Result<Level> {
    match level {
        None => Ok(Level::Info),
        Some(p) => {
            let s = ctx.render(p)?;
            Level::parse(&s).ok_or_else(|| {
                Error::invalid(format!(
                    "level: {s} is not one of TRACE, DEBUG, INFO, WARN, ERROR"
                ))
            })
        }
    }
}

impl Task for Log {
    const TYPE: &'static str = "io.kestra.plugin.core.log.Log";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.log.Log"];
    const DESCRIPTION: &'static str = "Log a message in the task logs.";
    type Outputs = NoOutputs;

    fn run(self, ctx: &Context) -> Result<NoOutputs> {
        let level = level_of(ctx, &self.level)?;
        let messages = match self.message {
            Message::One(m) => vec![m],
            Message::Many(ms) => ms,
        };
        for m in messages {
            ctx.log(level, &ctx.render_str(&m)?);
        }
        Ok(NoOutputs {})
    }
}
