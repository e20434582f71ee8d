//! The scratch directories of WorkingDirectory tasks. Every task inside one WorkingDirectory task
//! run gets the same host folder as its `/` (the engine grants nothing else), so a file one task
//! writes is there for the next. The folder lives on the driving process's disk:
//! `{temp}/weft-work/{executionId}/{workingDirectoryTaskRunId}`.
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
//! A WorkingDirectory whose driver died mid-way cannot go on elsewhere: its folder is gone, and
//! its next task fails saying so.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};
use weft_executor::{RunTask, WorkingDirectory};
use weft_flow::expr::{Context, Renderer};
use weft_store::repo::ExecutionFiles;

/// Where the scratch directories of this process live.
#[derive(Debug, Clone)]
pub(crate) struct WorkDirs {
    root: PathBuf,
}

impl Default for WorkDirs {
    fn default() -> Self {
        WorkDirs {
            root: std::env::temp_dir().join("weft-work"),
        }
    }
}

impl WorkDirs {
    fn dir(&self, execution_id: &str, wd: &WorkingDirectory) -> PathBuf {
        self.root.join(execution_id).join(&wd.task_run_id)
    }

    /// The folder of `task`'s WorkingDirectory, set up when `task` is its first (a fresh folder
    /// with its `inputFiles`); `None` for a task outside any WorkingDirectory.
    pub(crate) async fn prepare(
        &self,
        task: &RunTask,
        renderer: &Renderer,
        files: &ExecutionFiles,
    ) -> Result<Option<PathBuf>, String> {
        let Some(wd) = &task.working_directory else {
            return Ok(None);
        };
        let dir = self.dir(&task.execution_id, wd);
        if !wd.first {
            if !dir.is_dir() {
                return Err(format!(
                    "the working directory of `{}` is gone (the process that ran its first tasks ended): run the execution again, or restart it",
                    wd.task_id
                ));
            }
            return Ok(Some(dir));
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        if let Some(cache) = Cache::of(wd)? {
            cache.restore(files, wd, &dir).await?;
        }
        let render = |template: &str| {
            let ctx = Context {
                vars: &task.context,
                now: Utc::now(),
                seed: task.seed,
                host: None,
            };
            renderer.render(template, &ctx).map_err(|e| e.to_string())
        };
        let inputs = match wd.properties.get("inputFiles") {
            None | Some(Json::Null) => Map::new(),
            Some(Json::Object(map)) => map.clone(),
            Some(Json::String(text)) => match serde_json::from_str(&render(text)?) {
                Ok(Json::Object(map)) => map,
                _ => return Err("`inputFiles` must be a map of file name to content".into()),
            },
            Some(other) => {
                return Err(format!(
                    "`inputFiles` must be a map of file name to content, got {other}"
                ));
            }
        };
        for (name, content) in inputs {
            let name = render(&name)?;
            let path = inside(&dir, &name)?;
            let content = match content {
                Json::String(text) => render(&text)?,
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
        Ok(Some(dir))
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
            let path = dir.join(&name);
            let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
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
        let dir = self.root.join(execution_id);
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
        weft_store::Key::new(format!(
            "wd-cache/{}/{}/{}.tar",
            files.namespace(),
            files.flow_id(),
            wd.task_id
        ))
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
                builder
                    .append_path_with_name(dir.join(&name), &name)
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
    fn input_file_names_stay_inside() {
        let dir = Path::new("/tmp/wd");
        assert!(inside(dir, "a/b.txt").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "a//b"] {
            assert!(inside(dir, bad).is_err(), "{bad}");
        }
    }
}
