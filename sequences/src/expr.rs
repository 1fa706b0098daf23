//! Conditions: what `wait`, `repeat … until` and interlocks test.
//!
//! A condition reads like the sentence an engineer would say:
//!
//! ```text
//! guard_closed and estop_chain_ok
//! z >= z_safe or not (x at pick)
//! infeed.stopped and vacuum_ok
//! z < 120 mm
//! ```
//!
//! * an input or output name is true when the point is active;
//! * `axis.state` tests an axis or conveyor: `homed`, `enabled`, `moving`, `stopped`,
//!   `in_position`, `fault`;
//! * `axis < value` (also `<=`, `>`, `>=`) compares a position with a quantity (`120 mm`) or
//!   with a teach point's coordinate for that axis (`z_safe`);
//! * `axis at point` is true within the axis's `in_position` window around the teach point;
//! * `not`, `and`, `or`, parentheses, `true`, `false`.
//!
//! This module only parses; names are resolved and types checked where the cell is known.

use std::fmt;
use std::ops::Range;

use crate::quantity::Quantity;

/// Axis and conveyor states a condition can test.
pub const AXIS_STATES: &[&str] = &[
    "homed",
    "enabled",
    "moving",
    "stopped",
    "in_position",
    "fault",
];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

/// A name as written, with its byte range in the condition string.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The name.
    pub text: String,
    /// Byte range in the condition string.
    pub span: Range<usize>,
}

/// What a position is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `120 mm`.
    Quantity(Quantity, Range<usize>),
    /// A teach point's coordinate for the compared axis.
    Point(Word),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `true` / `false`.
    Const(bool),
    /// A name, maybe with a state: `vacuum_ok`, `x.homed`, or a bare axis (an error later).
    Ref {
        /// The input, output, axis or conveyor.
        name: Word,
        /// `.homed` etc.
        state: Option<Word>,
    },
    /// `not e`
    Not(Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `z >= z_safe`
    Compare {
        /// The axis.
        axis: Word,
        /// The operator.
        op: CmpOp,
        /// The other side.
        rhs: Operand,
    },
    /// `x at pick`
    At {
        /// The axis.
        axis: Word,
        /// The teach point.
        point: Word,
    },
}

/// A syntax error in a condition, with its byte range in the condition string.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// Where, in the condition string.
    pub span: Range<usize>,
    /// What to write instead.
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(Quantity),
    NumberNoUnit,
    Op(CmpOp),
    LParen,
    RParen,
    Dot,
    Bad(&'static str, Option<&'static str>),
}

fn lex(s: &str) -> Vec<(Tok, Range<usize>)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = s[i..].chars().next().unwrap_or(' ');
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(s[start..i].to_owned()), start..i));
            continue;
        }
        if c.is_ascii_digit()
            || ((c == '-' || c == '+')
                && b.get(i + 1)
                    .is_some_and(|d| d.is_ascii_digit() || *d == b'.'))
            || (c == '.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let unit_start = j;
            while j < b.len() {
                let ch = s[j..].chars().next().unwrap_or(' ');
                if ch.is_alphabetic()
                    || ch == '/'
                    || ch == '^'
                    || ch == '%'
                    || ch == '°'
                    || ch == '²'
                    || ch == '³'
                    || (ch.is_ascii_digit() && j > unit_start)
                {
                    j += ch.len_utf8();
                } else {
                    break;
                }
            }
            // Words such as `and` may follow a number only when a unit is missing.
            let unit = &s[unit_start..j];
            if unit.is_empty() || matches!(unit, "and" | "or" | "not" | "at") {
                out.push((Tok::NumberNoUnit, start..i));
                continue;
            }
            i = j;
            match s[start..i].parse::<Quantity>() {
                Ok(q) => out.push((Tok::Number(q), start..i)),
                Err(_) => out.push((
                    Tok::Bad(
                        "not a quantity",
                        Some("write a number and a unit, like `120 mm`"),
                    ),
                    start..i,
                )),
            }
            continue;
        }
        let two = s.get(i..i + 2).unwrap_or("");
        let (tok, len) = match (c, two) {
            (_, "<=") => (Tok::Op(CmpOp::Le), 2),
            (_, ">=") => (Tok::Op(CmpOp::Ge), 2),
            (_, "&&") => (Tok::Bad("`&&` is not a word here", Some("write `and`")), 2),
            (_, "||") => (Tok::Bad("`||` is not a word here", Some("write `or`")), 2),
            (_, "==") | (_, "!=") => (
                Tok::Bad(
                    "positions are not compared for equality",
                    Some("use `at` with a teach point (`x at pick`), or `<` / `>`"),
                ),
                2,
            ),
            ('<', _) => (Tok::Op(CmpOp::Lt), 1),
            ('>', _) => (Tok::Op(CmpOp::Gt), 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('.', _) => (Tok::Dot, 1),
            ('!', _) => (Tok::Bad("`!` is not a word here", Some("write `not`")), 1),
            ('=', _) => (
                Tok::Bad(
                    "`=` is not a comparison here",
                    Some("use `at` with a teach point (`x at pick`), or `<` / `>`"),
                ),
                1,
            ),
            _ => (Tok::Bad("unexpected character", None), c.len_utf8()),
        };
        i += len;
        out.push((tok, start..i));
    }
    out
}

