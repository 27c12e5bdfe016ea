//! The MLflow run-search grammar: a lexer and a recursive-descent parser for filters
//! (`metrics.auc > 0.8 and params.algorithm = 'lr'`) and order-by terms
//! (`metrics.auc DESC`). Pure: no SQL here; see `sql.rs`.
//!
//! ```text
//! filter  := ε | clause (AND clause)*
//! clause  := entity '.' key op value
//! entity  := metric(s) | param(s) | parameter(s) | tag(s) | attribute(s) | attr | run
//! key     := ident ('.' ident)* | `back-ticked` | "double-quoted"
//! op      := = | != | > | >= | < | <= | LIKE | ILIKE | IN | NOT IN
//! value   := number | 'string' | "string" | '(' string (',' string)* ')'
//! order   := entity '.' key [ASC | DESC]
//! ```
//!
//! Keywords are case-insensitive. Positions in errors are 1-based character columns.

use std::fmt;

use super::lex::{lex, Tok, Token};

/// What a clause or an order term is about.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entity {
    /// The latest value of a metric.
    Metric(String),
    /// A param's value.
    Param(String),
    /// A tag's value.
    Tag(String),
    /// A column of the run itself.
    Attr(Attribute),
}

/// The run attributes a search can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attribute {
    /// `status`: RUNNING, FINISHED, FAILED (MLflow's SCHEDULED and KILLED match nothing).
    Status,
    /// `start_time` (alias `created`): milliseconds since the epoch.
    StartTime,
    /// `end_time`: milliseconds since the epoch; running runs have none.
    EndTime,
    /// `run_id`.
    RunId,
    /// `segment`.
    Segment,
    /// `experiment`: the experiment's name.
    Experiment,
    /// `experiment_id`.
    ExperimentId,
    /// `config_hash`.
    ConfigHash,
    /// `spire_version`.
    SpireVersion,
    /// `git_commit`.
    GitCommit,
    /// `run_name`: the run's `mlflow.runName` tag (how MLflow clients name runs).
    RunName,
}

const ATTRIBUTES: &str = "status, start_time (or created), end_time, run_id, segment, \
                          experiment, experiment_id, config_hash, spire_version, git_commit, run_name";

impl Attribute {
    fn parse(name: &str) -> Option<Attribute> {
        Some(match name.to_ascii_lowercase().as_str() {
            "status" => Attribute::Status,
            "start_time" | "created" => Attribute::StartTime,
            "end_time" => Attribute::EndTime,
            "run_id" => Attribute::RunId,
            "segment" => Attribute::Segment,
            "experiment" => Attribute::Experiment,
            "experiment_id" => Attribute::ExperimentId,
            "config_hash" => Attribute::ConfigHash,
            "spire_version" => Attribute::SpireVersion,
            "git_commit" => Attribute::GitCommit,
            "run_name" => Attribute::RunName,
            _ => return None,
        })
    }

    /// Whether the attribute is a millisecond time (compared as a number).
    pub(crate) fn is_time(self) -> bool {
        matches!(self, Attribute::StartTime | Attribute::EndTime)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
}

impl Op {
    fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "LIKE",
            Op::ILike => "ILIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
        })
    }
}

/// The right-hand side of a clause, typed by what the entity needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A metric value.
    Number(f64),
    /// A time in milliseconds.
    Millis(i64),
    /// A string (for LIKE/ILIKE: a pattern with `%` and `_`, no escape character).
    Text(String),
    /// The list of `IN (…)` / `NOT IN (…)`.
    List(Vec<String>),
}

/// One `entity.key op value` comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    pub(crate) entity: Entity,
    pub(crate) op: Op,
    pub(crate) value: Value,
}

/// One `entity.key [ASC|DESC]` ordering term.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderTerm {
    pub(crate) entity: Entity,
    pub(crate) descending: bool,
}

