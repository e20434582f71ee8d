//! weft-plugins: the plugins of `plugins/` (a separate wasm32-wasip2 workspace), built by this
//! crate's build script as part of the normal `cargo build` / `cargo test`.
//!
//! The core plugin is embedded in the binary ([`CORE`]), so `weft` runs Kestra's core tasks with
//! no set-up; the test-only fixture plugin is only referred to by path ([`FIXTURES_PATH`]).

/// The core plugin component (`plugins/core`): Log, Return, Echo, Sleep, HTTP and storage tasks.
pub static CORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/core.wasm"));

/// Path of the built core plugin component.
pub const CORE_PATH: &str = concat!(env!("OUT_DIR"), "/core.wasm");

/// Path of the built test-only fixture component (`plugins/fixtures`, `weft.test.Misbehave`).
pub const FIXTURES_PATH: &str = concat!(env!("OUT_DIR"), "/fixtures.wasm");

/// Path of the plugin built from `examples/plugin-template` (`com.example.Hello`), for tests.
pub const TEMPLATE_PATH: &str = concat!(env!("OUT_DIR"), "/hello.wasm");
