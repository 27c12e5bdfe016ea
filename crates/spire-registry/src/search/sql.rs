//! A validated search as parameterised SQL. Every user-given key and value is a bound
//! parameter (`$n`, which both backends accept); only the shape of the query comes from
//! the grammar. The two dialects differ in pattern matching and text ordering only.

use super::parse::{Attribute, Clause, Entity, Op, OrderTerm, Value};
use super::ValidSearch;
use crate::ViewType;

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: `LIKE` is case-insensitive (ASCII), so case-sensitive `LIKE` becomes `GLOB`.
    Sqlite,
    /// PostgreSQL: `LIKE`/`ILIKE` with no escape character; text sorts with `COLLATE "C"`.
    Postgres,
}

/// A value to bind, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
}

/// The query and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchSql {
    pub(crate) sql: String,
    pub(crate) binds: Vec<Bind>,
}

struct Builder {
    dialect: Dialect,
    binds: Vec<Bind>,
}

impl Builder {
    /// Adds a parameter and returns its placeholder.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn list(&mut self, items: &[String]) -> String {
        items
            .iter()
            .map(|s| self.bind(Bind::Text(s.clone())))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The run's latest value of metric `key` (NULL if missing or NaN).
    fn latest_metric(&mut self, key: &str) -> String {
        let key = self.bind(Bind::Text(key.to_string()));
        format!(
            "(SELECT m.value FROM metrics m WHERE m.run_id = r.run_id AND m.key = {key} \
             ORDER BY m.step DESC, m.timestamp DESC, m.id DESC LIMIT 1)"
        )
    }

    /// A text condition on `column`.
    fn text_condition(&mut self, column: &str, op: Op, value: &Value) -> String {
        let text = match value {
            Value::Text(s) => s.clone(),
            Value::List(items) => {
                let list = self.list(items);
                let not = if op == Op::NotIn { "NOT " } else { "" };
                return format!("{column} {not}IN ({list})");
            }
            Value::Number(n) => n.to_string(),
            Value::Millis(n) => n.to_string(),
        };
        match (op, self.dialect) {
            (Op::Like, Dialect::Sqlite) => {
                let p = self.bind(Bind::Text(like_to_glob(&text)));
                format!("{column} GLOB {p}")
            }
            (Op::ILike, Dialect::Sqlite) => {
                let p = self.bind(Bind::Text(text));
                format!("{column} LIKE {p}")
            }
            (Op::Like, Dialect::Postgres) => {
                let p = self.bind(Bind::Text(text));
                format!("{column} LIKE {p} ESCAPE ''")
            }
            (Op::ILike, Dialect::Postgres) => {
                let p = self.bind(Bind::Text(text));
                format!("{column} ILIKE {p} ESCAPE ''")
            }
            (op, _) => {
                let p = self.bind(Bind::Text(text));
                format!("{column} {} {p}", comparison(op))
            }
        }
    }

    fn clause(&mut self, clause: &Clause) -> String {
        match &clause.entity {
            Entity::Metric(key) => {
                let metric = self.latest_metric(key);
                let number = match clause.value {
                    Value::Number(n) => n,
                    Value::Millis(n) => n as f64,
                    Value::Text(_) | Value::List(_) => f64::NAN,
                };
                let p = self.bind(Bind::Float(number));
                format!("{metric} {} {p}", comparison(clause.op))
            }
            Entity::Param(key) => self.child_condition("params", key, clause),
            Entity::Tag(key) => self.child_condition("tags", key, clause),
            Entity::Attr(a) if a.is_time() => {
                let millis = match clause.value {
                    Value::Millis(n) => n,
                    _ => i64::MIN,
                };
                let p = self.bind(Bind::Int(millis));
                format!("{} {} {p}", attribute_column(*a), comparison(clause.op))
            }
            Entity::Attr(a) => self.text_condition(attribute_column(*a), clause.op, &clause.value),
        }
    }

    /// `EXISTS` a param or tag of the run with this key whose value satisfies the clause.
    fn child_condition(&mut self, table: &str, key: &str, clause: &Clause) -> String {
        let key = self.bind(Bind::Text(key.to_string()));
        let condition = self.text_condition("c.value", clause.op, &clause.value);
        format!(
            "EXISTS (SELECT 1 FROM {table} c WHERE c.run_id = r.run_id AND c.key = {key} \
             AND {condition})"
        )
    }

    /// `expr IS NULL, expr ASC|DESC`: runs missing the value sort last either way.
    fn order(&mut self, term: &OrderTerm) -> String {
        let (expr, text) = match &term.entity {
            Entity::Metric(key) => (self.latest_metric(key), false),
            Entity::Param(key) => (self.child_value("params", key), true),
            Entity::Tag(key) => (self.child_value("tags", key), true),
            Entity::Attr(a) => (attribute_column(*a).to_string(), !a.is_time()),
        };
        let collate = if text && self.dialect == Dialect::Postgres {
            " COLLATE \"C\""
        } else {
            ""
        };
        let direction = if term.descending { "DESC" } else { "ASC" };
        format!("({expr}) IS NULL, {expr}{collate} {direction}")
    }

