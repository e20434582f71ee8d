//! YAML with positions: a small node tree that keeps the line and column of every key and value.
//!
//! serde_yaml forgets where a value came from once it is parsed, and error messages must name the
//! file, line, column and field of the value at fault. So flows are first read into [`Node`]s with
//! yaml-rust2's event parser (which reports a position for every event), duplicate keys are rejected
//! here, and the tree is then checked against the schema and turned into JSON for the typed model.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

/// A position in a source file: line and column, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, 1-based.
    pub line: u32,
    /// Column, 1-based (in characters).
    pub col: u32,
}

impl Pos {
    fn from_marker(m: Marker) -> Self {
        Pos {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
        }
    }
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// How a string scalar was written; block scalars keep their text on following lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `plain`
    Plain,
    /// `'single'` or `"double"` quoted.
    Quoted,
    /// `|` or `>` block scalar.
    Block,
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string, with how it was written.
    String(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are unique (duplicates are a parse error).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The entries of a mapping, or `None`.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items of a sequence, or `None`.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a string scalar, or `None`.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s, _) => Some(s),
            _ => None,
        }
    }

    /// The text of any scalar (strings, numbers, booleans) as Kestra would coerce it to a string.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::String(s, _) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value under `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// A short name of the node's kind, for messages ("a string", "a list", ...).
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(..) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// The node as JSON (map keys become strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s, _) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax error, or a duplicate key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// One YAML document of a file, with the position of its start.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root node (`Null` for an empty document).
    pub root: Node,
}

/// Parses every document of a YAML stream.
pub fn parse_documents(src: &str) -> Result<Vec<Document>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut builder, true).map_err(scan_error)?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs)
}

fn scan_error(e: ScanError) -> YamlError {
    YamlError {
        pos: Pos::from_marker(*e.marker()),
        message: format!("invalid YAML: {}", e.info()),
    }
}

enum Frame {
    Seq(Node, usize),
    /// map, anchor, key waiting for its value, entries from merge keys (`<<`)
    Map(Node, usize, Option<Node>, Vec<(Node, Node)>),
}

#[derive(Default)]
struct Builder {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    error: Option<YamlError>,
    doc_starts: usize,
}

impl Builder {
    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message });
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(Document { root: node }),
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending, merged)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    let duplicate = match &map.value {
                        Value::Map(entries) => entries.iter().any(|(k, _)| k.value == key.value),
                        _ => false,
                    };
                    if duplicate {
                        let name = key.scalar_text().unwrap_or_else(|| "?".into());
                        let pos = key.pos;
                        self.fail(pos, format!("duplicate key `{name}`"));
                        return;
                    }
                    if key.as_str() == Some("<<") {
                        collect_merged(merged, node);
                    } else if let Value::Map(entries) = &mut map.value {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

/// YAML merge keys (`<<: *anchor`): the merged map(s), applied at the end of the map.
fn collect_merged(merged: &mut Vec<(Node, Node)>, source: Node) {
    match source.value {
        Value::Map(entries) => merged.extend(entries),
        Value::Seq(items) => items.into_iter().for_each(|i| collect_merged(merged, i)),
        _ => {}
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    pos,
                    value: resolve_scalar(text, style, tag.as_ref()),
                };
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(
                Node {
                    pos,
                    value: Value::Seq(Vec::new()),
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(
                Node {
                    pos,
                    value: Value::Map(Vec::new()),
                },
                anchor,
                None,
                Vec::new(),
            )),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(node, anchor)) => self.push_value(node, anchor),
                Some(Frame::Map(mut node, anchor, _, merged)) => {
                    // A block map's start event comes after its first key: point at the key.
                    if let Some(first) = node.as_map().and_then(|m| m.first()).map(|(k, _)| k.pos) {
                        node.pos = node.pos.min(first);
                    }
                    if let Value::Map(entries) = &mut node.value {
                        for (k, v) in merged {
                            if !entries.iter().any(|(ek, _)| ek.value == k.value) {
                                entries.push((k, v));
                            }
                        }
                    }
                    self.push_value(node, anchor);
                }
                None => self.fail(pos, "unbalanced YAML structure".into()),
            },
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.pos = pos;
                    self.push_value(node, 0);
                }
                None => self.fail(pos, "unknown YAML alias".into()),
            },
            Event::DocumentEnd => {
                // An empty document produces no node: keep one per document.
                if self.stack.is_empty() && self.docs.len() < self.doc_starts {
                    self.docs.push(Document {
                        root: Node {
                            pos,
                            value: Value::Null,
                        },
                    });
                }
            }
            Event::DocumentStart => self.doc_starts += 1,
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

