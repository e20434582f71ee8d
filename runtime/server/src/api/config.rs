//! Configuration of `weft server`, in layers: the defaults, then a YAML file (`--config`),
//! then `WEFT_*` environment variables (`WEFT_LISTEN`, `WEFT_STORAGE`, `WEFT_PLUGINS`,
//! `WEFT_AUTH_TOKEN`, `WEFT_BASIC_AUTH`, `WEFT_INSECURE_NO_AUTH`, `WEFT_WAIT_TIMEOUT_SECS`,
//! `WEFT_SHUTDOWN_GRACE_SECS`, `WEFT_MAX_BODY_BYTES`, `WEFT_LEASE_TTL_SECS`,
//! `WEFT_TICK_INTERVAL_SECS`, `WEFT_DISPATCH`, `WEFT_DISPATCH_URL`, `WEFT_FLUSH_INTERVAL_MS`),
//! then command-line flags; then
//! [`ServerConfig::validate`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde::{Deserialize, Serialize};

/// The environment variables the server reads (after the `WEFT_` prefix, lower-cased).
const ENV_KEYS: &[&str] = &[
    "listen",
    "storage",
    "plugins",
    "auth_token",
    "basic_auth",
    "insecure_no_auth",
    "wait_timeout_secs",
    "shutdown_grace_secs",
    "max_body_bytes",
    "lease_ttl_secs",
    "tick_interval_secs",
    "dispatch",
    "dispatch_url",
    "flush_interval_ms",
];

/// Where the attempts of runnable tasks run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DispatchMode {
    /// In the process that drives the execution.
    #[default]
    Local,
    /// Posted to the pool at `dispatch_url` (`POST /api/v1/worker/attempts`), so that a fan-out
    /// spreads over instances; run in the process when that fails.
    Http,
}

impl std::str::FromStr for DispatchMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(DispatchMode::Local),
            "http" => Ok(DispatchMode::Http),
            other => Err(format!(
                "`{other}` is not a dispatch mode: use `local` or `http`"
            )),
        }
    }
}

/// Everything `weft server` can be told.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `listen: 127.0.0.1:8080`: the address to listen on.
    pub listen: SocketAddr,
    /// `storage: .weft`: a folder, or a storage URL (`s3://bucket/prefix`, `file:///path`).
    pub storage: String,
    /// `plugins: DIR`: a folder of extra plugins (`*.wasm`).
    pub plugins: Option<PathBuf>,
    /// `auth_token: ...`: when set, every API call needs `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// `basic_auth: user:password`: when set, every API call may also authenticate with
    /// `Authorization: Basic` (HTTP basic auth, as Kestra's `basic-auth`).
    pub basic_auth: Option<String>,
    /// `insecure_no_auth: true`: allows a non-loopback address without authentication.
    pub insecure_no_auth: bool,
    /// `wait_timeout_secs: 300`: the longest `?wait=true` waits before answering with the
    /// execution as it is.
    pub wait_timeout_secs: u64,
    /// `shutdown_grace_secs: 30`: on SIGTERM or ctrl-c, how long running executions may go on
    /// before the process exits (their state stays in storage).
    pub shutdown_grace_secs: u64,
    /// `max_body_bytes: 104857600`: the largest request body (file uploads included).
    pub max_body_bytes: usize,
    /// `lease_ttl_secs: 30`: how long the lease on the executions a process drives lasts
    /// without renewal (renewed every third of it); once it expired, a tick on any instance
    /// takes them over.
    pub lease_ttl_secs: u64,
    /// `tick_interval_secs: 5`: how often the built-in ticker does what `POST /api/v1/tick`
    /// does (take over executions whose lease expired); 0 turns it off, for a process woken by
    /// an outside scheduler.
    pub tick_interval_secs: u64,
    /// `dispatch: local`: where the attempts of runnable tasks run: `local` (in the process that
    /// drives the execution) or `http` (posted to the pool at `dispatch_url`).
    pub dispatch: DispatchMode,
    /// `dispatch_url: http://weft-lb:8080`: the pool's base URL (its load balancer's), to which
    /// `dispatch: http` posts attempts (`{dispatch_url}/api/v1/worker/attempts`).
    pub dispatch_url: Option<String>,
    /// `flush_interval_ms: 100`: how long the steps of an execution that only start attempts
    /// and record their results may stay in memory before they are written together (0: each
    /// step is written at once). Any other step (a state change, a subflow, a user's action) is
    /// written at once; a crash loses at most this much progress, whose attempts run again.
    pub flush_interval_ms: u64,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("storage", &self.storage)
            .field("plugins", &self.plugins)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "***"))
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "***"))
            .field("insecure_no_auth", &self.insecure_no_auth)
            .field("wait_timeout_secs", &self.wait_timeout_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("lease_ttl_secs", &self.lease_ttl_secs)
            .field("tick_interval_secs", &self.tick_interval_secs)
            .field("dispatch", &self.dispatch)
            .field("dispatch_url", &self.dispatch_url)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: ".weft".into(),
            plugins: None,
            auth_token: None,
            basic_auth: None,
            insecure_no_auth: false,
            wait_timeout_secs: 300,
            shutdown_grace_secs: 30,
            max_body_bytes: 100 * 1024 * 1024,
            lease_ttl_secs: 30,
            tick_interval_secs: 5,
            dispatch: DispatchMode::Local,
            dispatch_url: None,
            flush_interval_ms: 100,
        }
    }
}

