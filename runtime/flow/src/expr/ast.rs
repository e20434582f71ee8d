//! The syntax tree of a Pebble expression.

/// A Pebble expression. `at` fields are byte offsets into the template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `'text'`, `"text"`.
    Str(String),
    /// `"a #{ b } c"`: string interpolation, concatenated.
    Interp(Vec<Expr>),
    /// `42`.
    Int(i64),
    /// `4.2`.
    Float(f64),
    /// `true`, `false`.
    Bool(bool),
    /// `null`, `none`.
    Null,
    /// A variable.
    Var(String),
    /// `base.name`.
    Attr(Box<Expr>, String),
    /// `base[key]`.
    Index(Box<Expr>, Box<Expr>),
    /// `name(args)`.
    Call(Call),
    /// `base.name(args)`: a Java method call, which weft does not support.
    Method(Box<Expr>, Call),
    /// `input | name(args)`.
    Filter(Box<Expr>, Call),
    /// `input is [not] name(args)`.
    Test(Box<Expr>, bool, Call),
    /// `not x`, `-x`, `+x`.
    Unary(&'static str, Box<Expr>),
    /// `a op b`, with Pebble's operator names (`and`, `contains`, `??`, ...).
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// `cond ? a : b`.
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// `{k: v}`.
    Map(Vec<(Expr, Expr)>),
}

/// A call of a function, filter or test, with positional and named arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) at: usize,
    pub(crate) args: Vec<Expr>,
    pub(crate) kwargs: Vec<(String, Expr)>,
}

/// One tag of a template, parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Text outside tags, as written.
    Text(String),
    /// `{{ expr }}`; `text` is the whole tag as written, `line` its 1-based line.
    Print {
        expr: Expr,
        trim: (bool, bool),
        text: String,
        line: usize,
    },
    /// `{% if %}`, `{% elseif %}`.
    If {
        expr: Expr,
        elseif: bool,
        trim: (bool, bool),
        text: String,
        line: usize,
    },
    /// `{% for var in expr %}`.
    For {
        var: String,
        expr: Expr,
        trim: (bool, bool),
        text: String,
        line: usize,
    },
    /// `{% set var = expr %}`.
    Set {
        var: String,
        expr: Expr,
        trim: (bool, bool),
        text: String,
        line: usize,
    },
    /// `{% filter name | name2 %}`.
    FilterBlock {
        calls: Vec<Call>,
        trim: (bool, bool),
        text: String,
        line: usize,
    },
    /// `{% else %}`, `{% endif %}`, `{% endfor %}`, `{% endfilter %}`.
    Keyword {
        word: &'static str,
        trim: (bool, bool),
    },
    /// `{% raw %}...{% endraw %}` or `{# comment #}`, copied as written.
    Verbatim(String),
}
