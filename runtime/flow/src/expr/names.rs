//! The names of Kestra's filters, functions and tests, as the parser checks them.
//!
//! `check` rejects any other name, so a typo is a validation error, not a run-time one. The
//! lists must name exactly what `filters` and `functions` register (a test checks it).

/// Filters (`x | name`).
pub(crate) const FILTERS: &[&str] = &[
    "abbreviate",
    "abs",
    "base64decode",
    "base64encode",
    "capitalize",
    "chunk",
    "date",
    "dateAdd",
    "default",
    "distinct",
    "endsWith",
    "escapeChar",
    "first",
    "flatten",
    "fromJson",
    "indent",
    "join",
    "jq",
    "json",
    "keys",
    "last",
    "length",
    "lower",
    "md5",
    "merge",
    "nindent",
    "number",
    "replace",
    "reverse",
    "rsort",
    "sha1",
    "sha256",
    "sha512",
    "slice",
    "slugify",
    "sort",
    "split",
    "startsWith",
    "string",
    "substringAfter",
    "substringAfterLast",
    "substringBefore",
    "substringBeforeLast",
    "timestamp",
    "timestampMicro",
    "timestampNano",
    "title",
    "toJson",
    "trim",
    "upper",
    "urldecode",
    "urlencode",
    "values",
    "yaml",
];

/// Functions (`name(args)`).
pub(crate) const FUNCTIONS: &[&str] = &[
    "currentEachOutput",
    "errorLogs",
    "fileSize",
    "fileURI",
    "fromJson",
    "id",
    "json",
    "kv",
    "max",
    "min",
    "now",
    "randomInt",
    "range",
    "read",
    "render",
    "renderOnce",
    "secret",
    "uuid",
    "yaml",
];

/// Functions that reach the host (storage, secrets) or may render strings that do.
pub(crate) const HOST_FUNCTIONS: &[&str] = &[
    "currentEachOutput",
    "errorLogs",
    "fileSize",
    "fileURI",
    "kv",
    "read",
    "render",
    "renderOnce",
    "secret",
];

/// Tests (`x is name`).
pub(crate) const TESTS: &[&str] = &[
    "defined", "empty", "even", "iterable", "json", "map", "null", "odd",
];