/// Values given as command-line flags (each overrides every other layer when set).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigOverrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--storage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// `--plugins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PathBuf>,
    /// `--auth-token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// `--basic-auth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<String>,
    /// `--insecure-no-auth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure_no_auth: Option<bool>,
    /// `--dispatch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchMode>,
    /// `--dispatch-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_url: Option<String>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read, or a value has the wrong type.
    #[error("configuration: {0}")]
    Invalid(Box<figment::Error>),
    /// The configuration file does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// A non-loopback address without authentication.
    #[error(
        "refusing to listen on {0} without authentication: set WEFT_AUTH_TOKEN (or --auth-token) or WEFT_BASIC_AUTH=user:password (or --basic-auth), listen on 127.0.0.1, or pass --insecure-no-auth"
    )]
    Insecure(SocketAddr),
    /// A lease too short to be renewed in time.
    #[error("lease_ttl_secs must be at least 3 (got {0})")]
    ShortLease(u64),
    /// A flush interval as long as the lease's renewal.
    #[error(
        "flush_interval_ms must be under a third of lease_ttl_secs ({max} ms), got {got}: an execution's steps would stay in memory longer than its lease is renewed"
    )]
    LongFlush {
        /// The value given.
        got: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// An empty token.
    #[error("auth_token is empty: give a token, or leave it unset")]
    EmptyToken,
    /// A `basic_auth` that is not `user:password` with both parts given.
    #[error("basic_auth must be `user:password`, with a user and a password (got {0})")]
    BadBasicAuth(&'static str),
    /// `dispatch: http` without a `dispatch_url`.
    #[error(
        "dispatch is http but dispatch_url is not set: set WEFT_DISPATCH_URL (or --dispatch-url, or dispatch_url in the file) to the pool's base URL, e.g. http://weft-lb:8080"
    )]
    NoDispatchUrl,
    /// A `dispatch_url` that is not an http(s) base URL.
    #[error("dispatch_url `{url}` is not an http(s) base URL ({reason}); e.g. http://weft-lb:8080")]
    BadDispatchUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ServerConfig {
    /// Reads the layers (defaults, `file`, `WEFT_*` environment, `flags`) and validates them.
    pub fn load(file: Option<&Path>, flags: &ConfigOverrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(ServerConfig::default()));
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Yaml::file(file));
        }
        let config: ServerConfig = figment
            .merge(Env::prefixed("WEFT_").only(ENV_KEYS))
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses what must not run: a non-loopback address without authentication (unless
    /// `insecure_no_auth`), an empty token, `dispatch: http` without an http(s) `dispatch_url`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.auth_token.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::EmptyToken);
        }
        if self.lease_ttl_secs < 3 {
            return Err(ConfigError::ShortLease(self.lease_ttl_secs));
        }
        let max = self.lease_ttl_secs.saturating_mul(1000) / 3;
        if self.flush_interval_ms >= max {
            return Err(ConfigError::LongFlush {
                got: self.flush_interval_ms,
                max,
            });
        }
        if let Some(basic) = &self.basic_auth {
            match basic.split_once(':') {
                None => return Err(ConfigError::BadBasicAuth("no `:`")),
                Some(("", _)) => return Err(ConfigError::BadBasicAuth("an empty user")),
                Some((_, "")) => return Err(ConfigError::BadBasicAuth("an empty password")),
                Some(_) => {}
            }
        }
        if let Some(url) = &self.dispatch_url {
            check_dispatch_url(url)?;
        } else if self.dispatch == DispatchMode::Http {
            return Err(ConfigError::NoDispatchUrl);
        }
        let authenticated = self.auth_token.is_some() || self.basic_auth.is_some();
        if !self.listen.ip().is_loopback() && !authenticated && !self.insecure_no_auth {
            return Err(ConfigError::Insecure(self.listen));
        }
        Ok(())
    }
}

