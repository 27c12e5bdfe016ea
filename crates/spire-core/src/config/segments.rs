//! Segment specs: `rule` and `model` segments, and `for_each` fan-out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::raw::*;
use super::scheduling::ScheduleSpec;
use super::Issues;
use crate::gbdt::{GbdtParams, ValidGbdtParams, PARAM_NAMES};

/// A validated segment spec. With `for_each`, this is a template: `{value}` in its name and
/// SQL is replaced per value by [`SegmentSpec::expand`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSpec {
    /// Name (template when `for_each` is set).
    pub name: String,
    /// The file that declared it.
    pub file: PathBuf,
    /// Free text.
    pub description: String,
    /// Fan-out, if any.
    pub for_each: Option<ForEach>,
    /// Feature set read.
    pub feature_set: String,
    /// Rule or model.
    pub kind: SegmentKind,
    /// Output policy.
    pub output: Output,
    /// When it runs and how it retries (resolved against `[schedule]` of spire.toml).
    pub schedule: ScheduleSpec,
}

/// Fan-out over values.
#[derive(Debug, Clone, PartialEq)]
pub enum ForEach {
    /// Literal values.
    Values(Vec<String>),
    /// A query over the lake returning one column of values.
    Sql(String),
}

/// What kind of segment.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a project holds a few specs (a `for_each` family shares one), built once at load"
)]
pub enum SegmentKind {
    /// Membership by a SQL predicate over the feature snapshot.
    RulePredicate {
        /// The predicate.
        predicate: String,
    },
    /// Membership by a boolean combination of other segments.
    RuleCombine {
        /// The parsed expression.
        expr: SegmentExpr,
    },
    /// Membership by a model's score.
    Model(ModelSpec),
}

/// A model segment's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The label.
    pub label: Label,
    /// SQL predicate over the feature snapshot: who may be scored and in the segment.
    pub eligibility: Option<String>,
    /// Algorithm name: `logistic_regression` or `gbdt`.
    pub algorithm: String,
    /// The estimator's params as `spire_ml::algorithms::estimator` takes them, already
    /// validated: `{l2, l1, max_iter}` for `logistic_regression`, every [`GbdtParams`] field
    /// (defaults filled in) for `gbdt`.
    pub params: serde_json::Value,
    /// L2 strength (`logistic_regression`).
    pub l2: f64,
    /// L1 strength (0 for a pure L2 model).
    pub l1: f64,
    /// Tuning before the final fit (the tuned values replace `l2`/`l1`).
    pub tune: Option<TuneSpec>,
    /// Iteration limit.
    pub max_iter: usize,
    /// Minimum test AUC to become champion.
    pub min_auc: f64,
    /// `import`: the model file trained elsewhere, evaluated and registered in place of a fit.
    pub import: Option<ImportSpec>,
}

/// A model trained outside Spire (`algorithm = "import"`): an ONNX file (`.onnx`) or a
/// LightGBM text model file (anything else), evaluated on the segment's held-out users,
/// registered and scored like a native model.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSpec {
    /// The model file (resolved against the project folder).
    pub path: PathBuf,
    /// Feature names, one per model input column, when the file does not name them.
    pub features: Option<Vec<String>>,
}

impl ImportSpec {
    /// `onnx` for a `.onnx` file, else `lightgbm`.
    pub fn format(&self) -> &'static str {
        match self.path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("onnx") => "onnx",
            _ => "lightgbm",
        }
    }
}

/// A validated `[segment.model.tune]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneSpec {
    /// What is tuned.
    pub space: crate::tune::SearchSpace,
    /// Tuner settings.
    pub params: crate::tune::TuneParams,
    /// Cross-validation folds over the segment's training users.
    pub folds: usize,
}

