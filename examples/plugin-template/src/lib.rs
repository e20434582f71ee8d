//! A weft plugin with one task type, `com.example.Hello`. Build it with
//! `cargo build --release --target wasm32-wasip2` and copy
//! `target/wasm32-wasip2/release/weft_plugin_hello.wasm` into weft's plugins directory.

use serde::{Deserialize, Serialize};
use weft_sdk::schemars::JsonSchema;
use weft_sdk::{Context, Plugin, Property, Task, TaskDef};

/// Greets someone.
///
/// ```yaml
/// - id: greet
///   type: com.example.Hello
///   name: "{{ inputs.name }}"
///   times: 2
/// ```
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Hello {
    /// Who to greet; may be an expression.
    name: Property<String>,
    /// How many times to say it (default 1).
    #[serde(default)]
    times: Option<Property<u32>>,
}

/// What `Hello` returns: `{{ outputs.greet.greeting }}`, `{{ outputs.greet.uri }}`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
struct HelloOutputs {
    /// The greeting.
    greeting: String,
    /// The greeting, as a file in internal storage.
    uri: String,
}

impl Task for Hello {
    const TYPE: &'static str = "com.example.Hello";
    const DESCRIPTION: &'static str = "Greets someone.";
    type Outputs = HelloOutputs;

    fn run(self, ctx: &Context) -> weft_sdk::Result<HelloOutputs> {
        let name = ctx.render(&self.name)?;
        let times = match &self.times {
            Some(t) => ctx.render(t)?,
            None => 1,
        };
        let greeting = vec![format!("Hello, {name}!"); times as usize].join(" ");
        ctx.info(&greeting);
        ctx.counter("greetings", f64::from(times), &[("task", "hello")]);
        let uri = ctx.write_file("greeting.txt", greeting.as_bytes())?;
        ctx.output_file("greeting.txt", &uri);
        Ok(HelloOutputs { greeting, uri })
    }
}

struct HelloPlugin;

impl Plugin for HelloPlugin {
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn tasks() -> Vec<TaskDef> {
        vec![TaskDef::of::<Hello>()]
    }
}

weft_sdk::export!(HelloPlugin);
