//! Outgoing HTTP for plugins: one shared client, every hop (redirects included) checked against
//! the attempt's allow-list, bodies capped, and the whole exchange bounded by the attempt's
//! remaining time.

use std::time::Duration;

use crate::bindings::weft::plugin::http::{HttpError, Request, Response};
use crate::host::TaskHost;

const MAX_REDIRECTS: usize = 10;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Hosts a plugin may call. Entries are `host`, `host:port` or `*.domain` (any sub-domain);
/// `*` allows every host. Empty by default: nothing is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<String>,
}

impl AllowList {
    /// An allow-list of these entries.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            entries: entries
                .into_iter()
                .map(|e| e.into().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host` (without brackets for IPv6) on `port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let with_port = format!("{host}:{port}");
        self.entries.iter().any(|e| {
            e == "*"
                || *e == host
                || *e == with_port
                || e.strip_prefix("*.")
                    .is_some_and(|d| host.ends_with(&format!(".{d}")))
        })
    }

    /// This list with the entries of `other` added.
    pub fn union(mut self, other: &AllowList) -> AllowList {
        for e in &other.entries {
            if !self.entries.contains(e) {
                self.entries.push(e.clone());
            }
        }
        self
    }

    /// The entries.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }
}

/// The process-wide HTTP client.
#[derive(Clone, Debug)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub(crate) fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client })
    }

    pub(crate) async fn send(
        &self,
        req: Request,
        allow: &AllowList,
        cap: u64,
        remaining: Duration,
    ) -> Result<Response, HttpError> {
        let timeout = exchange_timeout(&req, remaining);
        let exchange = async {
            let (status, headers, mut resp) = self.open(req, allow, cap).await?;
            let mut body = Vec::new();
            while let Some(chunk) = next_chunk(&mut resp).await? {
                if (body.len() + chunk.len()) as u64 > cap {
                    return Err(HttpError::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }

    /// Sends `req` and streams the response body into `uri` through `host` (never whole in memory,
    /// never through the guest). Returns the status, headers and body length.
    pub(crate) async fn download(
        &self,
        req: Request,
        allow: &AllowList,
        cap: u64,
        remaining: Duration,
        host: &dyn TaskHost,
        uri: &str,
    ) -> Result<(u16, Vec<(String, String)>, u64), HttpError> {
        let timeout = exchange_timeout(&req, remaining);
        let exchange = async {
            let (status, headers, mut resp) = self.open(req, allow, cap).await?;
            let (mut writer, reader) = tokio::io::duplex(256 << 10);
            let pump = async move {
                use tokio::io::AsyncWriteExt as _;
                let mut length = 0u64;
                while let Some(chunk) = next_chunk(&mut resp).await? {
                    length += chunk.len() as u64;
                    if length > cap {
                        return Err(HttpError::TooLarge(cap));
                    }
                    writer
                        .write_all(&chunk)
                        .await
                        .map_err(|e| HttpError::Transport(format!("storing the body: {e}")))?;
                }
                writer
                    .shutdown()
                    .await
                    .map_err(|e| HttpError::Transport(format!("storing the body: {e}")))?;
                Ok(length)
            };
            let store = host.write_file_stream(uri, Box::pin(reader));
            let (pumped, stored) = tokio::join!(pump, store);
            let length = match pumped {
                Ok(length) => length,
                Err(e) => {
                    // the store saw the body end early and kept what came: drop the cut-off file
                    if stored.is_ok()
                        && let Err(d) = host.delete_file(uri).await
                    {
                        tracing::warn!(%uri, error = %d, "could not delete a partial download");
                    }
                    return Err(e);
                }
            };
            stored.map_err(|e| HttpError::Transport(format!("storing the body in {uri}: {e}")))?;
            Ok((status, headers, length))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }

    /// Sends the request, following redirects (each hop checked against the allow-list), up to the
    /// response head; refuses a declared body larger than `cap`.
    async fn open(
        &self,
        req: Request,
        allow: &AllowList,
        cap: u64,
    ) -> Result<(u16, Vec<(String, String)>, reqwest::Response), HttpError> {
        let mut method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| {
            HttpError::InvalidRequest(format!("{:?} is not an HTTP method", req.method))
        })?;
        let mut url = reqwest::Url::parse(&req.uri)
            .map_err(|e| HttpError::InvalidRequest(format!("{:?} is not a URI: {e}", req.uri)))?;
        let mut body = req.body;
        let follow = req.follow_redirects.unwrap_or(true);
        for _ in 0..=MAX_REDIRECTS {
            check(&url, allow)?;
            let mut b = self.client.request(method.clone(), url.clone());
            for (k, v) in &req.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            if let Some(data) = &body {
                b = b.body(data.clone());
            }
            let resp = b
                .send()
                .await
                .map_err(|e| HttpError::Transport(error_chain(&e)))?;
            let status = resp.status();
            if follow
                && status.is_redirection()
                && let Some(loc) = resp.headers().get(reqwest::header::LOCATION)
            {
                let loc = loc
                    .to_str()
                    .map_err(|_| HttpError::Transport("redirect location is not text".into()))?;
                url = url.join(loc).map_err(|e| {
                    HttpError::Transport(format!("bad redirect location {loc:?}: {e}"))
                })?;
                if status == reqwest::StatusCode::SEE_OTHER
                    || ((status == reqwest::StatusCode::MOVED_PERMANENTLY
                        || status == reqwest::StatusCode::FOUND)
                        && method == reqwest::Method::POST)
                {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            if let Some(len) = resp.content_length()
                && len > cap
            {
                return Err(HttpError::TooLarge(cap));
            }
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            return Ok((status.as_u16(), headers, resp));
        }
        Err(HttpError::Transport(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

fn exchange_timeout(req: &Request, remaining: Duration) -> Duration {
    req.timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(remaining)
}

async fn next_chunk(resp: &mut reqwest::Response) -> Result<Option<bytes::Bytes>, HttpError> {
    resp.chunk()
        .await
        .map_err(|e| HttpError::Transport(error_chain(&e)))
}

fn check(url: &reqwest::Url, allow: &AllowList) -> Result<(), HttpError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpError::InvalidRequest(format!(
            "{url}: only http and https are supported"
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| HttpError::InvalidRequest(format!("{url} has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    if allow.allows(host, port) {
        Ok(())
    } else {
        Err(HttpError::Denied(format!(
            "{host}:{port} is not on the HTTP allow-list of this namespace"
        )))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::AllowList;

    #[test]
    fn allow_list_matches_hosts() {
        let a = AllowList::new(["example.com", "*.kestra.io", "127.0.0.1:8080"]);
        assert!(a.allows("example.com", 443));
        assert!(a.allows("api.kestra.io", 443));
        assert!(!a.allows("kestra.io.evil.com", 443));
        assert!(a.allows("127.0.0.1", 8080));
        assert!(!a.allows("127.0.0.1", 8081));
        assert!(!AllowList::default().allows("example.com", 80));
        assert!(AllowList::new(["*"]).allows("anything", 1));
    }
}