/// Label definitions.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// At least `min_count` events matching `predicate` within `horizon_days` after `as_of`.
    FutureEvents {
        /// SQL predicate over events.
        predicate: String,
        /// Minimum count.
        min_count: u32,
        /// Horizon in days.
        horizon_days: u32,
    },
    /// Users listed in a CSV file are positives (lookalike modelling).
    SeedList {
        /// Absolute path of the CSV.
        path: PathBuf,
    },
}

/// Output policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Threshold rule.
    pub threshold: Threshold,
    /// Write every user's score to the `scores` table too.
    pub write_scores: bool,
}

/// Threshold rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// The top fraction of eligible users by score.
    TopFraction(f64),
    /// Users scoring at least this.
    MinScore(f64),
    /// The top this-many eligible users by score (an audience of a given size).
    TargetSize(u64),
    /// Users scoring at least the threshold chosen at training time as the lowest score
    /// whose held-out precision is at least this; stored with the model version.
    MinPrecision(f64),
}

/// Boolean expression over segment names.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentExpr {
    /// A segment by name.
    Segment(String),
    /// Both.
    And(Box<SegmentExpr>, Box<SegmentExpr>),
    /// Either.
    Or(Box<SegmentExpr>, Box<SegmentExpr>),
    /// Not.
    Not(Box<SegmentExpr>),
}

impl SegmentExpr {
    /// Segment names referenced.
    pub fn names(&self, out: &mut Vec<String>) {
        match self {
            SegmentExpr::Segment(s) => out.push(s.clone()),
            SegmentExpr::And(a, b) | SegmentExpr::Or(a, b) => {
                a.names(out);
                b.names(out);
            }
            SegmentExpr::Not(a) => a.names(out),
        }
    }

    /// Parses `a AND NOT (b OR c)`; names are `[A-Za-z0-9_.-]+`.
    pub fn parse(text: &str) -> Result<SegmentExpr, String> {
        let tokens = tokenize(text)?;
        let mut pos = 0;
        let expr = parse_or(&tokens, &mut pos)?;
        if pos != tokens.len() {
            return Err(format!("unexpected `{}` in `{text}`", tokens[pos]));
        }
        Ok(expr)
    }

