//! The case file of a conformance corpus.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value as Json;

/// One case of `cases.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) expect: Json,
}

/// What became of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// Reads `DIR/cases.json`.
pub(crate) fn load(dir: &Path) -> anyhow::Result<Vec<Case>> {
    let path = dir.join("cases.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a case list", path.display()))
}

/// A `valid` case for every `.yaml`/`.yml` file of `DIR/sub`, named `file:sub/name.yaml`.
pub(crate) fn valid_files(dir: &Path, sub: &str) -> anyhow::Result<Vec<Case>> {
    let folder = dir.join(sub);
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .with_context(|| format!("cannot list {}", folder.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let file = format!("{}/{n}", sub.trim_end_matches('/'));
            Case {
                name: format!("file:{file}"),
                file,
                kind: "valid".into(),
                expect: Json::Null,
            }
        })
        .collect())
}

/// Reads an out-of-reach list: `case-name: reason` per line, `#` comments.
pub(crate) fn load_out_of_reach(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut map = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line.split_once(": ").with_context(|| {
            format!("{}:{}: expected `case-name: reason`", path.display(), n + 1)
        })?;
        map.insert(name.trim().to_string(), reason.trim().to_string());
    }
    Ok(map)
}
