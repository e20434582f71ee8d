//! Opening a store from a URL (`WEFT_STORAGE`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::local::LocalStore;
use crate::memory::MemoryStore;
use crate::object::DynStore;
use crate::s3::{S3Options, S3Store};

/// Which backend a URL names, before anything is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `memory://`.
    Memory,
    /// `file:///path` or a plain path.
    Local(PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix, `""` or ending with `/`.
        prefix: String,
    },
}

impl StoreUrl {
    /// Parses `file:///path`, a plain path, `s3://bucket/prefix` or `memory://`.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(rest) = url.strip_prefix("memory://") {
            return if rest.is_empty() {
                Ok(StoreUrl::Memory)
            } else {
                Err(invalid("`memory://` takes nothing after it"))
            };
        }
        if url.starts_with("s3://") {
            let options = S3Options::from_url(url)?;
            return Ok(StoreUrl::S3 {
                bucket: options.bucket,
                prefix: options.prefix,
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a file URL needs an absolute path: `file:///var/lib/weft`",
                ));
            }
            return Ok(StoreUrl::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(invalid(&format!("unknown scheme `{scheme}`")));
        }
        Ok(StoreUrl::Local(PathBuf::from(url)))
    }
}

/// Opens the store a URL names: `memory://`, `file:///path` or a plain path (a local directory,
/// created if missing), `s3://bucket/prefix` (S3 configured from the AWS environment, probed once).
pub async fn open(url: &str) -> Result<DynStore> {
    Ok(match StoreUrl::parse(url)? {
        StoreUrl::Memory => Arc::new(MemoryStore::new()),
        StoreUrl::Local(path) => {
            let store = tokio::task::spawn_blocking(move || LocalStore::open(path))
                .await
                .map_err(|e| StoreError::InvalidUrl {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })??;
            Arc::new(store)
        }
        StoreUrl::S3 { bucket, prefix } => {
            Arc::new(S3Store::connect(S3Options::new(bucket, &prefix)).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert_eq!(
            StoreUrl::parse("file:///var/lib/weft").unwrap(),
            StoreUrl::Local("/var/lib/weft".into())
        );
        assert_eq!(
            StoreUrl::parse(".weft-data").unwrap(),
            StoreUrl::Local(".weft-data".into())
        );
        assert_eq!(
            StoreUrl::parse("s3://b/p/q/").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q/".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://b").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        for bad in [
            "",
            "s3://",
            "s3:///p",
            "s3://b/../x",
            "gs://b",
            "file://rel",
            "memory://x",
        ] {
            assert!(
                matches!(StoreUrl::parse(bad), Err(StoreError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
