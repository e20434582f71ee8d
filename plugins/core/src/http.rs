//! `io.kestra.plugin.core.http.Request` and `io.kestra.plugin.core.http.Download`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_sdk::schemars::JsonSchema;
use weft_sdk::{Context, Error, HttpRequest, HttpResponse, Property, Result, Task};

use crate::duration::parse_duration;

/// HTTP options, as Kestra's `options`.
#[derive(Deserialize, JsonSchema, Default)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Options {
    /// Connection timeout (ISO-8601); weft applies it to the whole exchange with readTimeout.
    #[serde(default)]
    connect_timeout: Option<Property<String>>,
    /// Read timeout (ISO-8601).
    #[serde(default)]
    read_timeout: Option<Property<String>>,
    /// Idle timeout (accepted, ignored).
    #[allow(dead_code)]
    #[serde(default)]
    read_idle_timeout: Option<Property<String>>,
    /// Follow redirects (default true).
    #[serde(default)]
    follow_redirects: Option<Property<bool>>,
    /// Do not fail on a status >= 400.
    #[serde(default)]
    allow_failed: Option<Property<bool>>,
    /// Largest response body, in bytes.
    #[serde(default)]
    max_content_length: Option<Property<u64>>,
    /// Default charset (accepted, ignored: bodies are read as UTF-8).
    #[allow(dead_code)]
    #[serde(default)]
    default_charset: Option<Property<String>>,
}

/// The request part shared by Request and Download.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase")]
pub(crate) struct Common {
    /// The URI to call.
    uri: Property<String>,
    /// HTTP method (default GET).
    #[serde(default)]
    method: Option<Property<String>>,
    /// Request headers.
    #[serde(default)]
    headers: Option<BTreeMap<String, Property<String>>>,
    /// Request body.
    #[serde(default)]
    body: Option<Property<String>>,
    /// Form fields, sent as `application/x-www-form-urlencoded`.
    #[serde(default)]
    form_data: Option<BTreeMap<String, Property<String>>>,
    /// Content type of the body.
    #[serde(default)]
    content_type: Option<Property<String>>,
    /// Options.
    #[serde(default)]
    options: Option<Options>,
    /// Do not fail on a status >= 400 (legacy; see options.allowFailed).
    #[serde(default)]
    allow_failed: Option<Property<bool>>,
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Common {
    /// The request to send, its URI and whether an error status is allowed.
    fn request(&self, ctx: &Context) -> Result<(String, HttpRequest, bool)> {
        let uri = ctx.render(&self.uri)?;
        let method = match &self.method {
            Some(m) => ctx.render(m)?.to_ascii_uppercase(),
            None => "GET".to_string(),
        };
        let mut req = HttpRequest {
            method,
            uri: uri.clone(),
            ..HttpRequest::default()
        };
        if let Some(h) = &self.headers {
            for (k, v) in h {
                req.headers.push((k.clone(), ctx.render(v)?));
            }
        }
        let content_type = match &self.content_type {
            Some(c) => Some(ctx.render(c)?),
            None => None,
        };
        if let Some(form) = &self.form_data {
            let mut parts = Vec::new();
            for (k, v) in form {
                parts.push(format!(
                    "{}={}",
                    form_encode(k),
                    form_encode(&ctx.render(v)?)
                ));
            }
            req.body = Some(parts.join("&").into_bytes());
            req.headers.push((
                "content-type".into(),
                content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
            ));
        } else if let Some(body) = &self.body {
            req.body = Some(ctx.render(body)?.into_bytes());
            if let Some(ct) = &content_type {
                req.headers.push(("content-type".into(), ct.clone()));
            }
        }
        let mut allow_failed = match &self.allow_failed {
            Some(a) => ctx.render(a)?,
            None => false,
        };
        if let Some(o) = &self.options {
            let mut total = None;
            for t in [&o.connect_timeout, &o.read_timeout].into_iter().flatten() {
                let d = parse_duration(&ctx.render(t)?).map_err(Error::invalid)?;
                total = Some(total.unwrap_or(0) + u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            }
            req.timeout_ms = total;
            if let Some(f) = &o.follow_redirects {
                req.follow_redirects = Some(ctx.render(f)?);
            }
            if let Some(m) = &o.max_content_length {
                req.max_body_bytes = Some(ctx.render(m)?);
            }
            if let Some(a) = &o.allow_failed {
                allow_failed = ctx.render(a)?;
            }
        }
        Ok((uri, req, allow_failed))
    }

    fn send(&self, ctx: &Context) -> Result<(String, HttpResponse)> {
        let (uri, req, allow_failed) = self.request(ctx)?;
        let resp = ctx.http(&req)?;
        check_status(&req, &uri, resp.status, allow_failed)?;
        Ok((uri, resp))
    }
}

fn check_status(req: &HttpRequest, uri: &str, status: u16, allow_failed: bool) -> Result<()> {
    if status >= 400 && !allow_failed {
        return Err(Error::Http(format!(
            "{} {uri} failed with status {status}",
            req.method
        )));
    }
    Ok(())
}

fn header_map(headers: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers {
        map.entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.clone());
    }
    map
}

/// Send an HTTP request and return the response.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Request {
    #[serde(flatten)]
    common: Common,
    /// Kept for compatibility; the body is returned as text.
    #[serde(default)]
    encrypt_body: Option<Property<bool>>,
}