/// Checks that `url` is an http(s) URL with a host, and no query, fragment or credentials (the
/// server sends its own).
fn check_dispatch_url(url: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::BadDispatchUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(&format!(
            "the scheme is `{}`, not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a query or a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials in the URL: the server sends its own auth_token or basic_auth",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("weft.yaml", "listen: 127.0.0.1:9000\nstorage: /from/file\n")?;
            jail.set_env("WEFT_STORAGE", "/from/env");
            jail.set_env("WEFT_LOG", "debug");
            let c = ServerConfig::load(Some(Path::new("weft.yaml")), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9000);
            assert_eq!(c.storage, "/from/env");
            let flags = ConfigOverrides {
                storage: Some("/from/flag".into()),
                ..Default::default()
            };
            let c = ServerConfig::load(Some(Path::new("weft.yaml")), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(c.storage, "/from/flag");
            Ok(())
        });
    }

    #[test]
    fn public_address_needs_auth_or_an_explicit_flag() {
        let mut c = ServerConfig {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Default::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::Insecure(_))));
        c.auth_token = Some("t".into());
        assert!(c.validate().is_ok());
        c.auth_token = None;
        c.basic_auth = Some("ada:s3cret".into());
        assert!(c.validate().is_ok());
        for bad in ["ada", ":s3cret", "ada:"] {
            c.basic_auth = Some(bad.into());
            assert!(
                matches!(c.validate(), Err(ConfigError::BadBasicAuth(_))),
                "{bad}"
            );
        }
        c.basic_auth = None;
        c.insecure_no_auth = true;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("weft.yaml", "listne: 127.0.0.1:9000\n")?;
            let err = ServerConfig::load(Some(Path::new("weft.yaml")), &ConfigOverrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("listne"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn dispatch_comes_from_every_layer() {
        figment::Jail::expect_with(|jail| {
            let c =
                ServerConfig::load(None, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
            assert_eq!((c.dispatch, c.dispatch_url), (DispatchMode::Local, None));
            jail.create_file(
                "weft.yaml",
                "dispatch: http\ndispatch_url: http://from-file:8080\n",
            )?;
            let c = ServerConfig::load(Some(Path::new("weft.yaml")), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.dispatch, DispatchMode::Http);
            assert_eq!(c.dispatch_url.as_deref(), Some("http://from-file:8080"));
            jail.set_env("WEFT_DISPATCH_URL", "https://from-env/weft");
            let c = ServerConfig::load(Some(Path::new("weft.yaml")), &ConfigOverrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.dispatch_url.as_deref(), Some("https://from-env/weft"));
            let flags = ConfigOverrides {
                dispatch: Some(DispatchMode::Local),
                ..Default::default()
            };
            let c = ServerConfig::load(Some(Path::new("weft.yaml")), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(c.dispatch, DispatchMode::Local);
            jail.set_env("WEFT_DISPATCH", "faas");
            let err = ServerConfig::load(None, &ConfigOverrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("faas"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn http_dispatch_needs_an_http_url() {
        let mut c = ServerConfig {
            dispatch: DispatchMode::Http,
            ..Default::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::NoDispatchUrl)));
        let err = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("WEFT_DISPATCH_URL"), "{err}");
        for good in [
            "http://127.0.0.1:8080",
            "https://weft-lb.internal/",
            "http://lb/prefix",
        ] {
            c.dispatch_url = Some(good.into());
            assert!(c.validate().is_ok(), "{good}");
        }
        for (bad, reason) in [
            ("weft-lb:8080", "scheme"),
            ("ftp://lb", "scheme"),
            ("lb", "relative URL"),
            ("http://lb/?x=1", "query"),
            ("http://ada:pw@lb", "credentials"),
            ("http://", "host"),
        ] {
            c.dispatch_url = Some(bad.into());
            match c.validate() {
                Err(e @ ConfigError::BadDispatchUrl { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(bad) && text.contains(reason), "{text}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // a URL is checked in local mode too
        c.dispatch = DispatchMode::Local;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadDispatchUrl { .. })
        ));
        c.dispatch_url = None;
        assert!(c.validate().is_ok());
    }
}
