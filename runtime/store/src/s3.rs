//! The S3 backend (aws-sdk-s3): AWS, MinIO, R2, Ceph, moto, anything that speaks S3 with conditional
//! writes (`If-None-Match: *` and `If-Match` on PUT).
//!
//! Endpoint, region, credentials and path-style come from the standard AWS environment and config
//! files (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, ...); [`S3Options`] overrides them. Path-style addressing is
//! on when an endpoint is set (MinIO and moto need it), or by `WEFT_S3_PATH_STYLE=true|false`.
//! Throttling, 5xx and network errors are retried by the SDK's standard retry mode (exponential
//! backoff with jitter); every attempt has a time-out.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::check::check_conditional_writes;
use crate::error::{Result, StoreError};
use crate::key::{Key, check_prefix};
use crate::object::{
    BodyReader, Condition, ListEntry, ListOptions, ListPage, Object, ObjectMeta, ObjectReader,
    ObjectStore, PageToken, Version,
};
use crate::stats::{RequestKind, RequestStats};

/// Smallest part S3 accepts in a multipart upload (except the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// Default multipart threshold and part size: bodies up to this size are one `PutObject`.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// How to reach a bucket. `None` fields come from the AWS environment.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket: `""` or ending with `/`.
    pub prefix: String,
    /// Endpoint URL (`http://127.0.0.1:9000`); else `AWS_ENDPOINT_URL(_S3)` or AWS itself.
    pub endpoint: Option<String>,
    /// Region; else the AWS environment; else `us-east-1`.
    pub region: Option<String>,
    /// Access key id and secret; else the AWS default credential chain.
    pub credentials: Option<(String, String)>,
    /// Path-style addressing; else `WEFT_S3_PATH_STYLE`; else on when an endpoint is set.
    pub path_style: Option<bool>,
    /// Multipart threshold and part size in bytes (at least [`MIN_PART_SIZE`]).
    pub part_size: usize,
    /// Attempts per request, the first included (SDK standard retry mode).
    pub max_attempts: u32,
    /// Time-out of one attempt of one request (until the response headers).
    pub attempt_timeout: Duration,
    /// Time-out of connecting.
    pub connect_timeout: Duration,
    /// Check at start-up that the bucket exists and that conditional writes are honoured.
    pub probe: bool,
}

impl S3Options {
    /// Options for `bucket` and `prefix`, everything else from the environment.
    pub fn new(bucket: impl Into<String>, prefix: &str) -> S3Options {
        let prefix = prefix.trim_matches('/');
        S3Options {
            bucket: bucket.into(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            endpoint: None,
            region: None,
            credentials: None,
            path_style: None,
            part_size: DEFAULT_PART_SIZE,
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            probe: true,
        }
    }

    /// Parses `s3://bucket` or `s3://bucket/prefix`.
    pub fn from_url(url: &str) -> Result<S3Options> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("an S3 URL starts with `s3://`"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("the bucket name is missing"));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            Key::new(prefix).map_err(|e| invalid(&format!("bad prefix: {e}")))?;
        }
        Ok(S3Options::new(bucket, prefix))
    }
}

/// A bucket (and prefix) through aws-sdk-s3.
#[derive(Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
    stats: RequestStats,
}

