//! The local-directory backend: the embedded default of `weft run` and of a single server.
//!
//! Layout: the object `a/b.json` is the plain file `ROOT/a/b.json`, so the state stays readable with
//! ordinary tools. `ROOT/.weft/` holds the store's bookkeeping: `locks/` (256 lock files, one per
//! stripe of keys) and `tmp/` (bodies being written).
//!
//! Semantics, the same as S3's, also between processes on one machine:
//! - a write goes to a temporary file that is renamed over the key (readers see the old or the new
//!   content, never a mix); with `fsync` on (the default) the file and its directory are synced;
//! - a conditional write or delete checks and replaces while holding an exclusive `flock` on the key's
//!   lock stripe, so two processes never both win;
//! - the version tag is the file's inode and modification time, read with `fstat` on the same open file
//!   as the content. Each write sets the new file's modification time to a nanosecond strictly after the
//!   previous version's, so a tag never repeats while a key exists; [`LocalStore::open`] checks that the
//!   file system keeps nanoseconds.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::error::{Result, StoreError};
use crate::key::{Key, RESERVED_PREFIX, check_prefix};
use crate::memory::condition_fails;
use crate::object::{
    BodyReader, Condition, ListEntry, ListOptions, ListPage, Object, ObjectMeta, ObjectReader,
    ObjectStore, PageToken, Version,
};
use crate::stats::{RequestKind, RequestStats};

/// Number of lock files; keys are spread over them by a stable hash.
const LOCK_STRIPES: u32 = 256;
/// Temporary files older than this are left-overs of a crashed process, removed by `open`.
const STALE_TEMP: Duration = Duration::from_secs(24 * 3600);
/// How often a rename is retried when a concurrent delete removed the (empty) directory meanwhile.
const RENAME_TRIES: usize = 8;

/// Objects as files under a root directory.
#[derive(Debug)]
pub struct LocalStore {
    inner: Arc<Inner>,
    stats: RequestStats,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    locks: PathBuf,
    tmp: PathBuf,
    fsync: bool,
}

impl LocalStore {
    /// Opens (and creates) a store in `root`, with `fsync` on.
    ///
    /// Fails when the directory cannot be created or written, or when its file system does not keep
    /// nanosecond modification times (the version tags depend on them).
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalStore> {
        let root = root.into();
        let meta = root.join(RESERVED_PREFIX);
        let inner = Inner {
            locks: meta.join("locks"),
            tmp: meta.join("tmp"),
            root,
            fsync: true,
        };
        for dir in [&inner.root, &inner.locks, &inner.tmp] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))?;
        }
        inner.probe_nanoseconds()?;
        inner.remove_stale_temps();
        Ok(LocalStore {
            inner: Arc::new(inner),
            stats: RequestStats::default(),
        })
    }

    /// Turns `fsync` of written files and their directories on or off. Off, a crash of the machine
    /// (not of the process) may lose the last writes; atomicity and conditions are unchanged.
    pub fn with_fsync(mut self, fsync: bool) -> LocalStore {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.fsync = fsync;
        }
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        let root = inner.root.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::io("run a blocking task on", root, io::Error::other(e)))?
    }

    fn counted<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(StoreError::Conflict { .. }) = &result {
            self.stats.record_conflict();
        }
        result
    }
}

