//! Inputs of an execution as Kestra's API takes them: a multipart form whose plain parts are
//! input values and whose file parts are FILE inputs. A file part is named after its input
//! (`-F myfile=@data.csv`), or named `files` with the input id as its file name (what Kestra's
//! own clients send); a JSON object body is accepted too.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use indexmap::IndexMap;
use serde_json::Value as Json;
use weft_executor::inputs::RawInput;

use super::error::{ApiError, ApiResult};

/// The body, refused with 413 past `limit` bytes.
async fn body_bytes(body: axum::body::Body, limit: usize) -> ApiResult<axum::body::Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("cannot read the body (the limit is {limit} bytes, max_body_bytes): {e}"),
        )
    })
}

/// Values and files of a form.
#[derive(Debug, Default)]
pub(crate) struct FormInputs {
    pub(crate) values: IndexMap<String, RawInput>,
    /// input id, file name, bytes
    pub(crate) files: Vec<(String, String, Vec<u8>)>,
}

/// Reads the inputs of a request body (multipart, JSON object, or empty) of at most `limit`
/// bytes (`max_body_bytes`).
pub(crate) async fn read(req: Request, limit: usize) -> ApiResult<FormInputs> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let (parts, body) = req.into_parts();
        let bytes = body_bytes(body, limit).await?;
        if is_empty_form(&bytes) {
            return Ok(FormInputs::default());
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        let multipart = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?;
        return read_multipart(multipart).await;
    }
    let bytes = body_bytes(req.into_body(), limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(FormInputs::default());
    }
    if content_type.starts_with("application/json") {
        let value: Json = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
        let Json::Object(map) = value else {
            return Err(ApiError::bad_request(
                "a JSON body must be an object of input values",
            ));
        };
        let mut out = FormInputs::default();
        for (k, v) in map {
            let raw = match v {
                Json::String(s) => RawInput::Text(s),
                other => RawInput::Json(other),
            };
            out.values.insert(k, raw);
        }
        return Ok(out);
    }
    Err(ApiError::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "inputs must be sent as multipart/form-data (or a JSON object), not `{content_type}`"
        ),
    ))
}

/// A form without parts (only the closing boundary, as clients send an empty form).
fn is_empty_form(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim();
    t.is_empty()
        || (t.starts_with("--")
            && t.ends_with("--")
            && !t.contains("\r\n\r\n")
            && t.lines().count() == 1)
}

async fn read_multipart(mut multipart: Multipart) -> ApiResult<FormInputs> {
    let mut out = FormInputs::default();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart part `{name}`: {e}")))?;
        match file_name {
            Some(file_name) => {
                let (input, file_name) = if name == "files" || name.is_empty() {
                    (file_name.clone(), file_name)
                } else {
                    (name, file_name)
                };
                if input.is_empty() {
                    return Err(ApiError::bad_request(
                        "a file part needs a name (the input id) or a file name",
                    ));
                }
                out.files.push((input, file_name, bytes.to_vec()));
            }
            None => {
                if name.is_empty() {
                    return Err(ApiError::bad_request(
                        "a multipart part without a name: name each part after its input",
                    ));
                }
                let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("input `{name}` is not UTF-8 text"))
                })?;
                out.values.insert(name, RawInput::Text(text));
            }
        }
    }
    Ok(out)
}

/// The `labels=key:value` pairs of a query string (repeatable), in order.
pub(crate) fn labels(query: Option<&str>) -> ApiResult<Vec<weft_flow::model::Label>> {
    let mut out = Vec::new();
    for (k, v) in query_pairs(query) {
        if k != "labels" {
            continue;
        }
        let (key, value) = v
            .split_once(':')
            .ok_or_else(|| ApiError::bad_request(format!("label `{v}`: a label is `key:value`")))?;
        if key.is_empty() {
            return Err(ApiError::bad_request(format!(
                "label `{v}`: the key is empty"
            )));
        }
        out.push(weft_flow::model::Label {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

/// The decoded `key=value` pairs of a query string, repeated keys included.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `key` in a query string.
pub(crate) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// The largest page `size` of a search.
const MAX_PAGE_SIZE: usize = 1_000;

/// The paging of a search, `?page=` (from 1, default 1) and `?size=` (1 to 1,000, default 10).
pub(crate) fn paging(query: Option<&str>) -> ApiResult<(usize, usize)> {
    let number = |name: &str, default: usize, max: usize| match query_value(query, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}` must be an integer from 1 to {max}, got `{v}`"
                ))
            }),
    };
    Ok((
        number("page", 1, usize::MAX)?,
        number("size", 10, MAX_PAGE_SIZE)?,
    ))
}

/// A boolean query flag (`?wait=true`, `?wait`).
pub(crate) fn query_flag(query: Option<&str>, key: &str) -> bool {
    query_pairs(query)
        .iter()
        .any(|(k, v)| k == key && (v.is_empty() || v.eq_ignore_ascii_case("true")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_the_query() {
        let l = labels(Some("labels=a:label-1&wait=true&labels=b:x%3Ay")).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].key.as_str(), l[0].value.as_str()), ("a", "label-1"));
        assert_eq!((l[1].key.as_str(), l[1].value.as_str()), ("b", "x:y"));
        assert!(labels(Some("labels=nocolon")).is_err());
        assert!(query_flag(Some("labels=a:b&wait=true"), "wait"));
        assert!(!query_flag(Some("wait=false"), "wait"));
        assert!(is_empty_form(b"--abc--\r\n"));
        assert!(!is_empty_form(
            b"--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--abc--\r\n"
        ));
    }
}
