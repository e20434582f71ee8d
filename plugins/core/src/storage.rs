//! `io.kestra.plugin.core.storage.*`: Write, Concat, Split, Size, Delete, LocalFiles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weft_sdk::schemars::JsonSchema;
use weft_sdk::{Context, Error, Property, Result, Task};

use crate::glob;

/// Write a string to a file in internal storage.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Write {
    /// The content of the file.
    content: Property<String>,
    /// File extension (default `.ion`).
    #[serde(default)]
    extension: Option<Property<String>>,
}

/// Outputs holding one file URI.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct UriOutputs {
    /// The `kestra:///...` URI of the file.
    uri: String,
}

fn ext(ctx: &Context, e: &Option<Property<String>>) -> Result<String> {
    let e = match e {
        Some(p) => ctx.render(p)?,
        None => ".ion".to_string(),
    };
    Ok(if e.starts_with('.') || e.is_empty() {
        e
    } else {
        format!(".{e}")
    })
}

impl Task for Write {
    const TYPE: &'static str = "io.kestra.plugin.core.storage.Write";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.storages.Write"];
    const DESCRIPTION: &'static str = "Write a string to a file in internal storage.";
    type Outputs = UriOutputs;

    fn run(self, ctx: &Context) -> Result<UriOutputs> {
        let content = ctx.render(&self.content)?;
        let name = format!("{}{}", ctx.task_id, ext(ctx, &self.extension)?);
        let uri = ctx.write_file(&name, content.as_bytes())?;
        Ok(UriOutputs { uri })
    }
}

/// A list of file URIs, or an expression or JSON string giving one.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(untagged)]
pub(crate) enum Files {
    /// A list of URIs.
    List(Vec<String>),
    /// A JSON array of URIs, or an expression rendering to one.
    Text(String),
}

/// Concatenate files of internal storage.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Concat {
    /// The files to concatenate.
    files: Files,
    /// Written between two files.
    #[serde(default)]
    separator: Option<Property<String>>,
    /// File extension (default `.tmp`).
    #[serde(default)]
    extension: Option<Property<String>>,
}

impl Task for Concat {
    const TYPE: &'static str = "io.kestra.plugin.core.storage.Concat";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.storages.Concat"];
    const DESCRIPTION: &'static str = "Concatenate files of internal storage into one.";
    type Outputs = UriOutputs;

    fn run(self, ctx: &Context) -> Result<UriOutputs> {
        let files = match self.files {
            Files::List(l) => l
                .iter()
                .map(|f| ctx.render_str(f))
                .collect::<Result<Vec<_>>>()?,
            Files::Text(t) => {
                let r = ctx.render_str(&t)?;
                serde_json::from_str::<Vec<String>>(&r).map_err(|e| {
                    Error::invalid(format!("files: {r:?} is not a JSON list of URIs: {e}"))
                })?
            }
        };
        let sep = match &self.separator {
            Some(s) => ctx.render(s)?,
            None => String::new(),
        };
        // sized once up front: the result is built in place, each part is freed once copied
        let mut total = sep.len() * files.len().saturating_sub(1);
        for f in &files {
            total += usize::try_from(ctx.file_size(f)?).unwrap_or(usize::MAX);
        }
        let mut out = Vec::new();
        out.try_reserve_exact(total).map_err(|_| {
            Error::invalid(format!(
                "the concatenation is {total} bytes, more than this task's memory allows"
            ))
        })?;
        for (i, f) in files.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(sep.as_bytes());
            }
            out.extend_from_slice(&ctx.read_file(f)?);
        }
        let e = match &self.extension {
            Some(_) => ext(ctx, &self.extension)?,
            None => ".tmp".into(),
        };
        let uri = ctx.write_file(&format!("{}{e}", ctx.task_id), &out)?;
        Ok(UriOutputs { uri })
    }
}

/// Split a file of internal storage into several.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Split {
    /// The file to split.
    from: Property<String>,
    /// Largest size of each part, e.g. `10MB`, `512KB`, `100` (bytes); cut at a separator.
    #[serde(default)]
    bytes: Option<Property<String>>,
    /// Number of parts.
    #[serde(default)]
    partitions: Option<Property<u64>>,
    /// Number of rows in each part.
    #[serde(default)]
    rows: Option<Property<u64>>,
    /// Row separator (default a newline).
    #[serde(default)]
    separator: Option<Property<String>>,
}