/// Removes a temporary file when dropped, unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Inner {
    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn temp(&self) -> TempFile {
        TempFile {
            path: self.tmp.join(uuid::Uuid::new_v4().simple().to_string()),
            armed: true,
        }
    }

    /// Takes the exclusive lock of `key`'s stripe; released when the file is dropped.
    fn lock(&self, key: &Key) -> Result<File> {
        // FNV-1a: stable across processes and versions, unlike std's hasher
        let hash = key.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let path = self.locks.join(format!("{:02x}.lock", hash % LOCK_STRIPES));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("open lock file", &path, e))?;
        file.lock().map_err(|e| StoreError::io("lock", &path, e))?;
        Ok(file)
    }

    fn probe_nanoseconds(&self) -> Result<()> {
        let temp = self.temp();
        let file = File::create_new(&temp.path)
            .map_err(|e| StoreError::io("create probe file", &temp.path, e))?;
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let want = SystemTime::UNIX_EPOCH + Duration::new(since_epoch.as_secs(), 123_456_789);
        file.set_modified(want)
            .and_then(|()| file.metadata())
            .and_then(|m| m.modified())
            .map_err(|e| StoreError::io("set modification time of", &temp.path, e))
            .and_then(|got| {
                if got == want {
                    Ok(())
                } else {
                    Err(StoreError::io(
                        "check nanosecond timestamps in",
                        &self.root,
                        io::Error::other(
                            "the file system does not keep nanosecond modification times, which \
                             the local store's version tags need; use another directory (ext4, xfs, \
                             btrfs, tmpfs and APFS work)",
                        ),
                    ))
                }
            })
    }

    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.tmp) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn read(&self, key: &Key) -> Result<Option<(Vec<u8>, Version)>> {
        let path = self.path(key);
        let Some(mut file) = open_object(&path)? else {
            return Ok(None);
        };
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("stat", &path, e))?;
        if !meta.is_file() {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read", &path, e))?;
        Ok(Some((bytes, version_of(&meta))))
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        Ok(current(&self.path(key))?
            .filter(Metadata::is_file)
            .map(|m| ObjectMeta {
                version: version_of(&m),
                size: m.len(),
            }))
    }

    /// Checks the condition under the key's lock, then writes `body` and renames it into place.
    fn put(&self, key: &Key, body: &[u8], condition: &Condition) -> Result<Version> {
        let path = self.path(key);
        let _lock = self.lock(key)?;
        let existing = current(&path)?;
        check(key, "put", condition, existing.as_ref())?;
        let temp = self.temp();
        let mut file =
            File::create_new(&temp.path).map_err(|e| StoreError::io("create", &temp.path, e))?;
        file.write_all(body)
            .map_err(|e| StoreError::io("write", &temp.path, e))?;
        self.commit(key, file, temp, &path, existing.as_ref())
    }

    /// The end of a streamed put: the body is already in `temp`, synced.
    fn put_file(&self, key: &Key, temp: TempFile, condition: &Condition) -> Result<Version> {
        let path = self.path(key);
        let file = OpenOptions::new()
            .write(true)
            .open(&temp.path)
            .map_err(|e| StoreError::io("open", &temp.path, e))?;
        if self.fsync {
            file.sync_data()
                .map_err(|e| StoreError::io("fsync", &temp.path, e))?;
        }
        let _lock = self.lock(key)?;
        let existing = current(&path)?;
        check(key, "put", condition, existing.as_ref())?;
        self.commit(key, file, temp, &path, existing.as_ref())
    }

    /// Stamps the new version, syncs and renames. Called with the key's lock held.
    fn commit(
        &self,
        key: &Key,
        file: File,
        mut temp: TempFile,
        path: &Path,
        existing: Option<&Metadata>,
    ) -> Result<Version> {
        if existing.is_some_and(|m| m.is_dir()) {
            return Err(StoreError::InvalidKey {
                key: key.to_string(),
                reason: "the local store has objects below this key (`key/...`), so it cannot also be an object",
            });
        }
        let now = SystemTime::now();
        let mtime = match existing.and_then(|m| m.modified().ok()) {
            Some(previous) if previous >= now => previous + Duration::from_nanos(1),
            _ => now,
        };
        file.set_modified(mtime)
            .map_err(|e| StoreError::io("set modification time of", &temp.path, e))?;
        if self.fsync {
            file.sync_all()
                .map_err(|e| StoreError::io("fsync", &temp.path, e))?;
        }
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("stat", &temp.path, e))?;
        drop(file);
        self.rename_into_place(&temp.path, path)?;
        temp.armed = false;
        if self.fsync {
            sync_dir(path.parent().unwrap_or(&self.root))?;
        }
        Ok(version_of(&meta))
    }

    fn rename_into_place(&self, from: &Path, to: &Path) -> Result<()> {
        let parent = to.parent().unwrap_or(&self.root);
        for _ in 0..RENAME_TRIES {
            match fs::rename(from, to) {
                Ok(()) => return Ok(()),
                // the directory does not exist yet, or a delete removed it while it was empty
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_dirs(parent)?,
                Err(e) => return Err(StoreError::io("rename into", to, e)),
            }
        }
        fs::rename(from, to).map_err(|e| StoreError::io("rename into", to, e))
    }

    /// Creates `dir` and its missing parents, syncing each new entry's directory.
    fn create_dirs(&self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut cursor = dir;
        while cursor != self.root && !cursor.is_dir() {
            missing.push(cursor);
            match cursor.parent() {
                Some(parent) => cursor = parent,
                None => break,
            }
        }
        for new in missing.into_iter().rev() {
            match fs::create_dir(new) {
                Ok(()) => {
                    if self.fsync {
                        sync_dir(new.parent().unwrap_or(&self.root))?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io("create directory", new, e)),
            }
        }
        Ok(())
    }

    fn delete(&self, key: &Key, if_version: Option<&Version>) -> Result<()> {
        let path = self.path(key);
        let _lock = self.lock(key)?;
        let existing = current(&path)?;
        if let Some(want) = if_version {
            check(
                key,
                "delete",
                &Condition::IfVersion(want.clone()),
                existing.as_ref(),
            )?;
        }
        if existing.is_none() {
            return Ok(());
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("remove", &path, e)),
        }
        let parent = path.parent().unwrap_or(&self.root);
        if self.fsync {
            sync_dir(parent)?;
        }
        // remove the directories the delete left empty; one that is not empty stops the climb
        let mut dir = parent;
        while dir != self.root && fs::remove_dir(dir).is_ok() {
            match dir.parent() {
                Some(up) => dir = up,
                None => break,
            }
        }
        Ok(())
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<ListPage> {
        let mut candidates = self.candidates(prefix, after)?.into_iter();
        // only the files of this page are read (stat): a listing of N keys in pages of 1,000 reads
        // each file's metadata once, not once per page after it
        let found = listed(candidates.by_ref(), limit);
        let next = match found.last() {
            Some(last) if candidates.next().is_some() => Some(PageToken(last.key.to_string())),
            _ => None,
        };
        Ok(ListPage {
            entries: found,
            next,
        })
    }

    /// Every key under `prefix` in one walk of its folders (not one walk per page).
    fn list_all(&self, prefix: &str) -> Result<Vec<ListEntry>> {
        let candidates = self.candidates(prefix, None)?;
        let count = candidates.len();
        Ok(listed(candidates.into_iter(), count))
    }

    /// The files under `prefix` after key `after`, in key order, not read yet.
    fn candidates(&self, prefix: &str, after: Option<&str>) -> Result<Vec<(Key, PathBuf)>> {
        let (dir_key, start_dir) = match prefix.rfind('/') {
            Some(i) => (&prefix[..=i], self.root.join(&prefix[..i])),
            None => ("", self.root.clone()),
        };
        let mut candidates = Vec::new();
        self.walk(&start_dir, dir_key, prefix, after, &mut candidates)?;
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(candidates)
    }

    fn walk(
        &self,
        dir: &Path,
        dir_key: &str,
        prefix: &str,
        after: Option<&str>,
        found: &mut Vec<(Key, PathBuf)>,
    ) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(StoreError::io("read directory", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("read directory", dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(dir = %dir.display(), "skipping a file name that is not UTF-8");
                continue;
            };
            if dir_key.is_empty() && name.starts_with(RESERVED_PREFIX) {
                continue;
            }
            let key = format!("{dir_key}{name}");
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                let sub = format!("{key}/");
                if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                    self.walk(&entry.path(), &sub, prefix, after, found)?;
                }
            } else if file_type.is_file()
                && key.starts_with(prefix)
                && after.is_none_or(|a| key.as_str() > a)
            {
                let Ok(key) = Key::new(key) else { continue };
                found.push((key, entry.path()));
            }
        }
        Ok(())
    }
}