impl S3Store {
    /// Builds the client, then (unless `options.probe` is off) checks that the bucket exists and that
    /// the server honours conditional writes, with a clear error when not.
    pub async fn connect(options: S3Options) -> Result<S3Store> {
        // HTTPS with rustls on ring (system roots); also used by the credential providers
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(endpoint) = &options.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some((id, secret)) = &options.credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "weft"));
        }
        let sdk = loader.load().await;
        let endpoint_set = options.endpoint.is_some()
            || sdk.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let path_style = options
            .path_style
            .or_else(|| env_bool("WEFT_S3_PATH_STYLE"))
            .unwrap_or(endpoint_set);
        let mut config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(options.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(50))
                    .with_max_backoff(Duration::from_secs(5)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(options.connect_timeout)
                    .operation_attempt_timeout(options.attempt_timeout)
                    .build(),
            )
            // S3-compatible servers disagree on the newer checksum headers: send them only when needed
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if sdk.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        let store = S3Store {
            client: Client::from_conf(config.build()),
            bucket: options.bucket,
            prefix: options.prefix,
            part_size: options.part_size.max(MIN_PART_SIZE),
            stats: RequestStats::default(),
        };
        if options.probe {
            store.probe().await?;
        }
        Ok(store)
    }

    /// The SDK client, for what the trait does not cover (tests create buckets with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Checks that the bucket exists and can be reached, with a clear error when not.
    pub async fn check_bucket(&self) -> Result<()> {
        if let Err(err) = self.client.head_bucket().bucket(&self.bucket).send().await {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let message = match status {
                Some(404) => "it does not exist".to_owned(),
                Some(403) => "access denied".to_owned(),
                _ => DisplayErrorContext(&err).to_string(),
            };
            return Err(StoreError::BucketUnavailable {
                bucket: self.bucket.clone(),
                message,
            });
        }
        Ok(())
    }

    async fn probe(&self) -> Result<()> {
        self.check_bucket().await?;
        let report = check_conditional_writes(self).await?;
        match report.first_failure() {
            None => {
                tracing::debug!(store = %self.url(), "conditional writes honoured");
                Ok(())
            }
            Some(step) => Err(StoreError::ConditionalWritesUnsupported {
                store: self.url(),
                detail: format!("{}: {}", step.name, step.detail),
            }),
        }
    }

    fn full(&self, key: &Key) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    fn conflict(
        &self,
        op: &'static str,
        key: &Key,
        condition: &Condition,
        status: u16,
    ) -> StoreError {
        self.stats.record_conflict();
        StoreError::Conflict {
            op,
            key: key.to_string(),
            reason: format!("condition {} not met (HTTP {status})", condition.describe()),
        }
    }

    /// Maps a failed write: 412 and 409 always, and 404 under `If-Match`, are a conflict.
    fn write_error<E>(
        &self,
        op: &'static str,
        s3_op: &'static str,
        key: &Key,
        condition: &Condition,
        err: SdkError<E>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match status_of(&err) {
            Some(s @ (412 | 409)) if *condition != Condition::None => {
                self.conflict(op, key, condition, s)
            }
            Some(404) if matches!(condition, Condition::IfVersion(_)) => {
                self.conflict(op, key, condition, 404)
            }
            _ => s3_error(s3_op, key.as_str(), err),
        }
    }

    async fn put_object(&self, key: &Key, body: Bytes, condition: &Condition) -> Result<Version> {
        self.stats.record(RequestKind::Put);
        let len = body.len() as u64;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(ByteStream::from(body));
        request = match condition {
            Condition::None => request,
            Condition::IfAbsent => request.if_none_match("*"),
            Condition::IfVersion(v) => request.if_match(v.as_str()),
        };
        match request.send().await {
            Ok(out) => {
                self.stats.record_written(len);
                etag(out.e_tag(), "PutObject", key)
            }
            Err(err) => Err(self.write_error("put", "PutObject", key, condition, err)),
        }
    }

    /// A multipart upload of `first`, `second` and the rest of `body`, completed under `condition`.
    async fn put_multipart(
        &self,
        key: &Key,
        first: Bytes,
        second: Bytes,
        body: &mut BodyReader,
        condition: &Condition,
    ) -> Result<Version> {
        // fail before uploading everything when the condition already fails
        match (condition, self.head(key).await) {
            (Condition::IfAbsent, Ok(_)) => return Err(self.conflict("put", key, condition, 412)),
            (Condition::IfVersion(want), Ok(meta)) if meta.version != *want => {
                return Err(self.conflict("put", key, condition, 412));
            }
            (Condition::IfVersion(_), Err(StoreError::NotFound { .. })) => {
                return Err(self.conflict("put", key, condition, 404));
            }
            (_, Err(StoreError::NotFound { .. })) | (_, Ok(_)) => {}
            (_, Err(other)) => return Err(other),
        }
        self.stats.record(RequestKind::Put);
        let full = self.full(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", key.as_str(), e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self
            .upload_parts(key, &full, &upload_id, first, second, body, condition)
            .await;
        if result.is_err() {
            self.stats.record(RequestKind::Put);
            if let Err(err) = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(key = %full, error = %DisplayErrorContext(&err), "aborting a multipart upload failed");
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_parts(
        &self,
        key: &Key,
        full: &str,
        upload_id: &str,
        first: Bytes,
        second: Bytes,
        body: &mut BodyReader,
        condition: &Condition,
    ) -> Result<Version> {
        let mut parts = Vec::new();
        let mut next = Some(first);
        let mut queued = Some(second);
        while let Some(chunk) = next.take() {
            let number = i32::try_from(parts.len() + 1).unwrap_or(i32::MAX);
            let len = chunk.len() as u64;
            self.stats.record(RequestKind::Put);
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|e| s3_error("UploadPart", key.as_str(), e))?;
            self.stats.record_written(len);
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .build(),
            );
            next = match queued.take() {
                Some(chunk) => Some(chunk),
                None => {
                    let chunk = read_chunk(body, self.part_size, key).await?;
                    (!chunk.is_empty()).then_some(chunk)
                }
            };
        }
        self.stats.record(RequestKind::Put);
        let mut request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        request = match condition {
            Condition::None => request,
            Condition::IfAbsent => request.if_none_match("*"),
            Condition::IfVersion(v) => request.if_match(v.as_str()),
        };
        match request.send().await {
            Ok(out) => etag(out.e_tag(), "CompleteMultipartUpload", key),
            // moto answers `<CompleteMultipartUploadResponse>`, which the SDK cannot parse: the
            // upload did complete (HTTP 200), so read the new version back
            Err(err) if status_of(&err) == Some(200) => Ok(self.head(key).await?.version),
            Err(err) => {
                Err(self.write_error("put", "CompleteMultipartUpload", key, condition, err))
            }
        }
    }
}

fn env_bool(name: &str) -> Option<bool> {
    let value = std::env::var(name).ok()?;
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => {
            tracing::warn!(%name, %value, "ignoring a value that is not true or false");
            None
        }
    }
}

fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

fn s3_error<E>(op: &'static str, key: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    StoreError::S3 {
        op,
        key: key.to_owned(),
        status: status_of(&err),
        code: err.code().map(str::to_owned),
        message: DisplayErrorContext(&err).to_string(),
    }
}

fn etag(tag: Option<&str>, op: &'static str, key: &Key) -> Result<Version> {
    match tag {
        Some(tag) if !tag.is_empty() => Ok(Version::new(tag)),
        _ => Err(StoreError::S3 {
            op,
            key: key.to_string(),
            status: None,
            code: None,
            message: "the response has no ETag, so conditional writes cannot work".to_owned(),
        }),
    }
}

fn size(len: Option<i64>) -> u64 {
    len.and_then(|l| u64::try_from(l).ok()).unwrap_or(0)
}

/// Reads up to `want` bytes (fewer only at the end of the body).
async fn read_chunk(body: &mut BodyReader, want: usize, key: &Key) -> Result<Bytes> {
    let mut buf = Vec::with_capacity(want);
    body.take(want as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|source| StoreError::Body {
            key: key.to_string(),
            source,
        })?;
    Ok(Bytes::from(buf))
}

#[async_trait]
impl ObjectStore for S3Store {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn get(&self, key: &Key) -> Result<Object> {
        let reader = self.get_stream(key).await?;
        let version = reader.meta.version;
        let mut bytes = Vec::with_capacity(usize::try_from(reader.meta.size).unwrap_or(0));
        let mut body = reader.body;
        body.read_to_end(&mut bytes)
            .await
            .map_err(|e| StoreError::S3 {
                op: "GetObject",
                key: key.to_string(),
                status: None,
                code: None,
                message: format!("reading the body failed: {e}"),
            })?;
        Ok(Object {
            bytes: Bytes::from(bytes),
            version,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.stats.record(RequestKind::Head);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(out) => Ok(ObjectMeta {
                version: etag(out.e_tag(), "HeadObject", key)?,
                size: size(out.content_length()),
            }),
            Err(err) if status_of(&err) == Some(404) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Err(err) => Err(s3_error("HeadObject", key.as_str(), err)),
        }
    }

    async fn put(&self, key: &Key, body: Bytes, condition: Condition) -> Result<Version> {
        self.put_object(key, body, &condition).await
    }

    async fn delete(&self, key: &Key, if_version: Option<&Version>) -> Result<()> {
        self.stats.record(RequestKind::Delete);
        let mut request = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key));
        if let Some(v) = if_version {
            request = request.if_match(v.as_str());
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let condition =
                    if_version.map_or(Condition::None, |v| Condition::IfVersion(v.clone()));
                if condition == Condition::None && status_of(&err) == Some(404) {
                    return Ok(());
                }
                Err(self.write_error("delete", "DeleteObject", key, &condition, err))
            }
        }
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage> {
        check_prefix(prefix)?;
        self.stats.record(RequestKind::List);
        let limit = i32::try_from(options.clamped_limit()).unwrap_or(1000);
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .max_keys(limit)
            .set_continuation_token(options.page.map(|t| t.0))
            .send()
            .await
            .map_err(|e| s3_error("ListObjectsV2", prefix, e))?;
        let entries = out
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?.strip_prefix(&self.prefix)?;
                // keys weft cannot have written (or its own `.weft/` probes) are not listed
                let key = Key::new(key).ok()?;
                Some(ListEntry {
                    key,
                    version: Version::new(object.e_tag().unwrap_or_default()),
                    size: size(object.size()),
                })
            })
            .collect();
        let next = match (out.is_truncated(), out.next_continuation_token()) {
            (Some(true), Some(token)) => Some(PageToken(token.to_owned())),
            _ => None,
        };
        Ok(ListPage { entries, next })
    }

    async fn get_stream(&self, key: &Key) -> Result<ObjectReader> {
        self.stats.record(RequestKind::Get);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
        {
            Ok(out) => {
                let size = size(out.content_length());
                self.stats.record_read(size);
                Ok(ObjectReader {
                    meta: ObjectMeta {
                        version: etag(out.e_tag(), "GetObject", key)?,
                        size,
                    },
                    body: Box::pin(out.body.into_async_read()),
                })
            }
            Err(err) if status_of(&err) == Some(404) => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Err(err) => Err(s3_error("GetObject", key.as_str(), err)),
        }
    }

    async fn put_stream(
        &self,
        key: &Key,
        mut body: BodyReader,
        condition: Condition,
    ) -> Result<Version> {
        let first = read_chunk(&mut body, self.part_size, key).await?;
        if first.len() < self.part_size {
            return self.put_object(key, first, &condition).await;
        }
        let second = read_chunk(&mut body, self.part_size, key).await?;
        if second.is_empty() {
            return self.put_object(key, first, &condition).await;
        }
        self.put_multipart(key, first, second, &mut body, &condition)
            .await
    }

    fn stats(&self) -> &RequestStats {
        &self.stats
    }
}
