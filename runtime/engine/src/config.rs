//! Every tunable of the engine, in one place, each overridable by a `WEFT_` environment variable
//! (STYLE.md pattern 15). A bad value is reported with a warning and the default is kept.

use std::path::PathBuf;
use std::time::Duration;

use crate::http::AllowList;

/// Whether to use wasmtime's pooling allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Use it when a probe shows the machine supports it (the default).
    Auto,
    /// Always (engine creation fails when unsupported).
    On,
    /// Never: allocate on demand.
    Off,
}

/// Limits of one task attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory of the guest, in bytes.
    pub memory_bytes: u64,
    /// Fuel budget (roughly one unit per wasm instruction); `None` is unlimited.
    pub fuel: Option<u64>,
    /// Largest outputs JSON, in bytes.
    pub max_output_bytes: usize,
    /// Largest total size of log messages kept, in bytes; the rest is dropped with a note.
    pub max_log_bytes: usize,
    /// Largest number of log lines kept; the rest is dropped with a note.
    pub max_log_lines: usize,
    /// Largest stdout and stderr capture each, in bytes.
    pub max_stdio_bytes: usize,
    /// Largest HTTP response body, in bytes.
    pub max_http_body_bytes: u64,
    /// Largest file read or written through internal storage, in bytes.
    pub max_file_bytes: u64,
    /// Largest HTTP body streamed straight into internal storage (`download`), in bytes.
    pub max_download_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            fuel: None,
            max_output_bytes: 8 << 20,
            max_log_bytes: 1 << 20,
            max_log_lines: 10_000,
            max_stdio_bytes: 256 << 10,
            max_http_body_bytes: 64 << 20,
            max_file_bytes: 256 << 20,
            max_download_bytes: 8 << 30,
        }
    }
}

/// How the engine is set up. [`EngineConfig::from_env`] reads the `WEFT_` variables.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Pooling allocator (`WEFT_POOLING` = `auto` | `on` | `off`).
    pub pooling: Pooling,
    /// Concurrent instances the pool holds (`WEFT_POOL_INSTANCES`, default 256).
    pub pool_instances: u32,
    /// Bytes of each pooled linear memory kept resident between attempts, reset with memset
    /// rather than given back to the kernel (`WEFT_POOL_KEEP_RESIDENT_KB`, default 512 KiB; 0:
    /// always madvise). Costs up to this much resident memory per pool slot used.
    pub pool_keep_resident_bytes: usize,
    /// Where precompiled components are cached (`WEFT_CACHE_DIR`; `off` disables the disk cache).
    /// Default: `$XDG_CACHE_HOME/weft/plugins` or `~/.cache/weft/plugins`.
    pub cache_dir: Option<PathBuf>,
    /// Timeout of an attempt whose task sets none (`WEFT_TASK_TIMEOUT`, ISO-8601, default PT1H).
    pub default_timeout: Duration,
    /// Largest timeout a task may ask for (`WEFT_TASK_TIMEOUT_MAX`, default P1D).
    pub max_timeout: Duration,
    /// Default limits of an attempt (`WEFT_TASK_MEMORY_MB`, `WEFT_TASK_FUEL`).
    pub limits: Limits,
    /// Largest memory limit an attempt may ask for (`WEFT_TASK_MEMORY_MAX_MB`, default 4096).
    pub max_memory_bytes: u64,
    /// Epoch tick: the resolution of wall-time limits and of yields to tokio (default 10 ms).
    pub epoch_tick: Duration,
    /// Count fuel (`WEFT_FUEL` = `on` | `off`, default on). Off makes `Limits::fuel` ineffective.
    pub consume_fuel: bool,
    /// Hosts every attempt may call over HTTP, on top of its own allow-list (`WEFT_HTTP_ALLOW`, a
    /// comma-separated list of `host`, `host:port`, `*.domain` or `*`; empty by default).
    pub http_allow: AllowList,
    /// Hosts the attempts of a namespace and of the namespaces under it may call over HTTP, on
    /// top of `http_allow` (`WEFT_HTTP_ALLOW_NAMESPACES`: `namespace=entry,entry;namespace=entry`,
    /// e.g. `company.sales=api.crm.example.com;company=*.company.internal`).
    pub http_allow_namespaces: Vec<(String, AllowList)>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            pooling: Pooling::Auto,
            pool_instances: 256,
            pool_keep_resident_bytes: 512 << 10,
            cache_dir: default_cache_dir(),
            default_timeout: Duration::from_secs(3600),
            max_timeout: Duration::from_secs(86_400),
            limits: Limits::default(),
            max_memory_bytes: 4 << 30,
            epoch_tick: Duration::from_millis(10),
            consume_fuel: true,
            http_allow: AllowList::default(),
            http_allow_namespaces: Vec::new(),
        }
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weft").join("plugins"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn bad(name: &str, value: &str, expected: &str) {
    tracing::warn!("{name}={value:?} is not {expected}; using the default");
}

