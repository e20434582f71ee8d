//! Turns parsed Pebble into minijinja source.
//!
//! Everything Pebble and Jinja write alike is emitted as is; the rest becomes a call of a
//! helper registered by `functions::register`:
//! - every variable, attribute and index chain becomes `__p(tag, line, root, 'root', seg...)`,
//!   which walks the chain and fails with "Unable to find `seg`" on the first missing step
//!   (Pebble's strict variables), or `__o(root, seg...)`, which yields undefined instead, under
//!   `??`, `???`, `is defined` and `default`;
//! - `a ?? b` becomes `(A if A is pb_present else B)` (lazy, like Pebble), `a ??? b` tests
//!   `pb_defined`; `contains`/`in` call `__contains`, `~` calls `__cat`, `..` calls
//!   `__range`, `/` calls `__div` (Java integer division);
//! - `{% for %}` iterates `__iter(x)`, which turns a map into Pebble's entries (`key`, `value`),
//!   and `loop.index` is rewritten to Jinja's 0-based `loop.index0`.

use super::ast::{Call, Expr, Node};

struct Emitter {
    out: String,
    tag_text: String,
    line: usize,
    loops: usize,
}

/// minijinja source for a parsed template.
pub(crate) fn template(nodes: &[Node]) -> String {
    let mut e = Emitter {
        out: String::new(),
        tag_text: String::new(),
        line: 1,
        loops: 0,
    };
    for n in nodes {
        e.node(n);
    }
    e.out
}

/// minijinja source for a bare expression; `text` names it in errors.
pub(crate) fn expression(expr: &Expr, text: &str) -> String {
    let mut e = Emitter {
        out: String::new(),
        tag_text: text.to_string(),
        line: 1,
        loops: 0,
    };
    e.expr(expr, false);
    e.out
}

fn open(t: (bool, bool), delim: &str) -> String {
    if t.0 {
        format!("{delim}- ")
    } else {
        format!("{delim} ")
    }
}

fn close(t: (bool, bool), delim: &str) -> String {
    if t.1 {
        format!(" -{delim}")
    } else {
        format!(" {delim}")
    }
}

/// A minijinja string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

impl Emitter {
    fn node(&mut self, n: &Node) {
        match n {
            Node::Text(t) => self.out.push_str(t),
            Node::Verbatim(t) => self.out.push_str(t),
            Node::Print {
                expr,
                trim,
                text,
                line,
            } => {
                self.at(text, *line);
                self.out.push_str(&open(*trim, "{{"));
                self.expr(expr, false);
                self.out.push_str(&close(*trim, "}}"));
            }
            Node::If {
                expr,
                elseif,
                trim,
                text,
                line,
            } => {
                self.at(text, *line);
                self.out.push_str(&open(*trim, "{%"));
                self.out.push_str(if *elseif {
                    "elif __bool("
                } else {
                    "if __bool("
                });
                self.expr(expr, false);
                self.out.push(')');
                self.out.push_str(&close(*trim, "%}"));
            }
            Node::For {
                var,
                expr,
                trim,
                text,
                line,
            } => {
                self.at(text, *line);
                self.out.push_str(&open(*trim, "{%"));
                self.out.push_str("for ");
                self.out.push_str(var);
                self.out.push_str(" in __iter(");
                self.expr(expr, false);
                self.out.push(')');
                self.out.push_str(&close(*trim, "%}"));
                self.loops += 1;
            }
            Node::Set {
                var,
                expr,
                trim,
                text,
                line,
            } => {
                self.at(text, *line);
                self.out.push_str(&open(*trim, "{%"));
                self.out.push_str("set ");
                self.out.push_str(var);
                self.out.push_str(" = ");
                self.expr(expr, false);
                self.out.push_str(&close(*trim, "%}"));
            }
            Node::FilterBlock {
                calls,
                trim,
                text,
                line,
            } => {
                self.at(text, *line);
                self.out.push_str(&open(*trim, "{%"));
                self.out.push_str("filter ");
                for (i, c) in calls.iter().enumerate() {
                    if i > 0 {
                        self.out.push('|');
                    }
                    self.out.push_str(&c.name);
                }
                self.out.push_str(&close(*trim, "%}"));
            }
            Node::Keyword { word, trim } => {
                if *word == "endfor" {
                    self.loops = self.loops.saturating_sub(1);
                }
                self.out.push_str(&open(*trim, "{%"));
                self.out.push_str(word);
                self.out.push_str(&close(*trim, "%}"));
            }
        }
    }

    fn at(&mut self, text: &str, line: usize) {
        self.tag_text = text.to_string();
        self.line = line;
    }

    fn args(&mut self, call: &Call, first: Option<&str>) {
        self.out.push('(');
        let mut sep = false;
        if let Some(f) = first {
            self.out.push_str(f);
            sep = true;
        }
        for a in &call.args {
            if sep {
                self.out.push_str(", ");
            }
            self.expr(a, false);
            sep = true;
        }
        for (k, v) in &call.kwargs {
            if sep {
                self.out.push_str(", ");
            }
            self.out.push_str(k);
            self.out.push('=');
            self.expr(v, false);
            sep = true;
        }
        self.out.push(')');
    }

