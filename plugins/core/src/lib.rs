//! weft's core runnable tasks, as one WebAssembly component: the tasks of Kestra's core plugin
//! (`io.kestra.plugin.core.*`) under their current names and their legacy aliases
//! (`io.kestra.core.tasks.*`).

mod debug;
mod duration;
mod glob;
mod http;
mod log;
mod storage;

use weft_sdk::{Plugin, TaskDef};

struct Core;

impl Plugin for Core {
    const NAME: &'static str = "core";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn tasks() -> Vec<TaskDef> {
        vec![
            TaskDef::of::<log::Log>(),
            TaskDef::of::<debug::Return>(),
            TaskDef::of::<debug::Echo>(),
            TaskDef::of::<debug::Sleep>(),
            TaskDef::of::<http::Request>(),
            TaskDef::of::<http::Download>(),
            TaskDef::of::<storage::Write>(),
            TaskDef::of::<storage::Concat>(),
            TaskDef::of::<storage::Split>(),
            TaskDef::of::<storage::Size>(),
            TaskDef::of::<storage::Delete>(),
            TaskDef::of::<storage::LocalFiles>(),
        ]
    }
}

weft_sdk::export!(Core);

/// Outputs of a task that has none.
#[derive(serde::Serialize, weft_sdk::schemars::JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct NoOutputs {}
