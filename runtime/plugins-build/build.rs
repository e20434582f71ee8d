//! Builds the wasm32-wasip2 workspace in `plugins/` with its own target directory and copies the
//! components to `OUT_DIR` (STYLE.md pattern 10).

use std::path::{Path, PathBuf};
use std::process::{Command, exit};

const TARGET: &str = "wasm32-wasip2";
/// (crate artifact name, file name in OUT_DIR)
const GUESTS: &[(&str, &str)] = &[
    ("weft_plugin_core", "core.wasm"),
    ("weft_plugin_fixtures", "fixtures.wasm"),
    ("weft_plugin_hello", "hello.wasm"),
];

fn fail(msg: &str) -> ! {
    println!("cargo::error={msg}");
    eprintln!("error: {msg}");
    exit(1)
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("../..");
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());

    for p in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugins/core",
        "plugins/fixtures",
        "sdk/src",
        "sdk/Cargo.toml",
        "wit",
        "examples/plugin-template/src",
        "examples/plugin-template/Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(p).display());
    }
    println!("cargo::rerun-if-env-changed=WEFT_PLUGINS_TARGET_DIR");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !target_installed() {
        fail(&format!(
            "the Rust target {TARGET} is not installed; weft's plugins are built for it. Run: rustup target add {TARGET}"
        ));
    }
    // One wasm target directory per profile (target/debug/wasm-plugins), not one per OUT_DIR:
    // `cargo clippy` and `cargo test` run this script with different OUT_DIRs and would otherwise
    // each build the plugins from scratch. The nested cargo locks the directory itself.
    let target_dir = std::env::var_os("WEFT_PLUGINS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| match out_dir.ancestors().nth(3) {
            Some(profile_dir) if out_dir.ends_with("out") => profile_dir.join("wasm-plugins"),
            _ => out_dir.join("wasm-target"),
        });

    build(&cargo, &plugins, &target_dir);
    // the plugin template, built as its README says, so a test can run it
    build(&cargo, &root.join("examples/plugin-template"), &target_dir);
    for (artifact, name) in GUESTS {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{artifact}.wasm"));
        copy_if_changed(&built, &out_dir.join(name));
    }
}

fn build(cargo: &str, dir: &Path, target_dir: &Path) {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PRIMARY_PACKAGE");
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => fail(&format!(
            "could not run {cargo} to build {}: {e}",
            dir.display()
        )),
    };
    if !status.success() {
        fail(&format!(
            "building the plugins in {} failed (see the output above); if the target is missing run: rustup target add {TARGET}",
            dir.display()
        ));
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = match std::fs::read(from) {
        Ok(b) => b,
        Err(e) => fail(&format!("{} was not built: {e}", from.display())),
    };
    if std::fs::read(to).ok().as_deref() == Some(new.as_slice()) {
        return;
    }
    if let Err(e) = std::fs::write(to, &new) {
        fail(&format!("could not write {}: {e}", to.display()));
    }
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return true; // let cargo say what is wrong
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
}