    fn expr(&mut self, e: &Expr, protected: bool) {
        match e {
            Expr::Str(s) => self.out.push_str(&quote(s)),
            Expr::Interp(parts) => {
                self.out.push_str("__cat(");
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(p, false);
                }
                self.out.push(')');
            }
            Expr::Int(i) => self.out.push_str(&i.to_string()),
            Expr::Float(f) => {
                let s = format!("{f:?}");
                self.out.push_str(&s);
            }
            Expr::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Expr::Null => self.out.push_str("none"),
            Expr::Var(_) | Expr::Attr(..) | Expr::Index(..) => self.path(e, protected),
            Expr::Call(call) => {
                self.out.push_str(&call.name);
                self.args(call, None);
            }
            Expr::Method(base, call) => {
                self.out.push('(');
                self.expr(base, false);
                self.out.push_str(").");
                self.out.push_str(&call.name);
                self.args(call, None);
            }
            Expr::Filter(input, call) => {
                self.out.push('(');
                self.expr(input, protected || call.name == "default");
                self.out.push_str(")|");
                self.out.push_str(&call.name);
                if !call.args.is_empty() || !call.kwargs.is_empty() {
                    self.args(call, None);
                }
            }
            Expr::Test(input, negated, call) => {
                self.out.push_str("((");
                self.expr(input, protected || call.name == "defined");
                self.out
                    .push_str(if *negated { ") is not pb_" } else { ") is pb_" });
                self.out.push_str(&call.name);
                if !call.args.is_empty() || !call.kwargs.is_empty() {
                    self.args(call, None);
                }
                self.out.push(')');
            }
            Expr::Unary(op, x) => {
                self.out.push_str(match *op {
                    "not" => "(not ",
                    "-" => "(-",
                    _ => "(",
                });
                self.expr(x, protected);
                self.out.push(')');
            }
            Expr::Binary(op, a, b) => self.binary(op, a, b, protected),
            Expr::Ternary(c, a, b) => {
                self.out.push_str("((");
                self.expr(a, protected);
                self.out.push_str(") if __bool(");
                self.expr(c, false);
                self.out.push_str(") else (");
                self.expr(b, protected);
                self.out.push_str("))");
            }
            Expr::List(items) => {
                self.out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(x, false);
                }
                self.out.push(']');
            }
            Expr::Map(items) => {
                self.out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(k, false);
                    self.out.push_str(": ");
                    self.expr(v, false);
                }
                self.out.push('}');
            }
        }
    }

    fn call2(&mut self, f: &str, a: &Expr, b: &Expr) {
        self.out.push_str(f);
        self.out.push('(');
        self.expr(a, false);
        self.out.push_str(", ");
        self.expr(b, false);
        self.out.push(')');
    }

    fn binary(&mut self, op: &str, a: &Expr, b: &Expr, protected: bool) {
        match op {
            "??" | "???" => {
                let test = if op == "??" {
                    "pb_present"
                } else {
                    "pb_defined"
                };
                self.out.push_str("((");
                self.expr(a, true);
                self.out.push_str(") if (");
                self.expr(a, true);
                self.out.push_str(") is ");
                self.out.push_str(test);
                self.out.push_str(" else (");
                self.expr(b, protected);
                self.out.push_str("))");
            }
            "and" | "or" => {
                self.out.push_str("(__bool(");
                self.expr(a, false);
                self.out.push_str(") ");
                self.out.push_str(op);
                self.out.push_str(" __bool(");
                self.expr(b, false);
                self.out.push_str("))");
            }
            "contains" => self.call2("__contains", a, b),
            "in" => self.call2("__contains", b, a),
            "not in" => {
                self.out.push_str("(not ");
                self.call2("__contains", b, a);
                self.out.push(')');
            }
            "~" => self.call2("__cat", a, b),
            ".." => self.call2("__range", a, b),
            "/" => self.call2("__div", a, b),
            _ => {
                self.out.push('(');
                self.expr(a, false);
                self.out.push(' ');
                self.out.push_str(op);
                self.out.push(' ');
                self.expr(b, false);
                self.out.push(')');
            }
        }
    }

    fn path(&mut self, e: &Expr, protected: bool) {
        let mut segs: Vec<&Expr> = Vec::new();
        let mut names: Vec<Option<&str>> = Vec::new();
        let mut cur = e;
        loop {
            match cur {
                Expr::Attr(base, name) => {
                    names.push(Some(name));
                    segs.push(cur);
                    cur = base;
                }
                Expr::Index(base, _) => {
                    names.push(None);
                    segs.push(cur);
                    cur = base;
                }
                _ => break,
            }
        }
        segs.reverse();
        names.reverse();
        let root_name = match cur {
            Expr::Var(n) => Some(n.as_str()),
            _ => None,
        };
        if protected {
            self.out.push_str("__o(");
        } else {
            self.out.push_str("__p(");
            let tag = quote(&self.tag_text);
            self.out.push_str(&tag);
            self.out.push_str(", ");
            self.out.push_str(&self.line.to_string());
            self.out.push_str(", ");
        }
        match root_name {
            Some(n) => self.out.push_str(n),
            None => self.expr(cur, false),
        }
        if !protected {
            self.out.push_str(", ");
            self.out.push_str(&quote(root_name.unwrap_or("")));
        }
        let is_loop = root_name == Some("loop") && self.loops > 0;
        for (i, (seg, name)) in segs.iter().zip(names.iter()).enumerate() {
            self.out.push_str(", ");
            match (name, seg) {
                (Some(n), _) => {
                    let n = match (is_loop && i == 0, *n) {
                        (true, "index") => "index0",
                        (true, "revindex") => "revindex0",
                        (_, n) => n,
                    };
                    self.out.push_str(&quote(n));
                }
                (None, Expr::Index(_, key)) => self.expr(key, false),
                (None, _) => self.out.push_str("none"),
            }
        }
        self.out.push(')');
    }
}