/// A syntax or type error: where, at which token, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// 1-based character column.
    pub(crate) position: usize,
    /// The offending token as written, or `end of input`.
    pub(crate) token: String,
    /// What was expected or why the token is wrong.
    pub(crate) problem: String,
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Column just past the input, for "end of input" errors.
    end: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Parser, ParseError> {
        Ok(Parser {
            tokens: lex(input)?,
            next: 0,
            end: input.chars().count() + 1,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn error_here(&self, problem: impl Into<String>) -> ParseError {
        match self.peek() {
            Some(t) => error_at(t, problem),
            None => ParseError {
                position: self.end,
                token: "end of input".to_string(),
                problem: problem.into(),
            },
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn entity(&mut self) -> Result<Entity, ParseError> {
        let Some(Token {
            tok: Tok::Ident(kind),
            ..
        }) = self.peek().cloned()
        else {
            return Err(self.error_here(
                "expected metrics.<key>, params.<key>, tags.<key> or attributes.<name>",
            ));
        };
        let kind_token = self
            .bump()
            .ok_or_else(|| self.error_here("expected a name"))?;
        if !matches!(self.peek(), Some(Token { tok: Tok::Dot, .. })) {
            return Err(self.error_here(format!("expected '.' and a key after {kind:?}")));
        }
        self.bump();
        let key_start = self.peek().cloned();
        let key = self.key()?;
        let entity = match kind.to_ascii_lowercase().as_str() {
            "metric" | "metrics" => Entity::Metric(key),
            "param" | "params" | "parameter" | "parameters" => Entity::Param(key),
            "tag" | "tags" => Entity::Tag(key),
            "attribute" | "attributes" | "attr" | "run" => match Attribute::parse(&key) {
                Some(a) => Entity::Attr(a),
                None => {
                    let at = key_start.unwrap_or(kind_token);
                    return Err(error_at(
                        &at,
                        format!("unknown attribute {key:?}; expected one of {ATTRIBUTES}"),
                    ));
                }
            },
            _ => {
                return Err(error_at(
                    &kind_token,
                    "unknown entity; expected metrics, params, tags or attributes",
                ))
            }
        };
        Ok(entity)
    }

    fn key(&mut self) -> Result<String, ParseError> {
        match self.bump() {
            Some(Token {
                tok: Tok::Backticked(k) | Tok::DoubleQuoted(k),
                ..
            }) => Ok(k),
            Some(Token {
                tok: Tok::Ident(first),
                ..
            }) => {
                // Dotted keys such as tags.mlflow.source.type.
                let mut key = first;
                while matches!(self.peek(), Some(Token { tok: Tok::Dot, .. })) {
                    self.bump();
                    match self.bump() {
                        Some(Token {
                            tok: Tok::Ident(part),
                            ..
                        }) => {
                            key.push('.');
                            key.push_str(&part);
                        }
                        other => {
                            self.next -= usize::from(other.is_some());
                            return Err(self.error_here("expected a key part after '.'"));
                        }
                    }
                }
                Ok(key)
            }
            Some(other) => Err(error_at(
                &other,
                "expected a key (a name, or `back-ticked` if it holds other characters)",
            )),
            None => Err(self.error_here("expected a key")),
        }
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        let Some(token) = self.bump() else {
            return Err(self.error_here("expected an operator"));
        };
        let op = match &token.tok {
            Tok::Op("=") => Op::Eq,
            Tok::Op("!=") => Op::Ne,
            Tok::Op(">") => Op::Gt,
            Tok::Op(">=") => Op::Ge,
            Tok::Op("<") => Op::Lt,
            Tok::Op("<=") => Op::Le,
            Tok::Ident(w) if w.eq_ignore_ascii_case("like") => Op::Like,
            Tok::Ident(w) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
            Tok::Ident(w) if w.eq_ignore_ascii_case("in") => Op::In,
            Tok::Ident(w) if w.eq_ignore_ascii_case("not") => {
                if self.keyword("in") {
                    self.bump();
                    Op::NotIn
                } else {
                    return Err(self.error_here("expected IN after NOT"));
                }
            }
            _ => {
                return Err(error_at(
                    &token,
                    "expected an operator: = != > >= < <= LIKE ILIKE IN NOT IN",
                ))
            }
        };
        Ok(op)
    }

    fn clause(&mut self) -> Result<Clause, ParseError> {
        let entity = self.entity()?;
        let op_token = self.peek().cloned();
        let op = self.op()?;
        let op_token = op_token.ok_or_else(|| self.error_here("expected an operator"))?;
        check_op(&entity, op, &op_token)?;
        let value_token = self.peek().cloned();
        let mut value = self.value(&entity, op)?;
        if entity == Entity::Attr(Attribute::Status) {
            if let Some(token) = value_token {
                value = status_value(value, &token)?;
            }
        }
        Ok(Clause { entity, op, value })
    }

    fn value(&mut self, entity: &Entity, op: Op) -> Result<Value, ParseError> {
        if matches!(op, Op::In | Op::NotIn) {
            return self.list().map(Value::List);
        }
        let Some(token) = self.bump() else {
            return Err(self.error_here("expected a value"));
        };
        match (entity, &token.tok) {
            (Entity::Metric(_), Tok::Number(n)) => n
                .parse::<f64>()
                .map(Value::Number)
                .map_err(|_| error_at(&token, "not a number")),
            (Entity::Metric(key), _) => Err(error_at(
                &token,
                format!("metrics.{key} is compared with a number, e.g. 0.8"),
            )),
            (Entity::Attr(a), Tok::Number(n)) if a.is_time() => {
                n.parse::<i64>().map(Value::Millis).map_err(|_| {
                    error_at(
                        &token,
                        "times are whole milliseconds since the Unix epoch, e.g. 1700000000000",
                    )
                })
            }
            (Entity::Attr(a), _) if a.is_time() => Err(error_at(
                &token,
                "times are whole milliseconds since the Unix epoch, e.g. 1700000000000",
            )),
            (_, Tok::SingleQuoted(s) | Tok::DoubleQuoted(s)) => Ok(Value::Text(s.clone())),
            _ => Err(error_at(
                &token,
                "expected a quoted string, e.g. 'logistic' (param and tag values are text)",
            )),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, ParseError> {
        match self.bump() {
            Some(Token {
                tok: Tok::LParen, ..
            }) => {}
            other => {
                self.next -= usize::from(other.is_some());
                return Err(self.error_here("expected '(' to start the list"));
            }
        }
        let mut items = Vec::new();
        loop {
            match self.bump() {
                Some(Token {
                    tok: Tok::SingleQuoted(s) | Tok::DoubleQuoted(s),
                    ..
                }) => items.push(s),
                other => {
                    self.next -= usize::from(other.is_some());
                    return Err(self.error_here("expected a quoted string in the list"));
                }
            }
            match self.bump() {
                Some(Token {
                    tok: Tok::Comma, ..
                }) => {}
                Some(Token {
                    tok: Tok::RParen, ..
                }) => return Ok(items),
                other => {
                    self.next -= usize::from(other.is_some());
                    return Err(self.error_here("expected ',' or ')'"));
                }
            }
        }
    }
}

fn error_at(token: &Token, problem: impl Into<String>) -> ParseError {
    ParseError {
        position: token.position,
        token: token.text.clone(),
        problem: problem.into(),
    }
}

/// Maps MLflow run statuses (any case) onto the stored lowercase names.
fn status_value(value: Value, at: &Token) -> Result<Value, ParseError> {
    let map = |s: String| {
        let lower = s.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "running" | "finished" | "failed" | "scheduled" | "killed"
        ) {
            Ok(lower)
        } else {
            Err(error_at(
                at,
                format!(
                    "unknown run status {s:?}; expected RUNNING, FINISHED or FAILED (MLflow's \
                     SCHEDULED and KILLED match nothing)"
                ),
            ))
        }
    };
    Ok(match value {
        Value::Text(s) => Value::Text(map(s)?),
        Value::List(items) => Value::List(items.into_iter().map(map).collect::<Result<_, _>>()?),
        other => other,
    })
}

/// Which operators each entity supports.
fn check_op(entity: &Entity, op: Op, at: &Token) -> Result<(), ParseError> {
    let allowed = match entity {
        Entity::Metric(_) => !matches!(op, Op::Like | Op::ILike | Op::In | Op::NotIn),
        Entity::Attr(a) if a.is_time() => matches!(op, Op::Eq | Op::Ne) || op.is_ordering(),
        Entity::Attr(Attribute::Status) => matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn),
        Entity::Param(_) | Entity::Tag(_) | Entity::Attr(_) => !op.is_ordering(),
    };
    if allowed {
        return Ok(());
    }
    let what = match entity {
        Entity::Metric(k) => format!("metrics.{k} (a number) supports = != > >= < <="),
        Entity::Param(k) => format!("params.{k} (text) supports = != LIKE ILIKE IN NOT IN"),
        Entity::Tag(k) => format!("tags.{k} (text) supports = != LIKE ILIKE IN NOT IN"),
        Entity::Attr(a) if a.is_time() => "times support = != > >= < <=".to_string(),
        Entity::Attr(Attribute::Status) => "attributes.status supports = != IN NOT IN".to_string(),
        Entity::Attr(_) => "this attribute (text) supports = != LIKE ILIKE IN NOT IN".to_string(),
    };
    Err(error_at(
        at,
        format!("operator {op} does not apply: {what}"),
    ))
}

/// Parses a filter; an empty or blank filter matches every run.
pub(crate) fn parse_filter(input: &str) -> Result<Vec<Clause>, ParseError> {
    let mut p = Parser::new(input)?;
    let mut clauses = Vec::new();
    if p.peek().is_none() {
        return Ok(clauses);
    }
    loop {
        clauses.push(p.clause()?);
        if p.peek().is_none() {
            return Ok(clauses);
        }
        if p.keyword("and") {
            p.bump();
        } else if p.keyword("or") {
            return Err(p.error_here("OR is not supported: clauses are joined with AND only"));
        } else {
            return Err(p.error_here("expected AND or the end of the filter"));
        }
    }
}

/// Parses one order-by term such as `metrics.auc DESC` (ascending by default).
pub(crate) fn parse_order(input: &str) -> Result<OrderTerm, ParseError> {
    let mut p = Parser::new(input)?;
    let entity = p.entity()?;
    let descending = if p.keyword("desc") {
        p.bump();
        true
    } else if p.keyword("asc") {
        p.bump();
        false
    } else {
        false
    };
    if p.peek().is_some() {
        return Err(p.error_here("expected ASC, DESC or the end of the order-by term"));
    }
    Ok(OrderTerm { entity, descending })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn clause(entity: Entity, op: Op, value: Value) -> Clause {
        Clause { entity, op, value }
    }

    #[test]
    fn parses_the_mlflow_example() {
        let got = parse_filter(
            "metrics.auc > 0.8 and params.algorithm = 'logistic_regression' \
             and tags.segment LIKE 'reads-%'",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                clause(Entity::Metric("auc".into()), Op::Gt, Value::Number(0.8)),
                clause(
                    Entity::Param("algorithm".into()),
                    Op::Eq,
                    Value::Text("logistic_regression".into())
                ),
                clause(
                    Entity::Tag("segment".into()),
                    Op::Like,
                    Value::Text("reads-%".into())
                ),
            ]
        );
    }

    #[test]
    fn parses_keys_lists_attributes_and_numbers() {
        let got = parse_filter(
            "metric.`f1-score` >= -1.5e-3 AND tags.mlflow.source.type = \"LOCAL\" \
             AND params.\"my param\" NOT IN ('a', 'it''s') AND attributes.status IN ('FINISHED') \
             AND attr.start_time < 1700000000000 and run.created >= 5 \
             and tags.x ILIKE '%Sports%' and attributes.segment != 'a'",
        )
        .unwrap();
        assert_eq!(got.len(), 8);
        assert_eq!(
            got[0],
            clause(
                Entity::Metric("f1-score".into()),
                Op::Ge,
                Value::Number(-1.5e-3)
            )
        );
        assert_eq!(got[1].entity, Entity::Tag("mlflow.source.type".into()));
        assert_eq!(got[1].value, Value::Text("LOCAL".into()));
        assert_eq!(
            got[2],
            clause(
                Entity::Param("my param".into()),
                Op::NotIn,
                Value::List(vec!["a".into(), "it's".into()])
            )
        );
        assert_eq!(got[3].entity, Entity::Attr(Attribute::Status));
        assert_eq!(got[3].op, Op::In);
        assert_eq!(got[3].value, Value::List(vec!["finished".into()]));
        assert_eq!(got[4].value, Value::Millis(1_700_000_000_000));
        assert_eq!(got[5].entity, Entity::Attr(Attribute::StartTime));
        assert_eq!(got[6].op, Op::ILike);
        assert_eq!(got[7].entity, Entity::Attr(Attribute::Segment));
        assert!(parse_filter("").unwrap().is_empty());
        assert!(parse_filter("   ").unwrap().is_empty());
    }

    #[test]
    fn parses_order_terms() {
        assert_eq!(
            parse_order("metrics.auc DESC").unwrap(),
            OrderTerm {
                entity: Entity::Metric("auc".into()),
                descending: true
            }
        );
        assert_eq!(
            parse_order("attributes.start_time").unwrap(),
            OrderTerm {
                entity: Entity::Attr(Attribute::StartTime),
                descending: false
            }
        );
        assert!(!parse_order("params.`l2` asc").unwrap().descending);
        let err = parse_order("metrics.auc DESC x").unwrap_err();
        assert_eq!((err.position, err.token.as_str()), (18, "x"));
    }

    #[test]
    fn never_panics_on_prefixes_and_garbage() {
        let samples = [
            "metrics.`f1-score` >= -1.5e-3 AND tags.mlflow.source.type = \"LOCAL\" AND \
             params.\"p\" NOT IN ('a', 'it''s') AND attributes.status IN ('FINISHED') AND \
             attr.start_time < 1700000000000 and tags.x ILIKE '%é%'",
            "run.status = 'x' and metrics.a.b.c > .5e and tags.`` = '' and (((",
            "\u{0}\u{7f}`\"'é😀 <>!=== --1e+ 1e- attributes. NOT NOT IN ,,)",
        ];
        for sample in samples {
            let chars: Vec<char> = sample.chars().collect();
            for end in 0..=chars.len() {
                let prefix: String = chars[..end].iter().collect();
                if let Err(e) = parse_filter(&prefix) {
                    assert!(e.position >= 1 && e.position <= end + 1, "{prefix}: {e:?}");
                    assert!(!e.token.is_empty() && !e.problem.is_empty());
                }
                let _ = parse_order(&prefix);
            }
        }
    }

    /// (input, position, token, words the problem must contain)
    #[test]
    fn errors_name_position_and_token() {
        let cases: &[(&str, usize, &str, &str)] = &[
            ("metrics.auc > 0.8 andd params.a = 'x'", 19, "andd", "AND"),
            ("metrics.auc > 'high'", 15, "'high'", "number"),
            ("params.lr = 0.1", 13, "0.1", "quoted"),
            ("metrics.auc LIKE 'a%'", 13, "LIKE", "metrics.auc"),
            ("params.lr > '1'", 11, ">", "params.lr"),
            (
                "attributes.colour = 'red'",
                12,
                "colour",
                "unknown attribute",
            ),
            ("metrix.auc > 1", 1, "metrix", "unknown entity"),
            ("metrics.auc >", 14, "end of input", "value"),
            ("metrics.auc > 1 or metrics.x > 2", 17, "or", "OR"),
            ("tags.x = 'open", 10, "'open", "unterminated"),
            ("tags.x IN 'a'", 11, "'a'", "'('"),
            ("tags.x IN ('a' 'b')", 16, "'b'", "',' or ')'"),
            ("tags.x IN ()", 12, ")", "quoted string"),
            ("metrics.auc ~ 1", 13, "~", "unexpected character"),
            ("metrics auc > 1", 9, "auc", "'.'"),
            ("attributes.start_time > 1.5", 25, "1.5", "milliseconds"),
            ("attributes.status > 'x'", 19, ">", "status"),
            ("metrics.a > 1 AND", 18, "end of input", "metrics.<key>"),
            ("tags.a NOT 'x'", 12, "'x'", "IN after NOT"),
            (
                "attributes.status = 'DONE'",
                21,
                "'DONE'",
                "unknown run status \"DONE\"",
            ),
            ("run.status IN ('failed', 'x')", 15, "(", "\"x\""),
            (
                "metrics.é > 1 and tags.`x` = 'y' and tags. = 'z'",
                44,
                "=",
                "key",
            ),
        ];
        for (input, position, token, words) in cases {
            let err = parse_filter(input).unwrap_err();
            assert_eq!(
                (err.position, err.token.as_str()),
                (*position, *token),
                "{input}: {err:?}"
            );
            assert!(err.problem.contains(words), "{input}: {err:?}");
        }
    }
}
