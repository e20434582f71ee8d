//! Splits a template into text and tags and parses every tag: `{{ }}`, `{% %}`, `{# #}`,
//! `{% raw %}`. Block tags must nest (`if`/`elseif`/`else`/`endif`, `for`/`else`/`endfor`,
//! `filter`/`endfilter`).

use super::ast::{Call, Node};
use super::error::ExprError;
use super::lexer::{Closer, Tok, lex};
use super::names;
use super::parser::Parser;

/// Parse a whole template.
pub(crate) fn parse(src: &str) -> Result<Vec<Node>, ExprError> {
    let mut nodes = Vec::new();
    let mut stack: Vec<(&'static str, usize)> = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    let mut line_pos = 0;
    while pos < src.len() {
        let Some(rel) = find_open(&src[pos..]) else {
            nodes.push(Node::Text(src[pos..].to_string()));
            break;
        };
        let open = pos + rel;
        if open > pos {
            nodes.push(Node::Text(src[pos..open].to_string()));
        }
        line += src[line_pos..open].matches('\n').count();
        line_pos = open;
        let kind = &src[open..open + 2];
        let trim_left = src[open + 2..].starts_with('-');
        let body = open + 2 + usize::from(trim_left);
        match kind {
            "{#" => {
                let Some(end) = src[body..].find("#}") else {
                    return Err(ExprError::at(open, "`{#` comment is never closed by `#}`"));
                };
                pos = body + end + 2;
                nodes.push(Node::Verbatim(src[open..pos].to_string()));
            }
            "{{" => {
                let lexed = lex(src, body, Closer::Print, open)?;
                let text = src[open..lexed.end].to_string();
                let mut p = Parser::new(src, lexed.tokens);
                if matches!(p.peek(), Tok::End) {
                    return Err(ExprError::at(open, "empty expression in `{{ }}`"));
                }
                let expr = p.expression()?;
                p.expect_end()?;
                nodes.push(Node::Print {
                    expr,
                    trim: (trim_left, lexed.trim_right),
                    text,
                    line,
                });
                pos = lexed.end;
            }
            _ => {
                let lexed = lex(src, body, Closer::Execute, open)?;
                let text = src[open..lexed.end].to_string();
                let trim = (trim_left, lexed.trim_right);
                let mut p = Parser::new(src, lexed.tokens);
                let at = p.offset();
                let word = match p.peek().clone() {
                    Tok::Ident(w) => w,
                    _ => return Err(p.unexpected("a tag name such as `if`, `for` or `set`")),
                };
                let _ = p.ident();
                match word.as_str() {
                    "if" | "elseif" | "elif" => {
                        let elseif = word != "if";
                        if elseif && !matches!(stack.last(), Some(("if", _))) {
                            return Err(ExprError::at(
                                at,
                                format!("`{word}` without an open `if`"),
                            ));
                        }
                        let expr = p.expression()?;
                        p.expect_end()?;
                        if !elseif {
                            stack.push(("if", open));
                        }
                        nodes.push(Node::If {
                            expr,
                            elseif,
                            trim,
                            text,
                            line,
                        });
                    }
                    "else" => {
                        p.expect_end()?;
                        if !matches!(stack.last(), Some(("if", _)) | Some(("for", _))) {
                            return Err(ExprError::at(at, "`else` without an open `if` or `for`"));
                        }
                        nodes.push(Node::Keyword { word: "else", trim });
                    }
                    "endif" | "endfor" | "endfilter" => {
                        p.expect_end()?;
                        let want = &word[3..];
                        match stack.pop() {
                            Some((open_word, _)) if open_word == want => {}
                            Some((open_word, _)) => {
                                return Err(ExprError::at(
                                    at,
                                    format!("`{word}` closes an open `{open_word}`"),
                                ));
                            }
                            None => {
                                return Err(ExprError::at(
                                    at,
                                    format!("`{word}` without an open `{want}`"),
                                ));
                            }
                        }
                        let word: &'static str = match want {
                            "if" => "endif",
                            "for" => "endfor",
                            _ => "endfilter",
                        };
                        nodes.push(Node::Keyword { word, trim });
                    }
                    "for" => {
                        let var = p.ident()?;
                        p.keyword("in")?;
                        let expr = p.expression()?;
                        p.expect_end()?;
                        stack.push(("for", open));
                        nodes.push(Node::For {
                            var,
                            expr,
                            trim,
                            text,
                            line,
                        });
                    }
                    "set" => {
                        let var = p.ident()?;
                        p.assign()?;
                        let expr = p.expression()?;
                        p.expect_end()?;
                        nodes.push(Node::Set {
                            var,
                            expr,
                            trim,
                            text,
                            line,
                        });
                    }
                    "filter" => {
                        let mut calls = Vec::new();
                        loop {
                            let at = p.offset();
                            let name = p.ident()?;
                            if !names::FILTERS.contains(&name.as_str()) {
                                return Err(ExprError::at(at, format!("unknown filter `{name}`")));
                            }
                            calls.push(Call {
                                name,
                                at,
                                args: Vec::new(),
                                kwargs: Vec::new(),
                            });
                            if matches!(p.peek(), Tok::End) {
                                break;
                            }
                            if !matches!(p.peek(), Tok::Punct("|")) {
                                return Err(p.unexpected("`|` or the end of the tag"));
                            }
                            p.skip();
                        }
                        stack.push(("filter", open));
                        nodes.push(Node::FilterBlock {
                            calls,
                            trim,
                            text,
                            line,
                        });
                    }
                    "raw" | "verbatim" => {
                        p.expect_end()?;
                        let end_word = if word == "raw" {
                            "endraw"
                        } else {
                            "endverbatim"
                        };
                        let Some((content_end, after)) = find_end_raw(src, lexed.end, end_word)
                        else {
                            return Err(ExprError::at(
                                open,
                                format!("`{{% {word} %}}` is never closed by `{{% {end_word} %}}`"),
                            ));
                        };
                        let content = &src[lexed.end..content_end];
                        let l = if trim.0 { "{%- raw %}" } else { "{% raw %}" };
                        nodes.push(Node::Verbatim(format!("{l}{content}{{% endraw %}}")));
                        pos = after;
                        continue;
                    }
                    other => {
                        return Err(ExprError::at(
                            at,
                            format!(
                                "unsupported tag `{other}` (weft supports if, elseif, else, for, set, filter and raw)"
                            ),
                        ));
                    }
                }
                pos = lexed.end;
            }
        }
    }
    if let Some((word, at)) = stack.pop() {
        return Err(ExprError::at(
            at,
            format!("`{{% {word} %}}` is never closed by `{{% end{word} %}}`"),
        ));
    }
    Ok(nodes)
}