/// Outputs of `Split`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct SplitOutputs {
    /// The parts, in order.
    uris: Vec<String>,
}

fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_uppercase();
    let (num, mult) = [
        ("GB", 1u64 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.trim().to_string(), *m)))
    .unwrap_or((t.clone(), 1));
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| Error::invalid(format!("bytes: {s:?} is not a size such as 10MB")))
}

impl Task for Split {
    const TYPE: &'static str = "io.kestra.plugin.core.storage.Split";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.storages.Split"];
    const DESCRIPTION: &'static str = "Split a file into parts by size, number of parts or rows.";
    type Outputs = SplitOutputs;

    fn run(self, ctx: &Context) -> Result<SplitOutputs> {
        let from = ctx.render(&self.from)?;
        let data = ctx.read_file(&from)?;
        let sep = match &self.separator {
            Some(s) => ctx.render(s)?,
            None => "\n".into(),
        };
        let text = String::from_utf8_lossy(&data);
        let mut rows: Vec<&str> = text.split(sep.as_str()).collect();
        if rows.last() == Some(&"") {
            rows.pop();
        }
        let groups: Vec<Vec<&str>> = match (&self.bytes, &self.partitions, &self.rows) {
            (Some(b), None, None) => {
                let max = parse_size(&ctx.render(b)?)?.max(1) as usize;
                let mut groups: Vec<Vec<&str>> = Vec::new();
                let mut size = 0usize;
                for r in rows {
                    let add = r.len() + sep.len();
                    if groups.is_empty() || (size + add > max && size > 0) {
                        groups.push(Vec::new());
                        size = 0;
                    }
                    if let Some(g) = groups.last_mut() {
                        g.push(r);
                    }
                    size += add;
                }
                groups
            }
            (None, Some(p), None) => {
                let n = ctx.render(p)?.max(1) as usize;
                let mut groups = vec![Vec::new(); n];
                for (i, r) in rows.into_iter().enumerate() {
                    groups[i % n].push(r);
                }
                groups
            }
            (None, None, Some(r)) => {
                let n = ctx.render(r)?.max(1) as usize;
                rows.chunks(n).map(<[&str]>::to_vec).collect()
            }
            _ => {
                return Err(Error::invalid(
                    "set exactly one of bytes, partitions or rows",
                ));
            }
        };
        let mut uris = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let mut body = g.join(&sep);
            if !g.is_empty() {
                body.push_str(&sep);
            }
            uris.push(ctx.write_file(&format!("{}-{i}.tmp", ctx.task_id), body.as_bytes())?);
        }
        Ok(SplitOutputs { uris })
    }
}

/// The size of a file of internal storage.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Size {
    /// The file.
    uri: Property<String>,
}

/// Outputs of `Size`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct SizeOutputs {
    /// Size in bytes.
    size: u64,
}

impl Task for Size {
    const TYPE: &'static str = "io.kestra.plugin.core.storage.Size";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.storages.Size"];
    const DESCRIPTION: &'static str = "Get the size of a file of internal storage.";
    type Outputs = SizeOutputs;

    fn run(self, ctx: &Context) -> Result<SizeOutputs> {
        let uri = ctx.render(&self.uri)?;
        Ok(SizeOutputs {
            size: ctx.file_size(&uri)?,
        })
    }
}

/// Delete a file of internal storage.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Delete {
    /// The file.
    uri: Property<String>,
    /// Fail when the file does not exist (default false).
    #[serde(default)]
    error_on_missing: Option<Property<bool>>,
}

/// Outputs of `Delete`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct DeleteOutputs {
    /// The file.
    uri: String,
    /// Whether it existed and was deleted.
    deleted: bool,
}

impl Task for Delete {
    const TYPE: &'static str = "io.kestra.plugin.core.storage.Delete";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.storages.Delete"];
    const DESCRIPTION: &'static str = "Delete a file of internal storage.";
    type Outputs = DeleteOutputs;