impl EngineConfig {
    /// The defaults, overridden by the `WEFT_` environment variables.
    pub fn from_env() -> Self {
        let mut c = Self::default();
        if let Some(v) = env("WEFT_POOLING") {
            match v.to_ascii_lowercase().as_str() {
                "auto" => c.pooling = Pooling::Auto,
                "on" | "1" | "true" => c.pooling = Pooling::On,
                "off" | "0" | "false" => c.pooling = Pooling::Off,
                _ => bad("WEFT_POOLING", &v, "auto, on or off"),
            }
        }
        if let Some(v) = env("WEFT_POOL_INSTANCES") {
            match v.parse() {
                Ok(n) if n > 0 => c.pool_instances = n,
                _ => bad("WEFT_POOL_INSTANCES", &v, "a positive number"),
            }
        }
        if let Some(v) = env("WEFT_POOL_KEEP_RESIDENT_KB") {
            match v.parse::<usize>() {
                Ok(kb) => c.pool_keep_resident_bytes = kb.saturating_mul(1024),
                _ => bad("WEFT_POOL_KEEP_RESIDENT_KB", &v, "a number of KiB"),
            }
        }
        if let Some(v) = env("WEFT_CACHE_DIR") {
            c.cache_dir = if v == "off" {
                None
            } else {
                Some(PathBuf::from(v))
            };
        }
        if let Some(v) = env("WEFT_TASK_TIMEOUT") {
            match parse_duration(&v) {
                Some(d) => c.default_timeout = d,
                None => bad("WEFT_TASK_TIMEOUT", &v, "an ISO-8601 duration such as PT1H"),
            }
        }
        if let Some(v) = env("WEFT_TASK_TIMEOUT_MAX") {
            match parse_duration(&v) {
                Some(d) => c.max_timeout = d,
                None => bad(
                    "WEFT_TASK_TIMEOUT_MAX",
                    &v,
                    "an ISO-8601 duration such as P1D",
                ),
            }
        }
        if let Some(v) = env("WEFT_TASK_MEMORY_MB") {
            match v.parse::<u64>() {
                Ok(n) if n > 0 => c.limits.memory_bytes = n << 20,
                _ => bad("WEFT_TASK_MEMORY_MB", &v, "a positive number of MiB"),
            }
        }
        if let Some(v) = env("WEFT_TASK_MEMORY_MAX_MB") {
            match v.parse::<u64>() {
                Ok(n) if n > 0 && n <= 4096 => c.max_memory_bytes = n << 20,
                _ => bad("WEFT_TASK_MEMORY_MAX_MB", &v, "a number of MiB up to 4096"),
            }
        }
        if let Some(v) = env("WEFT_TASK_FUEL") {
            match v.parse::<u64>() {
                Ok(n) => c.limits.fuel = Some(n),
                _ => bad("WEFT_TASK_FUEL", &v, "a number"),
            }
        }
        if let Some(v) = env("WEFT_HTTP_ALLOW") {
            c.http_allow = AllowList::new(
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string),
            );
        }
        if let Some(v) = env("WEFT_HTTP_ALLOW_NAMESPACES") {
            match parse_namespace_allow(&v) {
                Ok(lists) => c.http_allow_namespaces = lists,
                Err(why) => bad(
                    "WEFT_HTTP_ALLOW_NAMESPACES",
                    &v,
                    &format!("`namespace=host,host;namespace=host` ({why})"),
                ),
            }
        }
        if let Some(v) = env("WEFT_FUEL") {
            match v.to_ascii_lowercase().as_str() {
                "on" | "1" | "true" => c.consume_fuel = true,
                "off" | "0" | "false" => c.consume_fuel = false,
                _ => bad("WEFT_FUEL", &v, "on or off"),
            }
        }
        c
    }
}

