//! Tokens of the Pebble expression grammar inside one `{{ }}` or `{% %}` tag.
//!
//! Every token keeps its byte offset into the whole template, so syntax errors point at the
//! exact place. The lexer also finds where a tag ends: `}}` closes a print tag only when no
//! `{` of a map literal is open, as in Pebble.

use super::error::ExprError;

/// A piece of a double-quoted string: literal text or a `#{ expression }` interpolation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrPart {
    /// Literal text, escapes already resolved.
    Lit(String),
    /// The byte range (in the template) of an interpolated expression.
    Interp(usize, usize),
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name: variable, function, filter, keyword operator (`and`, `is`, ...).
    Ident(String),
    /// A string literal.
    Str(Vec<StrPart>),
    /// An integer literal.
    Int(i64),
    /// A decimal literal.
    Float(f64),
    /// Punctuation or a symbolic operator.
    Punct(&'static str),
    /// End of the tag.
    End,
}

/// A token and where it starts in the template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
}

/// What closes the tag being lexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closer {
    /// `}}` of a print tag.
    Print,
    /// `%}` of an execute tag.
    Execute,
    /// The end of the input (a bare expression).
    Eof,
}

/// The tokens of one tag, where the tag's closing delimiter ends, and whether it trims
/// whitespace on its right (`-}}`).
#[derive(Debug)]
pub(crate) struct Lexed {
    pub(crate) tokens: Vec<Token>,
    pub(crate) end: usize,
    pub(crate) trim_right: bool,
}

const PUNCTS: [&str; 27] = [
    "???", "??", "..", "==", "!=", "<=", ">=", "?", ":", ".", ",", "|", "(", ")", "[", "]", "{",
    "}", "<", ">", "+", "-", "*", "/", "%", "~", "=",
];

/// Lex from `pos` up to the closer; `open` is the offset of the tag's opening delimiter,
/// used in the "unclosed" error.
pub(crate) fn lex(
    src: &str,
    mut pos: usize,
    closer: Closer,
    open: usize,
) -> Result<Lexed, ExprError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let rest = &src[pos..];
        // closing delimiters
        match closer {
            Closer::Print if depth == 0 => {
                if rest.starts_with("-}}") {
                    tokens.push(Token {
                        tok: Tok::End,
                        start: pos,
                    });
                    return Ok(Lexed {
                        tokens,
                        end: pos + 3,
                        trim_right: true,
                    });
                }
                if rest.starts_with("}}") {
                    tokens.push(Token {
                        tok: Tok::End,
                        start: pos,
                    });
                    return Ok(Lexed {
                        tokens,
                        end: pos + 2,
                        trim_right: false,
                    });
                }
            }
            Closer::Execute => {
                if rest.starts_with("-%}") {
                    tokens.push(Token {
                        tok: Tok::End,
                        start: pos,
                    });
                    return Ok(Lexed {
                        tokens,
                        end: pos + 3,
                        trim_right: true,
                    });
                }
                if rest.starts_with("%}") {
                    tokens.push(Token {
                        tok: Tok::End,
                        start: pos,
                    });
                    return Ok(Lexed {
                        tokens,
                        end: pos + 2,
                        trim_right: false,
                    });
                }
            }
            _ => {}
        }
        let Some(c) = rest.chars().next() else {
            if closer == Closer::Eof {
                tokens.push(Token {
                    tok: Tok::End,
                    start: pos,
                });
                return Ok(Lexed {
                    tokens,
                    end: pos,
                    trim_right: false,
                });
            }
            let what = if closer == Closer::Print {
                "`{{` is never closed by `}}`"
            } else {
                "`{%` is never closed by `%}`"
            };
            return Err(ExprError::at(open, what));
        };
        let start = pos;
        if c.is_ascii_alphabetic() || c == '_' {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            tokens.push(Token {
                tok: Tok::Ident(rest[..len].to_string()),
                start,
            });
            pos += len;
            continue;
        }
        if c.is_ascii_digit() {
            let mut len = rest
                .find(|ch: char| !ch.is_ascii_digit())
                .unwrap_or(rest.len());
            let after = &rest[len..];
            let is_float =
                after.starts_with('.') && after[1..].starts_with(|ch: char| ch.is_ascii_digit());
            if is_float {
                len += 1 + after[1..]
                    .find(|ch: char| !ch.is_ascii_digit())
                    .unwrap_or(after.len() - 1);
                let text = &rest[..len];
                let v: f64 = text
                    .parse()
                    .map_err(|_| ExprError::at(start, format!("invalid number `{text}`")))?;
                tokens.push(Token {
                    tok: Tok::Float(v),
                    start,
                });
            } else {
                let text = &rest[..len];
                let tok =
                    match text.parse::<i64>() {
                        Ok(v) => Tok::Int(v),
                        Err(_) => Tok::Float(text.parse().map_err(|_| {
                            ExprError::at(start, format!("invalid number `{text}`"))
                        })?),
                    };
                tokens.push(Token { tok, start });
            }
            pos += len;
            continue;
        }
        if c == '\'' || c == '"' {
            let (parts, end) = lex_string(src, pos, c)?;
            tokens.push(Token {
                tok: Tok::Str(parts),
                start,
            });
            pos = end;
            continue;
        }
        let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
            return Err(ExprError::at(start, format!("unexpected character `{c}`")));
        };
        match *p {
            "{" | "[" | "(" => depth += 1,
            "}" | "]" | ")" => depth = depth.saturating_sub(1),
            _ => {}
        }
        tokens.push(Token {
            tok: Tok::Punct(p),
            start,
        });
        pos += p.len();
    }
}