    fn run(self, ctx: &Context) -> Result<DeleteOutputs> {
        let uri = ctx.render(&self.uri)?;
        let deleted = ctx.delete_file(&uri)?;
        let fail = match &self.error_on_missing {
            Some(f) => ctx.render(f)?,
            None => false,
        };
        if !deleted && fail {
            return Err(Error::Storage(format!("{uri} does not exist")));
        }
        Ok(DeleteOutputs { uri, deleted })
    }
}

/// Create files from inline contents and expose those matching globs as output files.
#[derive(Deserialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LocalFiles {
    /// Files to create: name -> content (may hold expressions, e.g. `{{ read(outputs.x.uri) }}`).
    #[serde(default)]
    inputs: BTreeMap<String, Property<String>>,
    /// Globs of the files to upload to internal storage.
    #[serde(default)]
    outputs: Vec<String>,
}

/// Outputs of `LocalFiles`.
#[derive(Serialize, JsonSchema)]
#[schemars(crate = "weft_sdk::schemars")]
pub(crate) struct LocalFilesOutputs {
    /// File name -> `kestra:///...` URI of each uploaded file.
    uris: BTreeMap<String, String>,
}

impl Task for LocalFiles {
    const TYPE: &'static str = "io.kestra.plugin.core.storage.LocalFiles";
    const ALIASES: &'static [&'static str] = &["io.kestra.core.tasks.storages.LocalFiles"];
    const DESCRIPTION: &'static str =
        "Create files from inline contents; files matching the output globs become output files.";
    type Outputs = LocalFilesOutputs;

    fn run(self, ctx: &Context) -> Result<LocalFilesOutputs> {
        let dir = ctx.work_dir();
        // without a working directory (outside a WorkingDirectory) the files live in memory
        let mut in_memory = BTreeMap::new();
        for (name, content) in &self.inputs {
            let name = ctx.render_str(name)?;
            if name.starts_with('/') || name.split('/').any(|p| p == "..") {
                return Err(Error::invalid(format!(
                    "inputs: {name:?} leaves the working directory"
                )));
            }
            let content = ctx.render(content)?;
            match dir {
                Some(root) => write_local(&root.join(&name), content.as_bytes())?,
                None => {
                    in_memory.insert(name, content.into_bytes());
                }
            }
        }
        let globs = self
            .outputs
            .iter()
            .map(|g| ctx.render_str(g))
            .collect::<Result<Vec<_>>>()?;
        let wanted = |name: &str| globs.iter().any(|g| glob::matches(g, name));
        let mut uris = BTreeMap::new();
        let mut upload = |name: String, bytes: &[u8]| -> Result<()> {
            let uri = ctx.write_file(&name, bytes)?;
            ctx.output_file(&name, &uri);
            uris.insert(name, uri);
            Ok(())
        };
        match dir {
            Some(root) if !globs.is_empty() => {
                for name in local_files(root)?.into_iter().filter(|n| wanted(n)) {
                    let bytes = std::fs::read(root.join(&name))
                        .map_err(|e| Error::failed(format!("reading {name}: {e}")))?;
                    upload(name, &bytes)?;
                }
            }
            Some(_) => {}
            None => {
                for (name, bytes) in in_memory.into_iter().filter(|(n, _)| wanted(n)) {
                    upload(name, &bytes)?;
                }
            }
        }
        Ok(LocalFilesOutputs { uris })
    }
}

/// Writes a file of the working directory, creating its folders.
fn write_local(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::failed(format!("writing {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, bytes).map_err(fail)
}

/// The files under `root`, as paths relative to it with `/` separators, sorted.
fn local_files(root: &std::path::Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut folders = vec![String::new()];
    while let Some(rel) = folders.pop() {
        let entries = std::fs::read_dir(root.join(&rel))
            .map_err(|e| Error::failed(format!("listing /{rel}: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::failed(format!("listing /{rel}: {e}")))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let kind = entry
                .file_type()
                .map_err(|e| Error::failed(format!("/{path}: {e}")))?;
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file() {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