impl EngineConfig {
    /// The hosts an attempt of `namespace` may call besides its own allow-list: every
    /// attempt's (`http_allow`), and those of its namespace and of every namespace above it
    /// (`company` covers `company.team`, not `companyx`).
    pub fn http_allow_for(&self, namespace: &str) -> AllowList {
        self.http_allow_namespaces
            .iter()
            .filter(|(ns, _)| weft_flow::ids::namespace_within(namespace, ns))
            .fold(self.http_allow.clone(), |all, (_, list)| all.union(list))
    }
}

/// `namespace=entry,entry;namespace=entry` into one allow-list per namespace.
fn parse_namespace_allow(v: &str) -> Result<Vec<(String, AllowList)>, String> {
    let mut out = Vec::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((ns, hosts)) = part.split_once('=') else {
            return Err(format!("`{part}` has no `=`"));
        };
        let ns = ns.trim();
        if ns.is_empty() {
            return Err(format!("`{part}` names no namespace"));
        }
        let entries: Vec<&str> = hosts
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(format!("`{part}` names no host"));
        }
        out.push((ns.to_string(), AllowList::new(entries)));
    }
    Ok(out)
}

/// An ISO-8601 duration as Kestra writes them (`PT1S`, `P1DT2H`, `PT0.5S`), non-negative.
fn parse_duration(s: &str) -> Option<Duration> {
    weft_flow::duration::parse(s).ok().and_then(|d| d.to_std())
}

/// A duration in ISO-8601, as Kestra prints them (`PT2S`, `PT1.5S`, `PT1H30M`).
pub(crate) fn format_duration(d: Duration) -> String {
    let nanos = i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    weft_flow::duration::Duration::from_nanos(nanos).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn namespaces_get_their_own_hosts_and_their_parents() {
        let c = EngineConfig {
            http_allow: AllowList::new(["everyone.example.com"]),
            http_allow_namespaces: parse_namespace_allow(
                "company.sales = crm.example.com, *.crm.example.org ; company=intranet.local",
            )
            .unwrap(),
            ..EngineConfig::default()
        };
        let hosts = |ns: &str| c.http_allow_for(ns).entries().to_vec();
        assert_eq!(
            hosts("company.sales.eu"),
            [
                "everyone.example.com",
                "crm.example.com",
                "*.crm.example.org",
                "intranet.local"
            ]
        );
        assert_eq!(hosts("company"), ["everyone.example.com", "intranet.local"]);
        // a sibling or a longer name is not under the namespace
        assert_eq!(
            hosts("company.hr"),
            ["everyone.example.com", "intranet.local"]
        );
        assert_eq!(hosts("companyx"), ["everyone.example.com"]);
        for bad in ["company", "=a.com", "company="] {
            assert!(parse_namespace_allow(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_round_trip() {
        assert_eq!(parse_duration("PT1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("P1DT1M"), Some(Duration::from_secs(86_460)));
        assert_eq!(parse_duration("PT0.25S"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), None);
        assert_eq!(parse_duration("-PT1S"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(format_duration(Duration::from_secs(2)), "PT2S");
        assert_eq!(format_duration(Duration::from_millis(1500)), "PT1.5S");
        assert_eq!(format_duration(Duration::from_secs(5400)), "PT1H30M");
        assert_eq!(format_duration(Duration::ZERO), "PT0S");
    }
}
