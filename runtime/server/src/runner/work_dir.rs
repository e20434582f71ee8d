//! The scratch directories of WorkingDirectory tasks. Every task inside one WorkingDirectory task
//! run gets the same host folder as its `/` (the engine grants nothing else), so a file one task
//! writes is there for the next. The folder lives on the driving process's disk, in a private
//! folder of the process: `{temp}/weft-work-XXXXXX/{executionId}/{workingDirectoryTaskRunId}`.
//!
//! - Before its first task: a fresh folder with the WorkingDirectory's `inputFiles` (name ->
//!   content, rendered; a `kestra:///` URI is copied from internal storage).
//! - After each successful task: the files matching its `outputFiles` globs are uploaded and
//!   become the WorkingDirectory task run's `outputFiles` output (name -> URI).
//! - `cache` (`patterns`, `ttl`): before its first task, the files of the last cache of this
//!   WorkingDirectory task (one tar archive per namespace, flow and task in the store,
//!   `wd-cache/{namespace}/{flowId}/{taskId}.tar`) are put back, unless older than `ttl`; after
//!   each successful task, the files matching `patterns` are saved as the new cache.
//! - When the execution ends, its folders are removed.
//!
//! A WorkingDirectory whose driver died mid-way cannot take its files elsewhere: its next task
//! starts from a fresh folder (cache and `inputFiles` only), with a warning in its logs. Files are
//! read back beneath the folder without following symlinks.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use weft_executor::{RunTask, WorkingDirectory};
use weft_flow::expr::Renderer;
use weft_store::repo::ExecutionFiles;

/// The scratch directories of this process's WorkingDirectory tasks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WorkDirs;

/// This process's own folder for scratch directories: private (0700), under the temporary
/// directory, made the first time a WorkingDirectory needs one (never for a process that runs
/// none). Each execution's folders go when it ends; the folder itself stays after the process
/// (empty unless the process died with executions running).
static ROOT: std::sync::OnceLock<Result<tempfile::TempDir, String>> = std::sync::OnceLock::new();

impl WorkDirs {
    fn root() -> Result<&'static Path, String> {
        ROOT.get_or_init(|| {
            tempfile::Builder::new()
                .prefix("weft-work-")
                .tempdir()
                .map_err(|e| format!("no folder for WorkingDirectory tasks: {e}"))
        })
        .as_ref()
        .map(tempfile::TempDir::path)
        .map_err(Clone::clone)
    }

    /// The folder of `task`'s WorkingDirectory, made when this process has none yet (with the
    /// WorkingDirectory's cache and `inputFiles`), and a warning for the task's logs when it had
    /// to be made for a task that is not the first (its driver changed, or the execution was
    /// restarted: the files of the tasks before are not there); `None` outside a
    /// WorkingDirectory.
    pub(crate) async fn prepare(
        &self,
        task: &RunTask,
        renderer: &Renderer,
        files: &ExecutionFiles,
    ) -> Result<Option<(PathBuf, Option<String>)>, String> {
        let Some(wd) = &task.working_directory else {
            return Ok(None);
        };
        let dir = Self::root()?.join(&task.execution_id).join(&wd.task_run_id);
        if dir.is_dir() {
            return Ok(Some((dir, None)));
        }
        let warning = (!wd.first).then(|| {
            format!(
                "the working directory of `{}` was not on this host (the process that ran its earlier tasks ended, or the execution was restarted): this task starts from a fresh one, without the files of the tasks before it",
                wd.task_id
            )
        });
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        if let Some(cache) = Cache::of(wd)? {
            cache.restore(files, wd, &dir).await?;
        }
        let render = |template: &str| {
            renderer
                .render(template, &super::host_tasks::host_context(task))
                .map_err(|e| e.to_string())
        };
        // (name, content, whether they are templates still to render)
        let inputs: Vec<(String, Json, bool)> = match wd.properties.get("inputFiles") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Object(map)) => map
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), true))
                .collect(),
            // rendered once as a whole: the values it gives are data, not templates
            Some(Json::String(text)) => match serde_json::from_str(&render(text)?) {
                Ok(Json::Object(map)) => map.into_iter().map(|(k, v)| (k, v, false)).collect(),
                _ => return Err("`inputFiles` must be a map of file name to content".into()),
            },
            Some(other) => {
                return Err(format!(
                    "`inputFiles` must be a map of file name to content, got {other}"
                ));
            }
        };
        for (name, content, templates) in inputs {
            let name = if templates { render(&name)? } else { name };
            let path = inside(&dir, &name)?;
            let content = match content {
                Json::String(text) if templates => render(&text)?,
                Json::String(text) => text,
                other => other.to_string(),
            };
            let bytes = if content.starts_with("kestra://") {
                files
                    .get(&content)
                    .await
                    .map_err(|e| format!("inputFiles `{name}`: {e}"))?
                    .to_vec()
            } else {
                content.into_bytes()
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| io_error(&path, e))?;
        }
        Ok(Some((dir, warning)))
    }

    /// After a successful attempt of `task` in `dir`: uploads the files matching the
    /// WorkingDirectory's `outputFiles` and returns its outputs (`outputFiles`: name -> URI);
    /// empty when it has no `outputFiles`.
    pub(crate) async fn collect(
        &self,
        task: &RunTask,
        dir: &Path,
        files: &ExecutionFiles,
    ) -> Result<Map<String, Json>, String> {
        let Some(wd) = &task.working_directory else {
            return Ok(Map::new());
        };
        if let Some(cache) = Cache::of(wd)? {
            cache.save(files, wd, dir).await?;
        }
        let globs: Vec<String> = match wd.properties.get("outputFiles") {
            Some(Json::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            Some(Json::String(one)) => vec![one.clone()],
            _ => return Ok(Map::new()),
        };
        let mut uploaded = Map::new();
        for name in local_files(dir)? {
            if !globs.iter().any(|g| glob_matches(g, &name)) {
                continue;
            }
            let bytes = read_beneath(dir, &name)?;
            let uri = files
                .uri_for(&format!("tasks/{}/{}/{name}", wd.task_id, wd.task_run_id))
                .map_err(|e| format!("outputFiles `{name}`: {e}"))?;
            files
                .put(&uri, bytes.into())
                .await
                .map_err(|e| format!("outputFiles `{name}`: {e}"))?;
            uploaded.insert(name, Json::String(uri));
        }
        Ok(Map::from_iter([(
            "outputFiles".to_string(),
            Json::Object(uploaded),
        )]))
    }

    /// Removes the folders of an execution that ended.
    pub(crate) fn remove_execution(&self, execution_id: &str) {
        // nothing to do in a process that never made a scratch folder
        let Some(Ok(root)) = ROOT.get() else {
            return;
        };
        let dir = root.path().join(execution_id);
        if dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a working directory");
        }
    }
}

