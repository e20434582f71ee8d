//! A precedence-climbing parser for Pebble expressions, with Pebble's operator table:
//! `or` 10, `and` 15, `is`/`contains`/`in` 20, comparisons and `equals` 30, `+ -` 40,
//! `* / %` 60, `|` (filter) 100, `~` 110, `..`/`??`/`???` 120; unary `not` 5, `- +` 500;
//! a ternary `c ? a : b` closes a whole expression.

use super::ast::{Call, Expr};
use super::error::ExprError;
use super::lexer::{StrPart, Tok, Token};
use super::names;

/// Positional and named arguments of a call.
type Args = (Vec<Expr>, Vec<(String, Expr)>);

/// Parses the tokens of one tag (or of a sub-expression in a string interpolation).
pub(crate) struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
}

impl<'s> Parser<'s> {
    /// A parser over `toks`, which end with `Tok::End`; `src` is the whole template.
    pub(crate) fn new(src: &'s str, toks: Vec<Token>) -> Self {
        Self { src, toks, pos: 0 }
    }

    pub(crate) fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map(|t| &t.tok).unwrap_or(&Tok::End)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks
            .get(self.pos + n)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::End)
    }

    /// The offset of the next token.
    pub(crate) fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map(|t| t.start)
            .unwrap_or(0)
    }

    /// Skips one token.
    pub(crate) fn skip(&mut self) {
        let _ = self.bump();
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    pub(crate) fn is_ident(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(q) if q == w)
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), ExprError> {
        if self.is_punct(p) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{p}`")))
        }
    }

    /// An "expected X, found Y" error at the next token.
    pub(crate) fn unexpected(&self, expected: &str) -> ExprError {
        let found = match self.peek() {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Int(i) => format!("`{i}`"),
            Tok::Float(f) => format!("`{f}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::End => "the end of the expression".to_string(),
        };
        ExprError::at(self.offset(), format!("expected {expected}, found {found}"))
    }

    /// Expects the end of the tag.
    pub(crate) fn expect_end(&mut self) -> Result<(), ExprError> {
        if matches!(self.peek(), Tok::End) {
            Ok(())
        } else {
            Err(self.unexpected("the end of the tag"))
        }
    }

    /// A plain name (for `for x in`, `set x =`).
    pub(crate) fn ident(&mut self) -> Result<String, ExprError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.unexpected("a name")),
        }
    }

    /// Expects the keyword `w`.
    pub(crate) fn keyword(&mut self, w: &str) -> Result<(), ExprError> {
        if self.is_ident(w) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{w}`")))
        }
    }

    /// Expects `=`.
    pub(crate) fn assign(&mut self) -> Result<(), ExprError> {
        self.expect_punct("=")
    }

    /// A whole expression, ternary included.
    pub(crate) fn expression(&mut self) -> Result<Expr, ExprError> {
        self.expr(0)
    }

    fn binary_op(&self) -> Option<(&'static str, u8)> {
        Some(match self.peek() {
            Tok::Ident(w) => match w.as_str() {
                "or" => ("or", 10),
                "and" => ("and", 15),
                "is" => ("is", 20),
                "contains" => ("contains", 20),
                "in" => ("in", 20),
                "not" if matches!(self.peek_at(1), Tok::Ident(n) if n == "in") => ("not in", 20),
                "equals" => ("==", 30),
                _ => return None,
            },
            Tok::Punct(p) => match *p {
                "==" => ("==", 30),
                "!=" => ("!=", 30),
                "<" => ("<", 30),
                ">" => (">", 30),
                "<=" => ("<=", 30),
                ">=" => (">=", 30),
                "+" => ("+", 40),
                "-" => ("-", 40),
                "*" => ("*", 60),
                "/" => ("/", 60),
                "%" => ("%", 60),
                "|" => ("|", 100),
                "~" => ("~", 110),
                ".." => ("..", 120),
                "??" => ("??", 120),
                "???" => ("???", 120),
                _ => return None,
            },
            _ => return None,
        })
    }

    fn expr(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut left = match self.peek() {
            Tok::Ident(w) if w == "not" => {
                self.bump();
                Expr::Unary("not", Box::new(self.expr(5)?))
            }
            Tok::Punct("-") => {
                self.bump();
                Expr::Unary("-", Box::new(self.expr(200)?))
            }
            Tok::Punct("+") => {
                self.bump();
                Expr::Unary("+", Box::new(self.expr(200)?))
            }
            _ => self.postfix()?,
        };
        while let Some((op, prec)) = self.binary_op() {
            if prec < min {
                break;
            }
            self.bump();
            left = match op {
                "|" => {
                    let call = self.call_after_name(names::FILTERS, "filter")?;
                    Expr::Filter(Box::new(left), call)
                }
                "is" => {
                    let negated = if self.is_ident("not") {
                        self.bump();
                        true
                    } else {
                        false
                    };
                    let call = self.call_after_name(names::TESTS, "test")?;
                    Expr::Test(Box::new(left), negated, call)
                }
                "not in" => {
                    self.bump(); // `in`
                    let right = self.expr(prec + 1)?;
                    Expr::Binary(op, Box::new(left), Box::new(right))
                }
                _ => {
                    let right = self.expr(prec + 1)?;
                    Expr::Binary(op, Box::new(left), Box::new(right))
                }
            };
        }
        if min == 0 && self.is_punct("?") {
            self.bump();
            let yes = self.expr(0)?;
            self.expect_punct(":")?;
            let no = self.expr(0)?;
            left = Expr::Ternary(Box::new(left), Box::new(yes), Box::new(no));
        }
        Ok(left)
    }

    /// `name` or `name(args)` after `|` or `is`, checked against the known names.
    fn call_after_name(&mut self, known: &[&str], what: &str) -> Result<Call, ExprError> {
        let at = self.offset();
        let name = match self.peek().clone() {
            Tok::Ident(n) => n,
            _ => return Err(self.unexpected(&format!("a {what} name"))),
        };
        if !known.contains(&name.as_str()) {
            return Err(ExprError::at(at, format!("unknown {what} `{name}`")));
        }
        self.bump();
        let (args, kwargs) = if self.is_punct("(") {
            self.args()?
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Call {
            name,
            at,
            args,
            kwargs,
        })
    }

    fn args(&mut self) -> Result<Args, ExprError> {
        self.expect_punct("(")?;
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        while !self.is_punct(")") {
            if let (Tok::Ident(n), Tok::Punct("=")) = (self.peek().clone(), self.peek_at(1)) {
                self.bump();
                self.bump();
                kwargs.push((n, self.expression()?));
            } else {
                if !kwargs.is_empty() {
                    return Err(ExprError::at(
                        self.offset(),
                        "a positional argument cannot follow a named one",
                    ));
                }
                args.push(self.expression()?);
            }
            if self.is_punct(",") {
                self.bump();
            } else if !self.is_punct(")") {
                return Err(self.unexpected("`,` or `)`"));
            }
        }
        self.bump();
        Ok((args, kwargs))
    }

    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.is_punct(".") {
                self.bump();
                let at = self.offset();
                let name = match self.bump() {
                    Tok::Ident(n) => n,
                    Tok::Int(i) => i.to_string(),
                    _ => return Err(ExprError::at(at, "expected an attribute name after `.`")),
                };
                if self.is_punct("(") {
                    let (args, kwargs) = self.args()?;
                    e = Expr::Method(
                        Box::new(e),
                        Call {
                            name,
                            at,
                            args,
                            kwargs,
                        },
                    );
                } else {
                    e = Expr::Attr(Box::new(e), name);
                }
            } else if self.is_punct("[") {
                self.bump();
                let key = self.expression()?;
                self.expect_punct("]")?;
                e = Expr::Index(Box::new(e), Box::new(key));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let at = self.offset();
        match self.peek().clone() {
            Tok::Int(i) => {
                self.bump();
                Ok(Expr::Int(i))
            }
            Tok::Float(f) => {
                self.bump();
                Ok(Expr::Float(f))
            }
            Tok::Str(parts) => {
                self.bump();
                self.string(parts)
            }
            Tok::Ident(name) => {
                self.bump();
                match name.as_str() {
                    "true" => return Ok(Expr::Bool(true)),
                    "false" => return Ok(Expr::Bool(false)),
                    "null" | "none" => return Ok(Expr::Null),
                    _ => {}
                }
                if self.is_punct("(") {
                    if !names::FUNCTIONS.contains(&name.as_str()) {
                        return Err(ExprError::at(at, format!("unknown function `{name}`")));
                    }
                    let (args, kwargs) = self.args()?;
                    Ok(Expr::Call(Call {
                        name,
                        at,
                        args,
                        kwargs,
                    }))
                } else {
                    Ok(Expr::Var(name))
                }
            }
            Tok::Punct("(") => {
                self.bump();
                let e = self.expression()?;
                self.expect_punct(")")?;
                Ok(e)
            }
            Tok::Punct("[") => {
                self.bump();
                let mut items = Vec::new();
                while !self.is_punct("]") {
                    items.push(self.expression()?);
                    if self.is_punct(",") {
                        self.bump();
                    } else if !self.is_punct("]") {
                        return Err(self.unexpected("`,` or `]`"));
                    }
                }
                self.bump();
                Ok(Expr::List(items))
            }
            Tok::Punct("{") => {
                self.bump();
                let mut items = Vec::new();
                while !self.is_punct("}") {
                    let k = self.expression()?;
                    self.expect_punct(":")?;
                    let v = self.expression()?;
                    items.push((k, v));
                    if self.is_punct(",") {
                        self.bump();
                    } else if !self.is_punct("}") {
                        return Err(self.unexpected("`,` or `}`"));
                    }
                }
                self.bump();
                Ok(Expr::Map(items))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn string(&mut self, parts: Vec<StrPart>) -> Result<Expr, ExprError> {
        if let [StrPart::Lit(s)] = parts.as_slice() {
            return Ok(Expr::Str(s.clone()));
        }
        let mut out = Vec::new();
        for p in parts {
            match p {
                StrPart::Lit(s) => out.push(Expr::Str(s)),
                StrPart::Interp(start, end) => out.push(parse_expression_at(self.src, start, end)?),
            }
        }
        Ok(Expr::Interp(out))
    }
}

/// Parse the bare expression `src[start..end]`.
pub(crate) fn parse_expression_at(src: &str, start: usize, end: usize) -> Result<Expr, ExprError> {
    let lexed = super::lexer::lex(&src[..end], start, super::lexer::Closer::Eof, start)?;
    let mut p = Parser::new(src, lexed.tokens);
    if matches!(p.peek(), Tok::End) {
        return Err(ExprError::at(start, "empty expression"));
    }
    let e = p.expression()?;
    p.expect_end()?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Expr {
        parse_expression_at(s, 0, s.len()).unwrap()
    }

    fn var(n: &str) -> Box<Expr> {
        Box::new(Expr::Var(n.into()))
    }

    #[test]
    fn precedence_follows_pebble() {
        // `|` binds tighter than `+` but looser than `~`
        let e = parse("a ~ b | upper");
        assert!(
            matches!(e, Expr::Filter(ref inner, _) if matches!(**inner, Expr::Binary("~", _, _)))
        );
        let e = parse("a + b | abs");
        assert!(matches!(e, Expr::Binary("+", _, ref r) if matches!(**r, Expr::Filter(_, _))));
        // `??` binds tighter than `==`
        let e = parse("a ?? 'x' == 'y'");
        assert!(
            matches!(e, Expr::Binary("==", ref l, _) if matches!(**l, Expr::Binary("??", _, _)))
        );
        // `not` takes a whole comparison
        let e = parse("not a == b");
        assert!(matches!(e, Expr::Unary("not", ref x) if matches!(**x, Expr::Binary("==", _, _))));
    }

    #[test]
    fn ternary_is_lowest_and_right_associative() {
        let e = parse("a == 1 ? 'x' : b ? 'y' : 'z'");
        let Expr::Ternary(c, _, no) = e else {
            panic!("not a ternary")
        };
        assert!(matches!(*c, Expr::Binary("==", _, _)));
        assert!(matches!(*no, Expr::Ternary(_, _, _)));
    }

    #[test]
    fn attributes_indexes_calls() {
        let e = parse("outputs['my-task'].value");
        assert_eq!(
            e,
            Expr::Attr(
                Box::new(Expr::Index(
                    var("outputs"),
                    Box::new(Expr::Str("my-task".into()))
                )),
                "value".into()
            )
        );
        let e = parse("now() | date('yyyy', timeZone='UTC')");
        let Expr::Filter(_, call) = e else {
            panic!("not a filter")
        };
        assert_eq!(call.args.len(), 1);
        assert_eq!(call.kwargs[0].0, "timeZone");
    }

    #[test]
    fn tests_and_word_operators() {
        assert!(matches!(parse("x is not defined"), Expr::Test(_, true, _)));
        assert!(matches!(
            parse("[1] contains 1"),
            Expr::Binary("contains", _, _)
        ));
        assert!(matches!(
            parse("1 not in [2]"),
            Expr::Binary("not in", _, _)
        ));
        assert!(matches!(parse("a equals b"), Expr::Binary("==", _, _)));
        assert!(matches!(parse("1..3"), Expr::Binary("..", _, _)));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = parse_expression_at("x | ", 0, 4).unwrap_err();
        assert_eq!(err.offset, Some(4));
        let err = parse_expression_at("x | nope", 0, 8).unwrap_err();
        assert_eq!(err.offset, Some(4));
        assert!(err.message.contains("unknown filter `nope`"));
        let err = parse_expression_at("nope(1)", 0, 7).unwrap_err();
        assert!(err.message.contains("unknown function `nope`"));
        let err = parse_expression_at("a ? b", 0, 5).unwrap_err();
        assert_eq!(err.offset, Some(5));
    }
}