    fn child_value(&mut self, table: &str, key: &str) -> String {
        let key = self.bind(Bind::Text(key.to_string()));
        format!("(SELECT c.value FROM {table} c WHERE c.run_id = r.run_id AND c.key = {key})")
    }
}

fn comparison(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        // Text-only operators never reach here (the parser rejects them for numbers).
        Op::Like | Op::ILike | Op::In | Op::NotIn => "=",
    }
}

fn attribute_column(a: Attribute) -> &'static str {
    match a {
        Attribute::Status => "r.status",
        Attribute::StartTime => "r.started_at",
        Attribute::EndTime => "r.ended_at",
        Attribute::RunId => "r.run_id",
        Attribute::Segment => "r.segment",
        Attribute::Experiment => "r.experiment",
        Attribute::ExperimentId => "e.experiment_id",
        Attribute::ConfigHash => "r.config_hash",
        Attribute::SpireVersion => "r.spire_version",
        Attribute::GitCommit => "r.git_commit",
        Attribute::RunName => {
            "(SELECT n.value FROM tags n WHERE n.run_id = r.run_id AND n.key = 'mlflow.runName')"
        }
    }
}

/// A LIKE pattern (`%`, `_`, no escape) as a case-sensitive SQLite GLOB pattern.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

/// `select` (which must select from `runs r JOIN experiments e`) filtered, ordered and
/// paged as `search` says; fetches one row more than the page to tell if another follows.
pub(crate) fn search_sql(dialect: Dialect, select: &str, search: &ValidSearch) -> SearchSql {
    let mut b = Builder {
        dialect,
        binds: Vec::new(),
    };
    let mut conditions = Vec::new();
    match search.view {
        // A run is deleted when it or its experiment is.
        ViewType::ActiveOnly => {
            conditions.push("e.lifecycle = 'active' AND r.lifecycle = 'active'".to_string())
        }
        ViewType::DeletedOnly => {
            conditions.push("(e.lifecycle = 'deleted' OR r.lifecycle = 'deleted')".to_string())
        }
        ViewType::All => {}
    }
    if !search.experiment_ids.is_empty() {
        let list = b.list(&search.experiment_ids);
        conditions.push(format!("e.experiment_id IN ({list})"));
    }
    for clause in &search.clauses {
        conditions.push(b.clause(clause));
    }
    let mut order: Vec<String> = search.order.iter().map(|t| b.order(t)).collect();
    order.push("r.id DESC".to_string());
    let limit = b.bind(Bind::Int(
        i64::try_from(search.page_size.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let offset = b.bind(Bind::Int(i64::try_from(search.offset).unwrap_or(i64::MAX)));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    SearchSql {
        sql: format!(
            "{select}{filter} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            order.join(", ")
        ),
        binds: b.binds,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::search::RunSearch;

    fn build(dialect: Dialect, filter: &str, order_by: &[&str]) -> SearchSql {
        let search = ValidSearch::new(&RunSearch {
            filter: filter.into(),
            order_by: order_by.iter().map(|s| s.to_string()).collect(),
            experiment_ids: vec!["e1".into()],
            max_results: 5,
            ..RunSearch::default()
        })
        .unwrap();
        search_sql(
            dialect,
            "SELECT r.run_id FROM runs r JOIN experiments e",
            &search,
        )
    }

    #[test]
    fn user_values_are_bound_never_spliced() {
        let hostile = "x'; DROP TABLE runs; --";
        let filter = format!("tags.`{hostile}` = '{}'", hostile.replace('\'', "''"));
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let built = build(dialect, &filter, &[]);
            assert!(!built.sql.contains("DROP"), "{}", built.sql);
            assert!(built.binds.contains(&Bind::Text(hostile.to_string())));
        }
    }

    #[test]
    fn dialects_differ_in_patterns_and_collation() {
        let filter = "tags.s LIKE 'reads-%_*' and params.a ILIKE 'X%'";
        let lite = build(Dialect::Sqlite, filter, &["params.a DESC"]);
        assert!(lite.sql.contains("c.value GLOB $"), "{}", lite.sql);
        assert!(lite.sql.contains("c.value LIKE $"), "{}", lite.sql);
        assert!(!lite.sql.contains("COLLATE"), "{}", lite.sql);
        assert!(lite.binds.contains(&Bind::Text("reads-*?[*]".to_string())));
        let pg = build(Dialect::Postgres, filter, &["params.a DESC"]);
        assert!(pg.sql.contains("LIKE $3 ESCAPE ''"), "{}", pg.sql);
        assert!(pg.sql.contains("ILIKE $5 ESCAPE ''"), "{}", pg.sql);
        assert!(pg.sql.contains("COLLATE \"C\" DESC"), "{}", pg.sql);
        assert!(
            pg.sql.ends_with("r.id DESC LIMIT $7 OFFSET $8"),
            "{}",
            pg.sql
        );
        assert_eq!(pg.binds[6], Bind::Int(6), "one row more than the page");
        assert_eq!(pg.binds[7], Bind::Int(0));
    }

    #[test]
    fn glob_translation_escapes_glob_syntax() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob("[x]*?"), "[[]x][*][?]");
    }
}