/// A WorkingDirectory's `cache`.
struct Cache {
    patterns: Vec<String>,
    ttl: Option<chrono::TimeDelta>,
}

/// The first entry of a cache archive: when it was saved.
const CACHE_STAMP: &str = ".weft-cache-saved-at";

impl Cache {
    /// The `cache` of `wd`, if it has one; an error names what is wrong in it.
    fn of(wd: &WorkingDirectory) -> Result<Option<Cache>, String> {
        let Some(cache) = wd.properties.get("cache").filter(|c| !c.is_null()) else {
            return Ok(None);
        };
        let patterns = match cache.get("patterns") {
            Some(Json::Array(p)) => p
                .iter()
                .map(|g| {
                    g.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("cache.patterns: {g} is not a glob string"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err("cache.patterns is required (a list of globs)".into()),
        };
        let ttl = match cache.get("ttl").and_then(Json::as_str) {
            None => None,
            Some(t) => Some(
                weft_flow::duration::parse(t)
                    .map_err(|e| format!("cache.ttl: {e}"))?
                    .to_chrono(),
            ),
        };
        Ok(Some(Cache { patterns, ttl }))
    }

    fn key(files: &ExecutionFiles, wd: &WorkingDirectory) -> Result<weft_store::Key, String> {
        weft_store::repo::working_directory_cache_key(
            files.namespace(),
            files.flow_id(),
            &wd.task_id,
        )
        .map_err(|e| e.to_string())
    }

    /// Puts the saved files back in `dir`, unless there is none or it expired.
    async fn restore(
        &self,
        files: &ExecutionFiles,
        wd: &WorkingDirectory,
        dir: &Path,
    ) -> Result<(), String> {
        let key = Cache::key(files, wd)?;
        let bytes = match files.store().get(&key).await {
            Ok(o) => o.bytes,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(format!("cache: {e}")),
        };
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().map_err(|e| format!("cache: {e}"))?;
        let saved_at = entries
            .next()
            .and_then(|first| {
                let mut first = first.ok()?;
                let mut text = String::new();
                std::io::Read::read_to_string(&mut first, &mut text).ok()?;
                DateTime::parse_from_rfc3339(text.trim()).ok()
            })
            .ok_or("cache: the archive has no date: it is not one weft wrote")?;
        if self
            .ttl
            .is_some_and(|ttl| saved_at.with_timezone(&Utc) + ttl < Utc::now())
        {
            tracing::debug!(task = %wd.task_id, "WorkingDirectory cache expired: not restored");
            return Ok(());
        }
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("cache: {e}"))?;
            // `unpack_in` refuses paths that leave `dir`
            entry
                .unpack_in(dir)
                .map_err(|e| format!("cache: restoring a file: {e}"))?;
        }
        Ok(())
    }

    /// Saves the files of `dir` matching the patterns as the cache.
    async fn save(
        &self,
        files: &ExecutionFiles,
        wd: &WorkingDirectory,
        dir: &Path,
    ) -> Result<(), String> {
        let mut builder = tar::Builder::new(Vec::new());
        let stamp = Utc::now().to_rfc3339();
        let mut header = tar::Header::new_gnu();
        header.set_size(stamp.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, CACHE_STAMP, stamp.as_bytes())
            .map_err(|e| format!("cache: {e}"))?;
        for name in local_files(dir)? {
            if self.patterns.iter().any(|g| glob_matches(g, &name)) {
                let bytes = read_beneath(dir, &name)?;
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder
                    .append_data(&mut header, &name, &bytes[..])
                    .map_err(|e| format!("cache: {name}: {e}"))?;
            }
        }
        let bytes = builder.into_inner().map_err(|e| format!("cache: {e}"))?;
        files
            .store()
            .put(
                &Cache::key(files, wd)?,
                bytes.into(),
                weft_store::Condition::None,
            )
            .await
            .map_err(|e| format!("cache: {e}"))?;
        Ok(())
    }
}

/// Reads the regular file `name` of the folder `dir` written by plugins, resolved beneath `dir`
/// without following any symlink (a plugin may have replaced a file or a folder by a link to
/// the host's files since it was listed).
fn read_beneath(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let fail = |e: &dyn std::fmt::Display| format!("working directory: {name}: {e}");
    let root = std::fs::File::open(dir).map_err(|e| io_error(dir, e))?;
    let fd = rustix::fs::openat2(
        &root,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| fail(&e))?;
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| fail(&e))?;
    if !meta.is_file() {
        return Err(fail(&"not a regular file"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| fail(&e))?;
    Ok(bytes)
}

fn io_error(path: &Path, e: std::io::Error) -> String {
    format!("working directory: {}: {e}", path.display())
}

/// `dir/name`, refusing a name that leaves `dir`.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if !ok {
        return Err(format!(
            "inputFiles: {name:?} is not a file name inside the working directory"
        ));
    }
    Ok(dir.join(name))
}

