//! The small MLflow filter grammar used by experiment, registered-model, model-version and
//! logged-model searches (run searches go to the registry's SQL search instead):
//! `clause [AND clause]…`, each `[entity.]key op value`.
//!
//! - entity: `attributes`/`attribute`/`attr` (or none), `tags`/`tag`, `params`/`param`,
//!   `metrics`/`metric`; keys may be quoted with backticks or double quotes;
//! - op: `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`;
//! - value: a `'…'` or `"…"` string, a number, or a parenthesised list of strings.
//!
//! A record without the value never matches, except for `!=` and `NOT IN` (MLflow's
//! clients filter registered models with ``tags.`mlflow.prompt.is_prompt` != 'true'``,
//! which must keep untagged models).

use crate::error::ApiError;

/// Which part of a record a clause reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A built-in field (`name`, `run_id`…).
    Attribute,
    /// A tag.
    Tag,
    /// A param.
    Param,
    /// A metric.
    Metric,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

/// A clause's right-hand side.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(String),
    Number(f64),
    List(Vec<String>),
}

/// One `entity.key op value` clause.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    entity: Entity,
    key: String,
    op: Op,
    value: Operand,
}

/// A parsed filter: every clause must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    clauses: Vec<Clause>,
}

/// A value read from a record.
pub enum Field {
    /// Text (names, ids, tags, params).
    Text(String),
    /// A number (metrics, timestamps).
    Number(f64),
}

impl Filter {
    /// Parses `text`; an empty filter matches everything. Errors are
    /// `INVALID_PARAMETER_VALUE` naming the problem.
    pub fn parse(text: &str) -> Result<Filter, ApiError> {
        let tokens = tokenize(text)?;
        let mut clauses = Vec::new();
        let mut pos = 0;
        while pos < tokens.len() {
            if !clauses.is_empty() {
                match tokens.get(pos) {
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => pos += 1,
                    other => return Err(bad(text, &format!("expected AND, found {other:?}"))),
                }
            }
            let (clause, next) = parse_clause(text, &tokens, pos)?;
            clauses.push(clause);
            pos = next;
        }
        Ok(Filter { clauses })
    }

    /// Whether a record matches; `lookup(entity, key)` reads its fields.
    pub fn matches(&self, lookup: impl Fn(Entity, &str) -> Option<Field>) -> bool {
        self.clauses.iter().all(|c| {
            let field = lookup(c.entity, &c.key);
            holds(c, field)
        })
    }
}

fn holds(c: &Clause, field: Option<Field>) -> bool {
    let Some(field) = field else {
        return matches!(c.op, Op::Ne | Op::NotIn);
    };
    match (&c.value, field) {
        (Operand::Number(want), Field::Number(got)) => compare(c.op, got.partial_cmp(want)),
        (Operand::Number(want), Field::Text(got)) => match got.parse::<f64>() {
            Ok(got) => compare(c.op, got.partial_cmp(want)),
            Err(_) => false,
        },
        (Operand::Text(want), Field::Text(got)) => match c.op {
            Op::Like => like(&got, want, false),
            Op::ILike => like(&got, want, true),
            op => compare(op, Some(got.as_str().cmp(want.as_str()))),
        },
        (Operand::Text(want), Field::Number(got)) => match want.parse::<f64>() {
            Ok(want) => compare(c.op, got.partial_cmp(&want)),
            Err(_) => false,
        },
        (Operand::List(items), field) => {
            let got = match field {
                Field::Text(s) => s,
                Field::Number(n) => n.to_string(),
            };
            let found = items.contains(&got);
            if c.op == Op::NotIn {
                !found
            } else {
                found
            }
        }
    }
}

fn compare(op: Op, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    let Some(ord) = ord else { return false };
    match op {
        Op::Eq => ord == Equal,
        Op::Ne => ord != Equal,
        Op::Lt => ord == Less,
        Op::Le => ord != Greater,
        Op::Gt => ord == Greater,
        Op::Ge => ord != Less,
        Op::Like | Op::ILike | Op::In | Op::NotIn => false,
    }
}

