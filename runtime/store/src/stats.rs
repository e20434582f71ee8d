//! Round-trip counters: storage requests are the latency floor on real S3 (DESIGN.md §4).

use std::sync::atomic::{AtomicU64, Ordering};

/// Kinds of request a backend counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// A read of content (`get`, `get_stream`).
    Get,
    /// A read of metadata only.
    Head,
    /// A write (`put`, `put_stream`; every multipart request counts once).
    Put,
    /// One page of a listing.
    List,
    /// A delete.
    Delete,
}

/// Live counters of one store instance; cheap to update from many tasks at once.
#[derive(Debug, Default)]
pub struct RequestStats {
    get: AtomicU64,
    head: AtomicU64,
    put: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    conflicts: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Content reads.
    pub get: u64,
    /// Metadata reads.
    pub head: u64,
    /// Writes (each multipart request counts once).
    pub put: u64,
    /// Listing pages.
    pub list: u64,
    /// Deletes.
    pub delete: u64,
    /// Writes or deletes whose condition failed.
    pub conflicts: u64,
    /// Content bytes read by `get` (streamed reads count when opened, by size).
    pub bytes_read: u64,
    /// Content bytes written.
    pub bytes_written: u64,
}

impl RequestCounts {
    /// All requests, whatever their kind.
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.list + self.delete
    }

    /// The requests made between `earlier` and `self`.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            get: self.get.saturating_sub(earlier.get),
            head: self.head.saturating_sub(earlier.head),
            put: self.put.saturating_sub(earlier.put),
            list: self.list.saturating_sub(earlier.list),
            delete: self.delete.saturating_sub(earlier.delete),
            conflicts: self.conflicts.saturating_sub(earlier.conflicts),
            bytes_read: self.bytes_read.saturating_sub(earlier.bytes_read),
            bytes_written: self.bytes_written.saturating_sub(earlier.bytes_written),
        }
    }
}

impl RequestStats {
    /// Counts one request.
    pub fn record(&self, kind: RequestKind) {
        let counter = match kind {
            RequestKind::Get => &self.get,
            RequestKind::Head => &self.head,
            RequestKind::Put => &self.put,
            RequestKind::List => &self.list,
            RequestKind::Delete => &self.delete,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one failed condition.
    pub fn record_conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts content bytes read.
    pub fn record_read(&self, bytes: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts content bytes written.
    pub fn record_written(&self, bytes: u64) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }
}
