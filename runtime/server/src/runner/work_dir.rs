//! The scratch directories of WorkingDirectory tasks. Every task inside one WorkingDirectory task
//! run gets the same host folder as its `/` (the engine grants nothing else), so a file one task
//! writes is there for the next. The folder lives on the driving process's disk:
//! `{temp}/weft-work/{executionId}/{workingDirectoryTaskRunId}`.
//!
//! - Before its first task: a fresh folder with the WorkingDirectory's `inputFiles` (name ->
//!   content, rendered; a `kestra:///` URI is copied from internal storage).
//! - After each successful task: the files matching its `outputFiles` globs are uploaded and
//!   become the WorkingDirectory task run's `outputFiles` output (name -> URI).
//! - When the execution ends, its folders are removed.
//!
//! A WorkingDirectory whose driver died mid-way cannot go on elsewhere: its folder is gone, and
//! its next task fails saying so.

use std::path::{Path, PathBuf};

use chrono::Utc;
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

    #[test]
    fn input_file_names_stay_inside() {
        let dir = Path::new("/tmp/wd");
        assert!(inside(dir, "a/b.txt").is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "a//b"] {
            assert!(inside(dir, bad).is_err(), "{bad}");
        }
    }
}