/// The files under `root`, relative to it with `/` separators, sorted.
fn local_files(root: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut folders = vec![String::new()];
    while let Some(rel) = folders.pop() {
        let here = root.join(&rel);
        for entry in std::fs::read_dir(&here).map_err(|e| io_error(&here, e))? {
            let entry = entry.map_err(|e| io_error(&here, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => folders.push(path),
                Ok(t) if t.is_file() => found.push(path),
                _ => {}
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Whether `name` matches the glob `pattern` (`*`, `?`, `[...]`; `**` crosses folders).
fn glob_matches(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| {
        p.matches_with(
            name,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_folders() {
        assert!(glob_matches("out/*", "out/stay.txt"));
        assert!(!glob_matches("*", "out/stay.txt"));
        assert!(glob_matches("**/*.txt", "out/deep/stay.txt"));
        assert!(glob_matches("output.txt", "output.txt"));
    }

    fn wd(cache: Json) -> WorkingDirectory {
        WorkingDirectory {
            task_run_id: "run1".into(),
            task_id: "work".into(),
            first: true,
            properties: Map::from_iter([("cache".to_string(), cache)]),
        }
    }

    #[tokio::test]
    async fn a_cache_keeps_the_matching_files_until_its_ttl() {
        let store: weft_store::DynStore = std::sync::Arc::new(weft_store::MemoryStore::new());
        let files = ExecutionFiles::new(store.clone(), "ns", "flow", "exec1").unwrap();
        let wd = wd(serde_json::json!({"patterns": ["*.txt", "deps/**"], "ttl": "PT1H"}));
        let cache = Cache::of(&wd).unwrap().unwrap();
        let first = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(first.path().join("deps/a")).unwrap();
        std::fs::write(first.path().join("hello.txt"), "hi").unwrap();
        std::fs::write(first.path().join("deps/a/lib.js"), "x").unwrap();
        std::fs::write(first.path().join("build.log"), "not cached").unwrap();
        cache.save(&files, &wd, first.path()).await.unwrap();

        let second = tempfile::tempdir().unwrap();
        cache.restore(&files, &wd, second.path()).await.unwrap();
        assert_eq!(
            local_files(second.path()).unwrap(),
            ["deps/a/lib.js", "hello.txt"]
        );
        assert_eq!(
            std::fs::read_to_string(second.path().join("hello.txt")).unwrap(),
            "hi"
        );

        // past its ttl, nothing comes back
        let short = Cache {
            ttl: Some(chrono::TimeDelta::zero() - chrono::TimeDelta::seconds(1)),
            ..cache
        };
        let third = tempfile::tempdir().unwrap();
        short.restore(&files, &wd, third.path()).await.unwrap();
        assert!(local_files(third.path()).unwrap().is_empty());
        assert!(Cache::of(&self::wd(serde_json::json!({"ttl": "PT1H"}))).is_err());
    }

    #[test]
    fn files_are_read_beneath_the_folder_without_following_links() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host file").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/ok.txt"), "mine").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("abs.txt"))
            .unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../etc/hostname",
            dir.path().join("rel.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
        assert_eq!(read_beneath(dir.path(), "sub/ok.txt").unwrap(), b"mine");
        for bad in ["abs.txt", "rel.txt", "linked/secret", "../x", "sub"] {
            assert!(read_beneath(dir.path(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn input_file_names_stay_inside() {
        let dir = Path::new("/tmp/wd");
        assert!(inside(dir, "a/b.txt").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "a//b"] {
            assert!(inside(dir, bad).is_err(), "{bad}");
        }
    }
}
