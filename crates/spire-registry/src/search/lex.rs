//! The lexer of the run-search grammar: identifiers, quoted keys and strings, numbers,
//! operators and punctuation, each with its 1-based character column.

use super::parse::ParseError;

/// A token's kind and content (quotes removed).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Backticked(String),
    DoubleQuoted(String),
    SingleQuoted(String),
    Number(String),
    Op(&'static str),
    Dot,
    Comma,
    LParen,
    RParen,
}

/// A token where it was written.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based character column.
    pub(super) position: usize,
    /// As written.
    pub(super) text: String,
}

/// Splits `input` into tokens; an unterminated quote or a stray character is an error.
pub(super) fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '.' => {
                i += 1;
                Tok::Dot
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '`' | '"' | '\'' => {
                let (text, end) = quoted(&chars, i)?;
                i = end;
                match c {
                    '`' => Tok::Backticked(text),
                    '"' => Tok::DoubleQuoted(text),
                    _ => Tok::SingleQuoted(text),
                }
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => ("=", 2),
                    ('=', _) => ("=", 1),
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('<', _) => ("<", 1),
                    ('>', Some('=')) => (">=", 2),
                    ('>', _) => (">", 1),
                    _ => {
                        return Err(ParseError {
                            position: start + 1,
                            token: c.to_string(),
                            problem: "expected an operator: = != > >= < <=".to_string(),
                        })
                    }
                };
                i += len;
                Tok::Op(op)
            }
            c if c.is_ascii_digit() || (c == '-' || c == '+') => {
                i = number_end(&chars, i);
                let text: String = chars[start..i].iter().collect();
                if text.parse::<f64>().is_err() {
                    return Err(ParseError {
                        position: start + 1,
                        token: text,
                        problem: "not a number".to_string(),
                    });
                }
                Tok::Number(text)
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Tok::Ident(chars[start..i].iter().collect())
            }
            other => {
                return Err(ParseError {
                    position: start + 1,
                    token: other.to_string(),
                    problem: "unexpected character".to_string(),
                })
            }
        };
        out.push(Token {
            tok,
            position: start + 1,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(out)
}

/// Reads a quoted token starting at `start`; a doubled quote stands for itself.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), ParseError> {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                text.push(quote);
                i += 2;
                continue;
            }
            return Ok((text, i + 1));
        }
        text.push(chars[i]);
        i += 1;
    }
    Err(ParseError {
        position: start + 1,
        token: chars[start..].iter().collect(),
        problem: format!("unterminated {quote}…{quote}"),
    })
}

/// The end of a number: sign, digits, fraction, exponent.
fn number_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    if matches!(chars.get(i), Some('-' | '+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(&mut i);
    if chars.get(i) == Some(&'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('-' | '+')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            i = j;
            digits(&mut i);
        }
    }
    i
}