/// The offset of the next `{{`, `{%` or `{#`.
fn find_open(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr_brace(&bytes[from..]) {
        let at = from + i;
        if matches!(bytes.get(at + 1), Some(b'{') | Some(b'%') | Some(b'#')) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn memchr_brace(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'{')
}

/// Finds `{% endraw %}` (with optional `-` and spaces) from `from`; returns where it starts and
/// where it ends.
fn find_end_raw(src: &str, from: usize, word: &str) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(rel) = src[at..].find("{%") {
        let start = at + rel;
        let rest = src[start + 2..].trim_start_matches('-').trim_start();
        if let Some(after_word) = rest.strip_prefix(word) {
            let after_word = after_word.trim_start().trim_start_matches('-');
            if after_word.starts_with("%}") {
                let end = src.len() - after_word.len() + 2;
                return Some((start, end));
            }
        }
        at = start + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_tags() {
        let nodes = parse("a {{ x }} b {% if y %}c{% endif %}").unwrap();
        assert_eq!(nodes.len(), 6);
        assert!(matches!(nodes[1], Node::Print { .. }));
    }

    #[test]
    fn raw_is_verbatim() {
        let nodes = parse("{% raw %}{{ not parsed ! }}{% endraw %}x").unwrap();
        assert_eq!(
            nodes[0],
            Node::Verbatim("{% raw %}{{ not parsed ! }}{% endraw %}".into())
        );
        assert_eq!(nodes[1], Node::Text("x".into()));
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let e = parse("abc {{ outputs.x | }}").unwrap_err();
        assert_eq!(e.offset, Some(19));
        let e = parse("abc {{ outputs.x ").unwrap_err();
        assert_eq!(e.offset, Some(4));
        assert!(e.message.contains("never closed"), "{}", e.message);
        let e = parse("{{ x | nope }}").unwrap_err();
        assert_eq!(e.offset, Some(7));
        let e = parse("{% if x %}").unwrap_err();
        assert_eq!(e.offset, Some(0));
        let e = parse("{% endif %}").unwrap_err();
        assert_eq!(e.offset, Some(3));
        let e = parse("{% macro x %}").unwrap_err();
        assert!(e.message.contains("unsupported tag"));
        let e = parse("{{ }}").unwrap_err();
        assert_eq!(e.offset, Some(0));
    }

    #[test]
    fn lines_are_counted() {
        let nodes = parse("a\nb\n{{ x }}").unwrap();
        assert!(matches!(nodes[1], Node::Print { line: 3, .. }));
    }
}