    fn substitute(&self, value: &str) -> SegmentExpr {
        match self {
            SegmentExpr::Segment(s) => SegmentExpr::Segment(s.replace("{value}", value)),
            SegmentExpr::And(a, b) => {
                SegmentExpr::And(Box::new(a.substitute(value)), Box::new(b.substitute(value)))
            }
            SegmentExpr::Or(a, b) => {
                SegmentExpr::Or(Box::new(a.substitute(value)), Box::new(b.substitute(value)))
            }
            SegmentExpr::Not(a) => SegmentExpr::Not(Box::new(a.substitute(value))),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        } else if c.is_ascii_alphanumeric() || "_-.{}".contains(c) {
            cur.push(c);
        } else {
            return Err(format!("unexpected character `{c}` in `{text}`"));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn parse_or(t: &[String], pos: &mut usize) -> Result<SegmentExpr, String> {
    let mut left = parse_and(t, pos)?;
    while t.get(*pos).is_some_and(|s| s.eq_ignore_ascii_case("or")) {
        *pos += 1;
        left = SegmentExpr::Or(Box::new(left), Box::new(parse_and(t, pos)?));
    }
    Ok(left)
}

fn parse_and(t: &[String], pos: &mut usize) -> Result<SegmentExpr, String> {
    let mut left = parse_not(t, pos)?;
    while t.get(*pos).is_some_and(|s| s.eq_ignore_ascii_case("and")) {
        *pos += 1;
        left = SegmentExpr::And(Box::new(left), Box::new(parse_not(t, pos)?));
    }
    Ok(left)
}

fn parse_not(t: &[String], pos: &mut usize) -> Result<SegmentExpr, String> {
    match t.get(*pos).map(String::as_str) {
        Some(s) if s.eq_ignore_ascii_case("not") => {
            *pos += 1;
            Ok(SegmentExpr::Not(Box::new(parse_not(t, pos)?)))
        }
        Some("(") => {
            *pos += 1;
            let e = parse_or(t, pos)?;
            if t.get(*pos).map(String::as_str) != Some(")") {
                return Err("missing `)`".to_string());
            }
            *pos += 1;
            Ok(e)
        }
        Some(")") => Err("unexpected `)`".to_string()),
        Some(name) if !["and", "or"].contains(&name.to_ascii_lowercase().as_str()) => {
            *pos += 1;
            Ok(SegmentExpr::Segment(name.to_string()))
        }
        Some(other) => Err(format!("expected a segment name, found `{other}`")),
        None => Err("expression ends early: expected a segment name".to_string()),
    }
}

impl SegmentSpec {
    /// The concrete segments of this spec for fan-out `values` (ignored without `for_each`).
    pub fn expand(&self, values: &[String]) -> Vec<SegmentSpec> {
        if self.for_each.is_none() {
            return vec![self.clone()];
        }
        values
            .iter()
            .map(|v| {
                // In names `{value}` is the value itself; in SQL it is escaped for a string literal.
                let sub = |s: &str| s.replace("{value}", v);
                let sub_sql = |s: &str| s.replace("{value}", &v.replace('\'', "''"));
                let kind = match &self.kind {
                    SegmentKind::RulePredicate { predicate } => SegmentKind::RulePredicate {
                        predicate: sub_sql(predicate),
                    },
                    SegmentKind::RuleCombine { expr } => SegmentKind::RuleCombine {
                        expr: expr.substitute(v),
                    },
                    SegmentKind::Model(m) => SegmentKind::Model(ModelSpec {
                        label: match &m.label {
                            Label::FutureEvents {
                                predicate,
                                min_count,
                                horizon_days,
                            } => Label::FutureEvents {
                                predicate: sub_sql(predicate),
                                min_count: *min_count,
                                horizon_days: *horizon_days,
                            },
                            other => other.clone(),
                        },
                        eligibility: m.eligibility.as_deref().map(sub_sql),
                        ..m.clone()
                    }),
                };
                SegmentSpec {
                    name: slug(&sub(&self.name)),
                    description: sub(&self.description),
                    for_each: None,
                    kind,
                    ..self.clone()
                }
            })
            .collect()
    }

    pub(super) fn check_references(&self, names: &BTreeSet<String>, issues: &mut Issues) {
        if let SegmentKind::RuleCombine { expr } = &self.kind {
            let mut refs = Vec::new();
            expr.names(&mut refs);
            for r in refs {
                if r == self.name {
                    issues.push(
                        &self.file,
                        format!("segment `{}`.combine", self.name),
                        "refers to itself",
                    );
                } else if !r.contains("{value}")
                    && !names.contains(&r)
                    && !names.iter().any(|n| n.contains("{value}"))
                {
                    issues.push(
                        &self.file,
                        format!("segment `{}`.combine", self.name),
                        format!("unknown segment `{r}`"),
                    );
                }
            }
        }
    }
}

/// Reports every cycle of `combine` references among rule segments (`a` combines `b`, `b`
/// combines `a`), once per cycle, at the segment where it is found first.
pub(super) fn check_combine_cycles(specs: &[SegmentSpec], issues: &mut Issues) {
    use std::collections::BTreeMap;
    let edges: BTreeMap<&str, (Vec<String>, &SegmentSpec)> = specs
        .iter()
        .filter_map(|s| match &s.kind {
            SegmentKind::RuleCombine { expr } => {
                let mut refs = Vec::new();
                expr.names(&mut refs);
                Some((s.name.as_str(), (refs, s)))
            }
            _ => None,
        })
        .collect();
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in edges.keys() {
        // Depth-first from `start`, following combine references only.
        let mut stack: Vec<(String, Vec<String>)> =
            vec![(start.to_string(), vec![start.to_string()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            let Some((refs, _)) = edges.get(node.as_str()) else {
                continue;
            };
            for r in refs {
                if r == *start && path.len() > 1 {
                    let mut cycle = path.clone();
                    let mut key = cycle.clone();
                    key.sort();
                    if reported.insert(key) {
                        cycle.push(r.clone());
                        let spec = edges[*start].1;
                        issues.push(
                            &spec.file,
                            format!("segment `{}`.combine", spec.name),
                            format!("combine references form a cycle: {}", cycle.join(" → ")),
                        );
                    }
                } else if !path.contains(r) && seen.insert(r.clone()) {
                    let mut next = path.clone();
                    next.push(r.clone());
                    stack.push((r.clone(), next));
                }
            }
        }
    }
}

/// Lowercases and replaces characters other than `[a-z0-9_-]` with `-`.
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub(super) fn validate_segment(
    file: &Path,
    i: usize,
    s: &RawSegment,
    feature_sets: &BTreeSet<String>,
    issues: &mut Issues,
) -> Option<SegmentSpec> {
    let key = |k: &str| format!("segment[{i}].{k}");
    let before = issues.list.len();
    let name = match &s.name {
        Some(n) if !n.trim().is_empty() => n.clone(),
        _ => {
            issues.push(file, key("name"), "missing: every segment needs a name");
            String::new()
        }
    };
    let for_each = match &s.for_each {
        None => None,
        Some(RawForEach {
            values: Some(v),
            sql: None,
        }) if !v.is_empty() => Some(ForEach::Values(v.clone())),
        Some(RawForEach {
            values: None,
            sql: Some(q),
        }) if !q.trim().is_empty() => Some(ForEach::Sql(q.clone())),
        Some(_) => {
            issues.push(
                file,
                key("for_each"),
                "give exactly one of `values = [...]` (non-empty) or `sql = \"...\"`",
            );
            None
        }
    };
    if s.for_each.is_some() && !name.contains("{value}") {
        issues.push(
            file,
            key("name"),
            "a `for_each` segment's name must contain `{value}`",
        );
    }
    let feature_set = s.feature_set.clone().unwrap_or_default();
    let needs_fs = !(s.kind.as_deref() == Some("rule") && s.combine.is_some());
    if needs_fs && !feature_sets.contains(&feature_set) {
        let msg = if feature_set.is_empty() {
            "missing: name the feature set the segment reads".to_string()
        } else {
            format!(
                "unknown feature set `{feature_set}` (declared: {})",
                join(feature_sets)
            )
        };
        issues.push(file, key("feature_set"), msg);
    }
    let output = validate_output(s.output.as_ref(), &key, file, issues);
    let kind = match s.kind.as_deref() {
        Some("rule") => match (&s.where_, &s.combine) {
            (Some(p), None) if !p.trim().is_empty() => SegmentKind::RulePredicate {
                predicate: p.clone(),
            },
            (None, Some(c)) => match SegmentExpr::parse(c) {
                Ok(expr) => SegmentKind::RuleCombine { expr },
                Err(e) => {
                    issues.push(file, key("combine"), e);
                    return None;
                }
            },
            _ => {
                issues.push(
                    file,
                    key("where"),
                    "a rule segment needs exactly one of `where` (SQL predicate) or `combine`",
                );
                return None;
            }
        },
        Some("model") => SegmentKind::Model(validate_model(file, &key, s, issues)?),
        Some(other) => {
            issues.push(
                file,
                key("kind"),
                format!("`{other}`: expected `rule` or `model`"),
            );
            return None;
        }
        None => {
            issues.push(file, key("kind"), "missing: expected `rule` or `model`");
            return None;
        }
    };
    if issues.list.len() > before {
        return None;
    }
    Some(SegmentSpec {
        name,
        file: file.to_path_buf(),
        description: s.description.clone().unwrap_or_default(),
        for_each,
        feature_set,
        kind,
        output,
        schedule: ScheduleSpec::default(),
    })
}

fn validate_output(
    o: Option<&RawOutput>,
    key: &dyn Fn(&str) -> String,
    file: &Path,
    issues: &mut Issues,
) -> Output {
    let o = o.cloned().unwrap_or_default();
    let given: Vec<&str> = [
        o.top_fraction.map(|_| "top_fraction"),
        o.min_score.map(|_| "min_score"),
        o.target_size.map(|_| "target_size"),
        o.min_precision.map(|_| "min_precision"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        issues.push(
            file,
            key("output"),
            format!(
                "give one threshold rule, not {} (choose one of `top_fraction`, `min_score`, \
                 `target_size`, `min_precision`)",
                given.join(" and ")
            ),
        );
    }
    let threshold = if let Some(f) = o.top_fraction {
        if !(f > 0.0 && f <= 1.0) {
            issues.push(
                file,
                key("output.top_fraction"),
                format!("{f}: must be in (0, 1]"),
            );
        }
        Threshold::TopFraction(f)
    } else if let Some(m) = o.min_score {
        if !(0.0..=1.0).contains(&m) {
            issues.push(
                file,
                key("output.min_score"),
                format!("{m}: must be in [0, 1]"),
            );
        }
        Threshold::MinScore(m)
    } else if let Some(n) = o.target_size {
        if n == 0 {
            issues.push(file, key("output.target_size"), "0: must be at least 1");
        }
        Threshold::TargetSize(n)
    } else if let Some(p) = o.min_precision {
        if !(p > 0.0 && p <= 1.0) {
            issues.push(
                file,
                key("output.min_precision"),
                format!("{p}: must be in (0, 1]"),
            );
        }
        Threshold::MinPrecision(p)
    } else {
        Threshold::TopFraction(0.1)
    };
    Output {
        threshold,
        write_scores: o.write_scores.unwrap_or(false),
    }
}

fn validate_model(
    file: &Path,
    key: &dyn Fn(&str) -> String,
    s: &RawSegment,
    issues: &mut Issues,
) -> Option<ModelSpec> {
    let Some(label) = &s.label else {
        issues.push(
            file,
            key("label"),
            "missing: a model segment needs a `[segment.label]`",
        );
        return None;
    };
    let label = match label.kind.as_deref() {
        Some("future_events") => {
            let Some(predicate) = label.where_.clone().filter(|p| !p.trim().is_empty()) else {
                issues.push(
                    file,
                    key("label.where"),
                    "missing: SQL predicate on events, e.g. \"category = 'gadgets'\"",
                );
                return None;
            };
            let horizon_days = label.horizon_days.unwrap_or(7);
            if horizon_days == 0 || horizon_days > 366 {
                issues.push(
                    file,
                    key("label.horizon_days"),
                    format!("{horizon_days}: must be in 1..=366"),
                );
            }
            let min_count = label.min_count.unwrap_or(1);
            if min_count == 0 {
                issues.push(file, key("label.min_count"), "must be >= 1");
            }
            Label::FutureEvents {
                predicate,
                min_count,
                horizon_days,
            }
        }
        Some("seed_list") => {
            let Some(path) = &label.path else {
                issues.push(file, key("label.path"), "missing: CSV file of user ids");
                return None;
            };
            let base = file
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("."));
            let path = base.join(path);
            if !path.is_file() {
                issues.push(
                    file,
                    key("label.path"),
                    format!("{} does not exist", path.display()),
                );
            }
            Label::SeedList { path }
        }
        other => {
            issues.push(
                file,
                key("label.kind"),
                format!("{other:?}: expected `future_events` or `seed_list`"),
            );
            return None;
        }
    };
    let model = s.model.clone().unwrap_or_default();
    let algorithm = model
        .algorithm
        .clone()
        .unwrap_or_else(|| "logistic_regression".to_string());
    let gbdt = match algorithm.as_str() {
        "logistic_regression" => {
            if model.params.is_some() {
                issues.push(
                    file,
                    key("model.params"),
                    "`logistic_regression` takes `model.l2`, `model.l1` and `model.max_iter`, \
                     not a params table",
                );
            }
            None
        }
        "gbdt" => validate_gbdt(file, key, &model, issues),
        "import" => None,
        other => {
            issues.push(
                file,
                key("model.algorithm"),
                format!("`{other}`: available algorithms: {}", ALGORITHMS.join(", ")),
            );
            None
        }
    };
    let import = validate_import(file, key, &model, &algorithm, issues);
    let l2 = model.l2.unwrap_or(1e-4);
    if !(l2.is_finite() && l2 >= 0.0) {
        issues.push(
            file,
            key("model.l2"),
            format!("{l2}: must be a finite number >= 0"),
        );
    }
    let l1 = model.l1.unwrap_or(0.0);
    if !(l1.is_finite() && l1 >= 0.0) {
        issues.push(
            file,
            key("model.l1"),
            format!("{l1}: must be a finite number >= 0"),
        );
    }
    let tune = model.tune.as_ref().and_then(|t| {
        let mut ok = true;
        let space = t.space.clone().unwrap_or_default();
        if let Err(e) = space.validate() {
            issues.push(file, key("model.tune.space"), e);
            ok = false;
        }
        // The fused linear trainer takes l2 and l1 per segment; other params would need a
        // separate fit per segment.
        if let Some(other) = space.0.keys().find(|k| !matches!(k.as_str(), "l2" | "l1")) {
            issues.push(
                file,
                key(&format!("model.tune.space.{other}")),
                format!("`{algorithm}` tunes `l2` and `l1` only"),
            );
            ok = false;
        }
        let defaults = crate::tune::TuneParams::default();
        let params = crate::tune::TuneParams {
            trials: t.trials.unwrap_or(defaults.trials),
            sampler: t.sampler.unwrap_or(defaults.sampler),
            startup_trials: t.startup_trials.unwrap_or(defaults.startup_trials),
            parallel: t.parallel.unwrap_or(defaults.parallel),
            prune: t.prune.unwrap_or(defaults.prune),
            seed: 0,
        };
        if let Err(e) = params.validate() {
            issues.push(file, key("model.tune"), e);
            ok = false;
        }
        let folds = t.folds.unwrap_or(3);
        if !(2..=20).contains(&folds) {
            issues.push(
                file,
                key("model.tune.folds"),
                format!("{folds}: must be in 2..=20"),
            );
            ok = false;
        }
        ok.then_some(TuneSpec {
            space,
            params,
            folds,
        })
    });
    let max_iter = model.max_iter.unwrap_or(100);
    if max_iter == 0 || max_iter > 10_000 {
        issues.push(
            file,
            key("model.max_iter"),
            format!("{max_iter}: must be in 1..=10000"),
        );
    }
    let params = match gbdt {
        Some(g) => serde_json::to_value(g.params()).unwrap_or_default(),
        None => serde_json::json!({ "l2": l2, "l1": l1, "max_iter": max_iter }),
    };
    let min_auc = s.gate.as_ref().and_then(|g| g.min_auc).unwrap_or(0.6);
    if !(0.0..=1.0).contains(&min_auc) {
        issues.push(
            file,
            key("gate.min_auc"),
            format!("{min_auc}: must be in [0, 1]"),
        );
    }
    Some(ModelSpec {
        label,
        eligibility: s.eligibility.clone(),
        algorithm,
        params,
        l2,
        l1,
        tune,
        max_iter,
        min_auc,
        import,
    })
}

/// Checks `file`/`features` against the algorithm: required for `import` (the file must
/// exist), and nothing a fit would take alongside; refused for the other algorithms.
fn validate_import(
    file: &Path,
    key: &dyn Fn(&str) -> String,
    model: &RawModel,
    algorithm: &str,
    issues: &mut Issues,
) -> Option<ImportSpec> {
    if algorithm != "import" {
        for (name, set) in [
            ("file", model.file.is_some()),
            ("features", model.features.is_some()),
        ] {
            if set {
                issues.push(
                    file,
                    key(&format!("model.{name}")),
                    format!(
                        "only `algorithm = \"import\"` reads a model file; `{algorithm}` \
                         trains its model"
                    ),
                );
            }
        }
        return None;
    }
    for (name, set) in [
        ("l2", model.l2.is_some()),
        ("l1", model.l1.is_some()),
        ("max_iter", model.max_iter.is_some()),
        ("params", model.params.is_some()),
        ("tune", model.tune.is_some()),
    ] {
        if set {
            issues.push(
                file,
                key(&format!("model.{name}")),
                "an imported model is trained elsewhere: remove it (only `file` and \
                 `features` apply)",
            );
        }
    }
    let Some(rel) = model.file.as_deref().filter(|f| !f.trim().is_empty()) else {
        issues.push(
            file,
            key("model.file"),
            "missing: `algorithm = \"import\"` needs the model file (ONNX or a LightGBM text \
             model), relative to the project",
        );
        return None;
    };
    let base = file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let path = base.join(rel);
    if !path.is_file() {
        issues.push(
            file,
            key("model.file"),
            format!("{} does not exist", path.display()),
        );
        return None;
    }
    if let Some(f) = &model.features {
        let mut seen = std::collections::HashSet::new();
        if f.is_empty() {
            issues.push(
                file,
                key("model.features"),
                "empty: name every input column",
            );
            return None;
        }
        if let Some(d) = f.iter().find(|n| !seen.insert(n.as_str())) {
            issues.push(
                file,
                key("model.features"),
                format!("`{d}` is listed twice"),
            );
            return None;
        }
    }
    Some(ImportSpec {
        path,
        features: model.features.clone(),
    })
}

/// Supervised algorithms a model segment can name.
const ALGORITHMS: [&str; 3] = ["logistic_regression", "gbdt", "import"];

/// Checks `[segment.model.params]` of a `gbdt` model (every problem at once, with its key);
/// `None` when something is wrong.
fn validate_gbdt(
    file: &Path,
    key: &dyn Fn(&str) -> String,
    model: &RawModel,
    issues: &mut Issues,
) -> Option<ValidGbdtParams> {
    let mut ok = true;
    for (name, set) in [
        ("l2", model.l2.is_some()),
        ("l1", model.l1.is_some()),
        ("max_iter", model.max_iter.is_some()),
    ] {
        if set {
            issues.push(
                file,
                key(&format!("model.{name}")),
                format!(
                    "`gbdt` takes its params in `[segment.model.params]`; move `{name}` there \
                     (gbdt params: {})",
                    PARAM_NAMES.join(", ")
                ),
            );
            ok = false;
        }
    }
    if model.tune.is_some() {
        issues.push(
            file,
            key("model.tune"),
            "tuning is available for `logistic_regression` only; set `gbdt` params in \
             `[segment.model.params]`",
        );
        ok = false;
    }
    let raw = model
        .params
        .clone()
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(table) = raw.as_object() {
        for k in table.keys().filter(|k| !PARAM_NAMES.contains(&k.as_str())) {
            issues.push(
                file,
                key(&format!("model.params.{k}")),
                format!("unknown gbdt param; known: {}", PARAM_NAMES.join(", ")),
            );
            ok = false;
        }
    } else {
        issues.push(file, key("model.params"), "must be a table of gbdt params");
        return None;
    }
    if !ok {
        return None;
    }
    let params: GbdtParams = match serde_json::from_value(raw) {
        Ok(p) => p,
        Err(e) => {
            issues.push(file, key("model.params"), e.to_string());
            return None;
        }
    };
    match params.validate() {
        Ok(v) => Some(v),
        Err(e) => {
            issues.push(
                file,
                key(&format!("model.params.{}", e.param)),
                format!("{}: must be {}", e.value, e.allowed),
            );
            None
        }
    }
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_string()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}