/// Lex a string literal starting at the quote at `pos`; returns its parts and the offset after
/// the closing quote. `\'`, `\"` and `\\` are unescaped, other backslashes are kept as written
/// (regular expressions keep their `\d`). Double-quoted strings may interpolate `#{ expr }`.
fn lex_string(src: &str, pos: usize, quote: char) -> Result<(Vec<StrPart>, usize), ExprError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut it = src[pos + 1..].char_indices().peekable();
    while let Some((i, ch)) = it.next() {
        let at = pos + 1 + i;
        if ch == '\\' {
            match it.peek() {
                Some(&(_, n)) if n == '\'' || n == '"' || n == '\\' => {
                    lit.push(n);
                    it.next();
                }
                _ => lit.push('\\'),
            }
        } else if ch == quote {
            if !lit.is_empty() || parts.is_empty() {
                parts.push(StrPart::Lit(lit));
            }
            return Ok((parts, at + 1));
        } else if quote == '"' && ch == '#' && matches!(it.peek(), Some(&(_, '{'))) {
            it.next();
            let inner_start = at + 2;
            let mut depth = 1usize;
            let mut in_str: Option<char> = None;
            let mut inner_end = None;
            for (j, c2) in it.by_ref() {
                let at2 = pos + 1 + j;
                match in_str {
                    Some(q) if c2 == q => in_str = None,
                    Some(_) => {}
                    None => match c2 {
                        '\'' => in_str = Some('\''),
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                inner_end = Some(at2);
                                break;
                            }
                        }
                        _ => {}
                    },
                }
            }
            let Some(end) = inner_end else {
                return Err(ExprError::at(at, "`#{` in a string is never closed by `}`"));
            };
            if !lit.is_empty() {
                parts.push(StrPart::Lit(std::mem::take(&mut lit)));
            }
            parts.push(StrPart::Interp(inner_start, end));
        } else {
            lit.push(ch);
        }
    }
    Err(ExprError::at(pos, "string literal is never closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s, 0, Closer::Eof, 0)
            .unwrap()
            .tokens
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn numbers_and_ranges() {
        assert_eq!(
            toks("1..3"),
            vec![Tok::Int(1), Tok::Punct(".."), Tok::Int(3), Tok::End]
        );
        assert_eq!(toks("1.5"), vec![Tok::Float(1.5), Tok::End]);
        assert_eq!(
            toks("a.0"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("."),
                Tok::Int(0),
                Tok::End
            ]
        );
    }

    #[test]
    fn coalescing_operators_are_longest_match() {
        assert_eq!(toks("a ??? b ?? c ? d : e")[1], Tok::Punct("???"));
        assert_eq!(toks("a ??? b ?? c ? d : e")[3], Tok::Punct("??"));
        assert_eq!(toks("a ??? b ?? c ? d : e")[5], Tok::Punct("?"));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            toks(r"'it\'s'"),
            vec![Tok::Str(vec![StrPart::Lit("it's".into())]), Tok::End]
        );
        assert_eq!(
            toks(r"'\d+'"),
            vec![Tok::Str(vec![StrPart::Lit(r"\d+".into())]), Tok::End]
        );
        assert_eq!(
            toks("''"),
            vec![Tok::Str(vec![StrPart::Lit(String::new())]), Tok::End]
        );
        let t = toks("\"a#{b}c\"");
        assert_eq!(
            t[0],
            Tok::Str(vec![
                StrPart::Lit("a".into()),
                StrPart::Interp(4, 5),
                StrPart::Lit("c".into())
            ])
        );
    }

    #[test]
    fn print_tag_ends_at_balanced_braces() {
        let s = "{{ {'a': {'b': 1}} }} rest";
        let l = lex(s, 2, Closer::Print, 0).unwrap();
        assert_eq!(&s[l.end..], " rest");
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(
            lex("{{ a ", 2, Closer::Print, 0).unwrap_err().offset,
            Some(0)
        );
        assert_eq!(lex("a $ b", 0, Closer::Eof, 0).unwrap_err().offset, Some(2));
        assert_eq!(lex("'abc", 0, Closer::Eof, 0).unwrap_err().offset, Some(0));
    }
}