/// SQL LIKE: `%` any run of characters, `_` one character.
fn like(text: &str, pattern: &str, fold: bool) -> bool {
    let fold_str = |s: &str| {
        if fold {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let t: Vec<char> = fold_str(text).chars().collect();
    let p: Vec<char> = fold_str(pattern).chars().collect();
    // Iterative wildcard match with backtracking on the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) && p[pi] != '%' {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(f64),
    Op(String),
    Open,
    Close,
    Comma,
    Dot,
}

fn bad(text: &str, problem: &str) -> ApiError {
    ApiError::invalid(format!("Invalid filter {text:?}: {problem}"))
}

fn tokenize(text: &str) -> Result<Vec<Tok>, ApiError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '.' => {
                out.push(Tok::Dot);
                i += 1;
            }
            '\'' | '"' | '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(bad(text, "unterminated quoted string")),
                        Some(&q) if q == c => {
                            if chars.get(i + 1) == Some(&c) {
                                s.push(c);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&other) => {
                            s.push(other);
                            i += 1;
                        }
                    }
                }
                // Backticked and double-quoted text names keys; single quotes are values.
                out.push(if c == '\'' {
                    Tok::Quoted(s)
                } else {
                    Tok::Word(s)
                });
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if let Some(&n) = chars.get(i + 1) {
                    if matches!(n, '=' | '>') && !(c == '=' || (c == '>' && n == '>')) {
                        op.push(n);
                    }
                }
                i += op.chars().count();
                if op == "!" {
                    return Err(bad(text, "'!' must be followed by '='"));
                }
                out.push(Tok::Op(op));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | '+'))
                {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s
                    .parse()
                    .map_err(|_| bad(text, &format!("{s:?} is not a number")))?;
                out.push(Tok::Number(n));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_')) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return Err(bad(text, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

fn parse_clause(text: &str, t: &[Tok], mut pos: usize) -> Result<(Clause, usize), ApiError> {
    let first = match t.get(pos) {
        Some(Tok::Word(w)) => w.clone(),
        other => {
            return Err(bad(
                text,
                &format!("expected a field name, found {other:?}"),
            ))
        }
    };
    pos += 1;
    // `entity.key` where key may itself contain dots (`tags.mlflow.user`).
    let (entity, key) = if t.get(pos) == Some(&Tok::Dot) {
        let entity = match first.to_ascii_lowercase().as_str() {
            "attributes" | "attribute" | "attr" => Entity::Attribute,
            "tags" | "tag" => Entity::Tag,
            "params" | "param" | "parameters" | "parameter" => Entity::Param,
            "metrics" | "metric" => Entity::Metric,
            other => return Err(bad(text, &format!("unknown entity {other:?}"))),
        };
        let mut key = String::new();
        loop {
            pos += 1;
            match t.get(pos) {
                Some(Tok::Word(w)) => key.push_str(w),
                other => return Err(bad(text, &format!("expected a key, found {other:?}"))),
            }
            pos += 1;
            if t.get(pos) == Some(&Tok::Dot) {
                key.push('.');
            } else {
                break;
            }
        }
        (entity, key)
    } else {
        (Entity::Attribute, first)
    };
    let op = match t.get(pos) {
        Some(Tok::Op(o)) => match o.as_str() {
            "=" => Op::Eq,
            "!=" | "<>" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            other => return Err(bad(text, &format!("invalid comparator {other:?}"))),
        },
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => match t.get(pos + 1) {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => {
                pos += 1;
                Op::NotIn
            }
            _ => return Err(bad(text, "expected IN after NOT")),
        },
        other => {
            return Err(bad(
                text,
                &format!("expected a comparator, found {other:?}"),
            ))
        }
    };
    pos += 1;
    if let Some(Tok::Op(o)) = t.get(pos) {
        return Err(bad(text, &format!("invalid comparator after {o:?}")));
    }
    let value = if matches!(op, Op::In | Op::NotIn) {
        if t.get(pos) != Some(&Tok::Open) {
            return Err(bad(text, "IN needs a parenthesised list of strings"));
        }
        let mut items = Vec::new();
        loop {
            pos += 1;
            match t.get(pos) {
                Some(Tok::Quoted(s)) => items.push(s.clone()),
                other => return Err(bad(text, &format!("expected a string, found {other:?}"))),
            }
            pos += 1;
            match t.get(pos) {
                Some(Tok::Comma) => {}
                Some(Tok::Close) => break,
                other => return Err(bad(text, &format!("expected , or ), found {other:?}"))),
            }
        }
        Operand::List(items)
    } else {
        match t.get(pos) {
            Some(Tok::Quoted(s)) => Operand::Text(s.clone()),
            Some(Tok::Number(n)) if !matches!(op, Op::Like | Op::ILike) => Operand::Number(*n),
            other => return Err(bad(text, &format!("expected a value, found {other:?}"))),
        }
    };
    Ok((
        Clause {
            entity,
            key,
            op,
            value,
        },
        pos + 1,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(entity: Entity, key: &str) -> Option<Field> {
        match (entity, key) {
            (Entity::Attribute, "name") => Some(Field::Text("contract-model".into())),
            (Entity::Tag, "team") => Some(Field::Text("Spire".into())),
            (Entity::Tag, "mlflow.user") => Some(Field::Text("ci".into())),
            (Entity::Metric, "auc") => Some(Field::Number(0.8)),
            _ => None,
        }
    }

    #[test]
    fn filters_match_like_mlflow() {
        let yes = [
            "",
            "name = 'contract-model'",
            "name LIKE 'contract-%'",
            "attributes.name ILIKE 'CONTRACT-_ODEL'",
            "name IN ('a', 'contract-model')",
            "name NOT IN ('a')",
            "tags.team = 'Spire' AND tag.`mlflow.user` = 'ci'",
            "tags.mlflow.user != 'x'",
            "tags.`mlflow.prompt.is_prompt` != 'true'",
            "metrics.auc >= 0.8 and metrics.auc < 1",
        ];
        for f in yes {
            assert!(Filter::parse(f).unwrap().matches(record), "{f}");
        }
        let no = [
            "name = 'x'",
            "name LIKE 'x%'",
            "tags.missing = 'a'",
            "metrics.auc > 0.8",
            "name IN ('a')",
        ];
        for f in no {
            assert!(!Filter::parse(f).unwrap().matches(record), "{f}");
        }
    }

    #[test]
    fn malformed_filters_are_invalid_parameter_values() {
        for f in [
            "name",
            "name = ",
            "name >> 'x'",
            "name = 'x' name = 'y'",
            "name IN 'x'",
            "name = 'x",
            "bogus.x = 'a'",
            "name ! 'x'",
        ] {
            let err = Filter::parse(f).unwrap_err();
            assert_eq!(
                err.code,
                crate::error::ErrorCode::InvalidParameterValue,
                "{f}"
            );
        }
    }
}
