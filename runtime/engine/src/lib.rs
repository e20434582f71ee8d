//! weft-engine: runs runnable tasks as sandboxed WebAssembly components. The only crate of weft
//! that depends on wasmtime.
