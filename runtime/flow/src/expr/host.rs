//! What an expression may ask of the process that renders it: secrets, internal storage, the
//! KV store, loop outputs. The executor is pure, so these calls go to a host trait, and a
//! renderer without a host fails them with a clear error.

use serde_json::Value as Json;

fn not_available(what: &str) -> String {
    format!(
        "{what}() is not available here: this expression is rendered without access to secrets, storage or the KV store"
    )
}

/// The services expressions reach through `secret()`, `read()`, `kv()`, `fileSize()`,
/// `fileURI()` and `errorLogs()`. Every method has a default that
/// fails with "… is not available here".
pub trait ExprHost: Send + Sync {
    /// `secret('KEY')`.
    fn secret(&self, key: &str) -> Result<String, String> {
        let _ = key;
        Err(not_available("secret"))
    }
    /// `read('kestra:///...')`: a file of internal storage or a namespace file, as text.
    fn read(&self, uri: &str) -> Result<String, String> {
        let _ = uri;
        Err(not_available("read"))
    }
    /// `fileSize('kestra:///...')` in bytes.
    fn file_size(&self, uri: &str) -> Result<u64, String> {
        let _ = uri;
        Err(not_available("fileSize"))
    }
    /// `fileURI('path')`: the storage URI of a namespace file.
    fn file_uri(&self, path: &str) -> Result<String, String> {
        let _ = path;
        Err(not_available("fileURI"))
    }
    /// `kv('KEY', namespace='ns')`: `None` when the key does not exist.
    fn kv(&self, namespace: Option<&str>, key: &str) -> Result<Option<Json>, String> {
        let _ = (namespace, key);
        Err(not_available("kv"))
    }
    /// `errorLogs()`: the error logs of the execution.
    fn error_logs(&self) -> Result<Json, String> {
        Err(not_available("errorLogs"))
    }
}

/// One call of a host function, as sent from the rendering thread.
#[derive(Debug, Clone)]
pub(crate) enum HostRequest {
    Secret(String),
    Read(String),
    FileSize(String),
    FileUri(String),
    Kv(Option<String>, String),
    ErrorLogs,
}

impl HostRequest {
    /// Runs the request against a host.
    pub(crate) fn serve(&self, host: &dyn ExprHost) -> Result<Json, String> {
        match self {
            Self::Secret(k) => host.secret(k).map(Json::String),
            Self::Read(u) => host.read(u).map(Json::String),
            Self::FileSize(u) => host.file_size(u).map(|n| Json::Number(n.into())),
            Self::FileUri(p) => host.file_uri(p).map(Json::String),
            Self::Kv(ns, k) => host.kv(ns.as_deref(), k).map(|v| match v {
                Some(v) => serde_json::json!({ "found": true, "value": v }),
                None => serde_json::json!({ "found": false }),
            }),
            Self::ErrorLogs => host.error_logs(),
        }
    }

    /// The function's name, for errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Secret(_) => "secret",
            Self::Read(_) => "read",
            Self::FileSize(_) => "fileSize",
            Self::FileUri(_) => "fileURI",
            Self::Kv(..) => "kv",
            Self::ErrorLogs => "errorLogs",
        }
    }
}