/// The first `limit` of `candidates` that are still files, with their version and size (a file
/// replaced or deleted since the walk is listed as it is now, or left out).
fn listed(candidates: impl Iterator<Item = (Key, PathBuf)>, limit: usize) -> Vec<ListEntry> {
    let mut found = Vec::with_capacity(limit.min(1024));
    for (key, path) in candidates {
        if found.len() == limit {
            break;
        }
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            found.push(ListEntry {
                version: version_of(&meta),
                size: meta.len(),
                key,
            });
        }
    }
    found
}

/// Opens an object's file; `None` when there is none.
fn open_object(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(StoreError::io("open", path, e)),
    }
}

/// The metadata of what is at `path` now: `None` when nothing, a directory's when a directory.
fn current(path: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(StoreError::io("stat", path, e)),
    }
}

fn check(
    key: &Key,
    op: &'static str,
    condition: &Condition,
    existing: Option<&Metadata>,
) -> Result<()> {
    let version = existing.filter(|m| m.is_file()).map(version_of);
    match condition_fails(condition, version.as_ref()) {
        None => Ok(()),
        Some(reason) => Err(StoreError::Conflict {
            op,
            key: key.to_string(),
            reason,
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

#[cfg(unix)]
fn version_of(meta: &Metadata) -> Version {
    use std::os::unix::fs::MetadataExt;
    Version::new(format!(
        "{:x}.{:09}-{:x}",
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

#[cfg(not(unix))]
fn version_of(meta: &Metadata) -> Version {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Version::new(format!("{nanos:x}-{:x}", meta.len()))
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn url(&self) -> String {
        format!("file://{}", self.inner.root.display())
    }

    async fn get(&self, key: &Key) -> Result<Object> {
        self.stats.record(RequestKind::Get);
        let k = key.clone();
        match self.blocking(move |inner| inner.read(&k)).await? {
            Some((bytes, version)) => {
                self.stats.record_read(bytes.len() as u64);
                Ok(Object {
                    bytes: Bytes::from(bytes),
                    version,
                })
            }
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.stats.record(RequestKind::Head);
        let k = key.clone();
        self.blocking(move |inner| inner.head(&k))
            .await?
            .ok_or_else(|| StoreError::NotFound {
                key: key.to_string(),
            })
    }

    async fn put(&self, key: &Key, body: Bytes, condition: Condition) -> Result<Version> {
        self.stats.record(RequestKind::Put);
        let len = body.len() as u64;
        let k = key.clone();
        let result = self
            .blocking(move |inner| inner.put(&k, &body, &condition))
            .await;
        if result.is_ok() {
            self.stats.record_written(len);
        }
        self.counted(result)
    }

    async fn delete(&self, key: &Key, if_version: Option<&Version>) -> Result<()> {
        self.stats.record(RequestKind::Delete);
        let k = key.clone();
        let want = if_version.cloned();
        let result = self
            .blocking(move |inner| inner.delete(&k, want.as_ref()))
            .await;
        self.counted(result)
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage> {
        check_prefix(prefix)?;
        self.stats.record(RequestKind::List);
        let prefix = prefix.to_owned();
        let limit = options.clamped_limit();
        let after = options.page.map(|t| t.0);
        self.blocking(move |inner| inner.list(&prefix, after.as_deref(), limit))
            .await
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<ListEntry>> {
        check_prefix(prefix)?;
        self.stats.record(RequestKind::List);
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.list_all(&prefix)).await
    }

    async fn get_stream(&self, key: &Key) -> Result<ObjectReader> {
        self.stats.record(RequestKind::Get);
        let path = self.inner.path(key);
        let not_found = || StoreError::NotFound {
            key: key.to_string(),
        };
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::NotADirectory
                        | io::ErrorKind::IsADirectory
                ) =>
            {
                return Err(not_found());
            }
            Err(e) => return Err(StoreError::io("open", &path, e)),
        };
        let meta = file
            .metadata()
            .await
            .map_err(|e| StoreError::io("stat", &path, e))?;
        if !meta.is_file() {
            return Err(not_found());
        }
        self.stats.record_read(meta.len());
        Ok(ObjectReader {
            meta: ObjectMeta {
                version: version_of(&meta),
                size: meta.len(),
            },
            body: Box::pin(file),
        })
    }

    async fn put_stream(
        &self,
        key: &Key,
        mut body: BodyReader,
        condition: Condition,
    ) -> Result<Version> {
        self.stats.record(RequestKind::Put);
        let temp = self.inner.temp();
        let mut file = tokio::fs::File::create_new(&temp.path)
            .await
            .map_err(|e| StoreError::io("create", &temp.path, e))?;
        let written = tokio::io::copy(&mut body, &mut file)
            .await
            .map_err(|source| StoreError::Body {
                key: key.to_string(),
                source,
            })?;
        file.flush()
            .await
            .map_err(|e| StoreError::io("write", &temp.path, e))?;
        drop(file);
        let k = key.clone();
        let result = self
            .blocking(move |inner| inner.put_file(&k, temp, &condition))
            .await;
        if result.is_ok() {
            self.stats.record_written(written);
        }
        self.counted(result)
    }

    fn stats(&self) -> &RequestStats {
        &self.stats
    }
}