/// Outputs of `Request`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct RequestOutputs {
    /// The URI called.
    uri: String,
    /// Status code.
    code: u16,
    /// Response headers (lower-case names).
    headers: BTreeMap<String, Vec<String>>,
    /// Response body as text.
    body: String,
}

impl Task for Request {
    const TYPE: &'static str = "io.kestra.plugin.core.http.Request";
    const ALIASES: &'static [&'static str] = &["io.kestra.plugin.fs.http.Request"];
    const DESCRIPTION: &'static str = "Send an HTTP request (only to hosts on the allow-list).";
    type Outputs = RequestOutputs;

    fn run(self, ctx: &Context) -> Result<RequestOutputs> {
        let _ = &self.encrypt_body;
        let (uri, resp) = self.common.send(ctx)?;
        Ok(RequestOutputs {
            uri,
            code: resp.status,
            headers: header_map(&resp.headers),
            body: String::from_utf8_lossy(&resp.body).into_owned(),
        })
    }
}

/// Download a file over HTTP into internal storage.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Download {
    #[serde(flatten)]
    common: Common,
    /// Fail when the body is empty (default true).
    #[serde(default)]
    fail_on_empty_response: Option<Property<bool>>,
}

/// Outputs of `Download`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct DownloadOutputs {
    /// The `kestra:///...` URI of the downloaded file.
    uri: String,
    /// Status code.
    code: u16,
    /// Body length in bytes.
    length: u64,
    /// Response headers (lower-case names).
    headers: BTreeMap<String, Vec<String>>,
}

impl Task for Download {
    const TYPE: &'static str = "io.kestra.plugin.core.http.Download";
    const ALIASES: &'static [&'static str] = &["io.kestra.plugin.fs.http.Download"];
    const DESCRIPTION: &'static str = "Download a file over HTTP into internal storage.";
    type Outputs = DownloadOutputs;

    fn run(self, ctx: &Context) -> Result<DownloadOutputs> {
        let (uri, req, allow_failed) = self.common.request(ctx)?;
        let name = uri
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .unwrap_or("download")
            .to_string();
        // the body goes straight to internal storage, never through this plugin's memory
        let resp = ctx.download(&req, &name)?;
        if let Err(e) = check_status(&req, &uri, resp.status, allow_failed) {
            // the error page is not the file asked for: leave nothing behind
            ctx.delete_file(&resp.uri)?;
            return Err(e);
        }
        let fail_on_empty = match &self.fail_on_empty_response {
            Some(f) => ctx.render(f)?,
            None => true,
        };
        if resp.length == 0 && fail_on_empty {
            return Err(Error::Http(format!("{uri} returned an empty body")));
        }
        Ok(DownloadOutputs {
            uri: resp.uri,
            code: resp.status,
            length: resp.length,
            headers: header_map(&resp.headers),
        })
    }
}