/// Resolves a scalar by the YAML 1.2 core schema (what Kestra's YAML reader accepts).
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!")
    {
        match tag.suffix.as_str() {
            "str" => return Value::String(text, Style::Quoted),
            "int" => {
                if let Ok(i) = text.trim().parse() {
                    return Value::Int(i);
                }
            }
            "float" => {
                if let Ok(f) = text.trim().parse() {
                    return Value::Float(f);
                }
            }
            "bool" => match text.trim() {
                "true" => return Value::Bool(true),
                "false" => return Value::Bool(false),
                _ => {}
            },
            "null" => return Value::Null,
            _ => {}
        }
    }
    match style {
        TScalarStyle::Plain => {}
        TScalarStyle::Literal | TScalarStyle::Folded => return Value::String(text, Style::Block),
        _ => return Value::String(text, Style::Quoted),
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(v) = parse_int(&text) {
        return Value::Int(v);
    }
    if looks_like_float(&text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::String(text, Style::Plain)
}

fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

fn looks_like_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut digits = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.peek() {
        if c.is_ascii_digit() {
            digits = true;
            chars.next();
        } else {
            break;
        }
    }
    if chars.peek() == Some(&'.') {
        chars.next();
        while let Some(c) = chars.peek() {
            if c.is_ascii_digit() {
                digits = true;
                chars.next();
            } else {
                break;
            }
        }
    }
    if !digits {
        return false;
    }
    if matches!(chars.peek(), Some('e' | 'E')) {
        chars.next();
        if matches!(chars.peek(), Some('-' | '+')) {
            chars.next();
        }
        let mut exp = false;
        while let Some(c) = chars.peek() {
            if c.is_ascii_digit() {
                exp = true;
                chars.next();
            } else {
                break;
            }
        }
        if !exp {
            return false;
        }
    }
    chars.peek().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Node {
        let mut docs = parse_documents(src).unwrap();
        assert_eq!(docs.len(), 1);
        docs.remove(0).root
    }

    #[test]
    fn positions_are_one_based() {
        let root = one("id: hello\ntasks:\n  - id: a\n    type: x\n");
        let (k, v) = root.entry("id").unwrap();
        assert_eq!(k.pos, Pos { line: 1, col: 1 });
        assert_eq!(v.pos, Pos { line: 1, col: 5 });
        let task = &root.get("tasks").unwrap().as_seq().unwrap()[0];
        assert_eq!(task.get("type").unwrap().pos, Pos { line: 4, col: 11 });
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let root =
            one("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: PT1S\ng: 0x1F\nh: -3\ni: 1e3\nj: 1.2.3");
        assert_eq!(root.get("a").unwrap().value, Value::Int(1));
        assert_eq!(root.get("b").unwrap().value, Value::Float(1.5));
        assert_eq!(root.get("c").unwrap().value, Value::Bool(true));
        assert_eq!(root.get("d").unwrap().value, Value::Null);
        assert_eq!(root.get("e").unwrap().as_str(), Some("1"));
        assert_eq!(root.get("f").unwrap().as_str(), Some("PT1S"));
        assert_eq!(root.get("g").unwrap().value, Value::Int(31));
        assert_eq!(root.get("h").unwrap().value, Value::Int(-3));
        assert_eq!(root.get("i").unwrap().value, Value::Float(1000.0));
        assert_eq!(root.get("j").unwrap().as_str(), Some("1.2.3"));
    }

    #[test]
    fn duplicate_keys_are_rejected_at_the_second_key() {
        let err = parse_documents("id: a\nnamespace: b\nid: c\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, col: 1 });
        assert_eq!(err.message, "duplicate key `id`");
    }

    #[test]
    fn multi_document_streams() {
        let docs = parse_documents("id: a\n---\nid: b\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].root.get("id").unwrap().as_str(), Some("b"));
        assert_eq!(docs[1].root.pos.line, 3);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_documents("id: a\ntasks:\n  - id: [\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
        assert!(err.pos.line >= 3);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let root = one("base: &b\n  x: 1\n  y: 2\nother:\n  <<: *b\n  y: 3\n");
        let other = root.get("other").unwrap();
        assert_eq!(other.get("x").unwrap().value, Value::Int(1));
        assert_eq!(other.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn block_scalars_keep_their_style() {
        let root = one("m: |\n  a\n  b\n");
        assert_eq!(
            root.get("m").unwrap().value,
            Value::String("a\nb\n".into(), Style::Block)
        );
    }

    #[test]
    fn to_json_keeps_order() {
        let root = one("b: 1\na: [x, 2]\n");
        assert_eq!(root.to_json().to_string(), r#"{"b":1,"a":["x",2]}"#);
    }
}