struct Parser {
    toks: Vec<(Tok, Range<usize>)>,
    pos: usize,
    end: usize,
    depth: usize,
}

/// Deepest nesting accepted; keeps the evaluator's fixed stack small.
pub const MAX_DEPTH: usize = 16;

/// Parses a condition.
///
/// ```
/// use takt_sequences::expr::{parse, Expr};
///
/// let e = parse("guard_closed and not x.moving").unwrap();
/// assert!(matches!(e, Expr::And(..)));
/// assert!(parse("guard_closed &&").is_err());
/// ```
pub fn parse(s: &str) -> Result<Expr, ExprError> {
    let toks = lex(s);
    if let Some((Tok::Bad(msg, help), span)) = toks.iter().find(|(t, _)| matches!(t, Tok::Bad(..)))
    {
        return Err(ExprError {
            message: (*msg).to_owned(),
            span: span.clone(),
            help: help.map(str::to_owned),
        });
    }
    if toks.is_empty() {
        return Err(ExprError {
            message: "empty condition".into(),
            span: 0..s.len(),
            help: Some("write a condition such as `part_at_pick`".into()),
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: s.len(),
        depth: 0,
    };
    let e = p.or()?;
    if let Some((_, span)) = p.toks.get(p.pos) {
        return Err(ExprError {
            message: "unexpected text after the condition".into(),
            span: span.clone(),
            help: Some("join conditions with `and` / `or`".into()),
        });
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn span_here(&self) -> Range<usize> {
        self.toks
            .get(self.pos)
            .map_or(self.end..self.end, |(_, s)| s.clone())
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x == w)
    }

    fn err<T>(&self, message: &str, help: Option<&str>) -> Result<T, ExprError> {
        Err(ExprError {
            message: message.to_owned(),
            span: self.span_here(),
            help: help.map(str::to_owned),
        })
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.and()?;
        while self.is_word("or") {
            self.pos += 1;
            let rhs = self.and()?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        while self.is_word("and") {
            self.pos += 1;
            let rhs = self.unary()?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(
                "condition nested too deeply",
                Some("split it into simpler conditions"),
            );
        }
        let r = if self.is_word("not") {
            self.pos += 1;
            Ok(Expr::Not(Box::new(self.unary()?)))
        } else {
            self.primary()
        };
        self.depth -= 1;
        r
    }

    fn word(&mut self) -> Option<Word> {
        match self.toks.get(self.pos) {
            Some((Tok::Ident(w), span)) if !matches!(w.as_str(), "and" | "or" | "not" | "at") => {
                let w = Word {
                    text: w.clone(),
                    span: span.clone(),
                };
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("missing `)`", Some("close the parenthesis"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Ident(w)) if w == "true" || w == "false" => {
                let v = w == "true";
                self.pos += 1;
                Ok(Expr::Const(v))
            }
            Some(Tok::NumberNoUnit) => {
                self.err("a number needs a unit", Some("write it like `120 mm`"))
            }
            Some(Tok::Number(_)) => self.err(
                "a condition starts with a name",
                Some("put the axis first: `z < 120 mm`"),
            ),
            None => self.err(
                "a condition is missing here",
                Some("write a name such as `part_at_pick`"),
            ),
            Some(_) => {
                let Some(name) = self.word() else {
                    return self.err(
                        "expected a name",
                        Some("write a name such as `part_at_pick`"),
                    );
                };
                if self.peek() == Some(&Tok::Dot) {
                    self.pos += 1;
                    let Some(state) = self.word() else {
                        return self.err(
                            "expected a state after `.`",
                            Some(&format!(
                                "one of {}",
                                crate::reader::one_of_list(AXIS_STATES.iter().copied())
                            )),
                        );
                    };
                    return Ok(Expr::Ref {
                        name,
                        state: Some(state),
                    });
                }
                if self.is_word("at") {
                    self.pos += 1;
                    let Some(point) = self.word() else {
                        return self.err(
                            "expected a teach point after `at`",
                            Some("for example `x at pick`"),
                        );
                    };
                    return Ok(Expr::At { axis: name, point });
                }
                if let Some(Tok::Op(op)) = self.peek().cloned() {
                    self.pos += 1;
                    let rhs = match self.toks.get(self.pos).cloned() {
                        Some((Tok::Number(q), span)) => {
                            self.pos += 1;
                            Operand::Quantity(q, span)
                        }
                        Some((Tok::NumberNoUnit, _)) => {
                            return self
                                .err("a number needs a unit", Some("write it like `120 mm`"));
                        }
                        _ => match self.word() {
                            Some(w) => Operand::Point(w),
                            None => {
                                return self.err(
                                    "expected a position after the comparison",
                                    Some("a quantity like `120 mm` or a teach point name"),
                                );
                            }
                        },
                    };
                    return Ok(Expr::Compare {
                        axis: name,
                        op,
                        rhs,
                    });
                }
                Ok(Expr::Ref { name, state: None })
            }
        }
    }
}

/// Every name a condition mentions (inputs, outputs, axes, teach points), for "never used" checks.
pub fn names(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Const(_) => {}
        Expr::Ref { name, .. } => out.push(name.text.clone()),
        Expr::Not(a) => names(a, out),
        Expr::And(a, b) | Expr::Or(a, b) => {
            names(a, out);
            names(b, out);
        }
        Expr::Compare { axis, rhs, .. } => {
            out.push(axis.text.clone());
            if let Operand::Point(p) = rhs {
                out.push(p.text.clone());
            }
        }
        Expr::At { axis, point } => {
            out.push(axis.text.clone());
            out.push(point.text.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_precedence() {
        let e = parse("a or b and not c").unwrap();
        let Expr::Or(_, rhs) = e else { panic!() };
        assert!(matches!(*rhs, Expr::And(..)));
    }

    #[test]
    fn parses_comparisons_and_states() {
        assert!(matches!(
            parse("z >= z_safe").unwrap(),
            Expr::Compare {
                op: CmpOp::Ge,
                rhs: Operand::Point(_),
                ..
            }
        ));
        let Expr::Compare {
            rhs: Operand::Quantity(q, span),
            ..
        } = parse("z < 120 mm").unwrap()
        else {
            panic!()
        };
        assert_eq!((q.value, span), (120.0, 4..10));
        assert!(matches!(parse("x at pick").unwrap(), Expr::At { .. }));
        assert!(matches!(
            parse("infeed.stopped").unwrap(),
            Expr::Ref { state: Some(_), .. }
        ));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("a && b").unwrap_err();
        assert_eq!((e.span, e.help.as_deref()), (2..4, Some("write `and`")));
        assert_eq!(
            parse("z < 120").unwrap_err().message,
            "a number needs a unit"
        );
        assert_eq!(parse("(a and b").unwrap_err().span, 8..8);
        assert_eq!(
            parse("a and").unwrap_err().message,
            "a condition is missing here"
        );
        assert_eq!(parse("a b").unwrap_err().span, 2..3);
    }

    #[test]
    fn bounds_nesting() {
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).is_err());
        assert!(parse(&"not ".repeat(40)).is_err());
    }
}
