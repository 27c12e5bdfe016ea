//! Parser of LightGBM's text model format (`Booster.save_model`, `model_to_string`).
//!
//! The file is a header of `key=value` lines, one block per tree (`Tree=<i>` then
//! `key=value` lines, blocks separated by blank lines), an `end of trees` line, then feature
//! importances, the training parameters and `pandas_categorical`, which scoring does not
//! need. Unknown header and tree keys are ignored (newer LightGBM versions add keys);
//! everything scoring reads is checked, so a parsed model never panics while scoring.

use std::collections::HashMap;
use std::str::FromStr;

use super::tree::{Decision, Missing, Node, Tree};
use crate::error::MlError;

const FORMAT: &str = "LightGBM";

/// Bit of `decision_type`: the split is categorical.
const CATEGORICAL_MASK: i64 = 1;
/// Bit of `decision_type`: missing values go left.
const DEFAULT_LEFT_MASK: i64 = 2;

/// A parsed model: what scoring needs.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    /// Feature names from the `feature_names` line.
    pub feature_names: Vec<String>,
    /// The `sigmoid:` parameter of the binary objective.
    pub sigmoid: f64,
    /// Whether the raw score is the mean of the trees (random forest mode) instead of the sum.
    pub average_output: bool,
    /// The trees in file order (the order LightGBM sums them).
    pub trees: Vec<Tree>,
}

/// One `key=value` line.
#[derive(Clone, Copy)]
struct Entry<'a> {
    line: usize,
    value: &'a str,
}

/// The `key=value` lines of one section, by key.
struct Section<'a> {
    /// What the section is, for messages: `"header"` or `"Tree=3"`.
    name: String,
    /// Line of the section's first line (for missing keys).
    line: usize,
    entries: HashMap<&'a str, Entry<'a>>,
}

fn error(line: usize, key: &str, message: impl Into<String>) -> MlError {
    MlError::model_file(FORMAT, Some(format!("line {line}, key {key}")), message)
}

fn line_error(line: usize, message: impl Into<String>) -> MlError {
    MlError::model_file(FORMAT, Some(format!("line {line}")), message)
}

impl<'a> Section<'a> {
    fn new(name: String, line: usize) -> Section<'a> {
        Section {
            name,
            line,
            entries: HashMap::new(),
        }
    }

    /// Adds a `key=value` (or bare `key`) line; a repeated key is an error.
    fn insert(&mut self, line: usize, text: &'a str) -> Result<(), MlError> {
        let (key, value) = text.split_once('=').unwrap_or((text, ""));
        let key = key.trim();
        if self.entries.insert(key, Entry { line, value }).is_some() {
            return Err(error(
                line,
                key,
                format!("{key} appears twice in {}", self.name),
            ));
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<Entry<'a>> {
        self.entries.get(key).copied()
    }

    fn has(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn required(&self, key: &str) -> Result<Entry<'a>, MlError> {
        self.get(key).ok_or_else(|| {
            line_error(
                self.line,
                format!(
                    "{} has no {key}= line (is the file truncated or not a LightGBM model?)",
                    self.name
                ),
            )
        })
    }

    /// A single number.
    fn number<T: FromStr>(&self, key: &str) -> Result<Option<T>, MlError> {
        let Some(e) = self.get(key) else {
            return Ok(None);
        };
        e.value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| error(e.line, key, format!("{:?} is not a valid number", e.value)))
    }

    /// A space-separated array of exactly `len` numbers.
    fn array<T: FromStr>(&self, key: &str, len: usize, what: &str) -> Result<Vec<T>, MlError> {
        let e = self.required(key)?;
        let values = e
            .value
            .split_ascii_whitespace()
            .enumerate()
            .map(|(i, token)| {
                token.parse().map_err(|_| {
                    error(
                        e.line,
                        key,
                        format!("value {} ({token:?}) is not a valid number", i + 1),
                    )
                })
            })
            .collect::<Result<Vec<T>, MlError>>()?;
        if values.len() != len {
            return Err(error(
                e.line,
                key,
                format!("{} values, expected {len} ({what})", values.len()),
            ));
        }
        Ok(values)
    }
}

/// Parses and checks a whole model text.
pub(crate) fn parse(text: &str) -> Result<Parsed, MlError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).peekable();
    // The submodel name: `tree` for every LightGBM boosting type.
    match lines.by_ref().find(|(_, l)| !l.trim().is_empty()) {
        Some((_, l)) if l.trim() == "tree" => {}
        Some((n, l)) => {
            return Err(line_error(
                n,
                format!(
                    "not a LightGBM text model: expected the first line to be `tree`, found {:?}",
                    truncate(l)
                ),
            ))
        }
        None => return Err(MlError::model_file(FORMAT, None, "the model text is empty")),
    }
    let mut header = Section::new("the header".into(), 1);
    while let Some(&(n, l)) = lines.peek() {
        if l.starts_with("Tree=") || l.trim() == "end of trees" {
            break;
        }
        lines.next();
        if !l.trim().is_empty() {
            header.insert(n, l)?;
        }
    }
    let head = parse_header(&header)?;
    let n_features = head.feature_names.len();

    let mut trees = Vec::new();
    let mut ended = false;
    while let Some((n, l)) = lines.next() {
        let l = l.trim_end();
        if l.is_empty() {
            continue;
        }
        if l == "end of trees" {
            ended = true;
            break;
        }
        let Some(index) = l.strip_prefix("Tree=") else {
            return Err(line_error(
                n,
                format!(
                    "expected `Tree={}` or `end of trees`, found {:?}",
                    trees.len(),
                    truncate(l)
                ),
            ));
        };
        if index.parse::<usize>().ok() != Some(trees.len()) {
            return Err(line_error(
                n,
                format!("expected `Tree={}`, found {:?}", trees.len(), truncate(l)),
            ));
        }
        let mut section = Section::new(format!("Tree={}", trees.len()), n);
        while let Some(&(m, body)) = lines.peek() {
            if body.trim().is_empty() || body.starts_with("Tree=") || body.trim() == "end of trees"
            {
                break;
            }
            lines.next();
            section.insert(m, body)?;
        }
        trees.push(parse_tree(&section, n_features)?);
    }
    if !ended {
        return Err(MlError::model_file(
            FORMAT,
            Some(format!("after {} trees", trees.len())),
            "the file ends before its `end of trees` line: it is truncated",
        ));
    }
    if trees.is_empty() {
        return Err(MlError::model_file(FORMAT, None, "the model has no trees"));
    }
    if let Some(e) = header.get("tree_sizes") {
        let listed = e.value.split_ascii_whitespace().count();
        if listed != trees.len() {
            return Err(error(
                e.line,
                "tree_sizes",
                format!(
                    "lists {listed} trees but the file has {}: it is truncated or edited",
                    trees.len()
                ),
            ));
        }
    }
    Ok(Parsed {
        feature_names: head.feature_names,
        sigmoid: head.sigmoid,
        average_output: head.average_output,
        trees,
    })
}

/// At most 60 characters of a line, for messages.
fn truncate(l: &str) -> String {
    l.chars().take(60).collect()
}

struct Header {
    feature_names: Vec<String>,
    sigmoid: f64,
    average_output: bool,
}

fn parse_header(h: &Section<'_>) -> Result<Header, MlError> {
    if let Some(e) = h.get("version") {
        let v = e.value.trim();
        if !matches!(v, "v2" | "v3" | "v4") {
            return Err(error(
                e.line,
                "version",
                format!("model format {v:?} is not one this reader knows (v2, v3, v4)"),
            ));
        }
    }
    let num_class: usize = h.number("num_class")?.unwrap_or(1);
    if num_class != 1 {
        let line = h.get("num_class").map_or(h.line, |e| e.line);
        return Err(error(
            line,
            "num_class",
            format!(
                "a multiclass model ({num_class} classes) is not supported: Spire imports \
                 binary classifiers (objective=binary)"
            ),
        ));
    }
    let per_iteration: usize = h.number("num_tree_per_iteration")?.unwrap_or(1);
    if per_iteration != 1 {
        let line = h.get("num_tree_per_iteration").map_or(h.line, |e| e.line);
        return Err(error(
            line,
            "num_tree_per_iteration",
            format!("{per_iteration} trees per iteration: only binary models (1) are supported"),
        ));
    }
    let sigmoid = parse_objective(h)?;
    let max_idx = h.required("max_feature_idx")?;
    let max_feature_idx: usize = max_idx.value.trim().parse().map_err(|_| {
        error(
            max_idx.line,
            "max_feature_idx",
            format!("{:?} is not a feature index", max_idx.value),
        )
    })?;
    let names = h.required("feature_names")?;
    let feature_names: Vec<String> = names
        .value
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    if Some(feature_names.len()) != max_feature_idx.checked_add(1) {
        return Err(error(
            names.line,
            "feature_names",
            format!(
                "{} names for max_feature_idx={max_feature_idx}",
                feature_names.len()
            ),
        ));
    }
    Ok(Header {
        feature_names,
        sigmoid,
        average_output: h.has("average_output"),
    })
}

/// The `sigmoid:` parameter of `objective=binary sigmoid:<s>`; other objectives are rejected
/// by name.
fn parse_objective(h: &Section<'_>) -> Result<f64, MlError> {
    let e = h.required("objective")?;
    let mut tokens = e.value.split_ascii_whitespace();
    let name = tokens.next().unwrap_or("");
    if name != "binary" {
        return Err(error(
            e.line,
            "objective",
            format!(
                "objective {name:?} is not supported: Spire imports binary classifiers \
                 (objective=binary), whose prediction is a probability"
            ),
        ));
    }
    let mut sigmoid: f64 = 1.0;
    for token in tokens {
        if let Some(v) = token.strip_prefix("sigmoid:") {
            sigmoid = v.parse().map_err(|_| {
                error(
                    e.line,
                    "objective",
                    format!("sigmoid {v:?} is not a number"),
                )
            })?;
        }
    }
    if !(sigmoid.is_finite() && sigmoid > 0.0) {
        return Err(error(
            e.line,
            "objective",
            format!("sigmoid:{sigmoid} must be positive and finite"),
        ));
    }
    Ok(sigmoid)
}

/// Parses and checks one `Tree=` block.
fn parse_tree(s: &Section<'_>, n_features: usize) -> Result<Tree, MlError> {
    let leaves_line = s.required("num_leaves")?.line;
    let n_leaves: usize = s.number("num_leaves")?.unwrap_or(0);
    if n_leaves == 0 || n_leaves > i32::MAX as usize {
        return Err(error(
            leaves_line,
            "num_leaves",
            format!("{n_leaves} leaves: must be at least 1"),
        ));
    }
    if s.number::<u8>("is_linear")?.unwrap_or(0) != 0 {
        let line = s.get("is_linear").map_or(s.line, |e| e.line);
        return Err(error(
            line,
            "is_linear",
            "linear trees (linear_tree=true) are not supported",
        ));
    }
    let leaf_values: Vec<f64> = s.array("leaf_value", n_leaves, "num_leaves")?;
    if let Some(i) = leaf_values.iter().position(|v| !v.is_finite()) {
        let line = s.required("leaf_value")?.line;
        return Err(error(
            line,
            "leaf_value",
            format!("leaf {i} has the non-finite value {}", leaf_values[i]),
        ));
    }
    let n_nodes = n_leaves - 1;
    if n_nodes == 0 {
        return Ok(Tree::new(Vec::new(), leaf_values, Vec::new()));
    }
    let what = "num_leaves - 1";
    let features: Vec<i64> = s.array("split_feature", n_nodes, what)?;
    let thresholds: Vec<f64> = s.array("threshold", n_nodes, what)?;
    let decisions: Vec<i64> = s.array("decision_type", n_nodes, what)?;
    let left: Vec<i64> = s.array("left_child", n_nodes, what)?;
    let right: Vec<i64> = s.array("right_child", n_nodes, what)?;
    let n_cat: usize = s.number("num_cat")?.unwrap_or(0);
    let (boundaries, bits) = if n_cat > 0 {
        let b: Vec<usize> = s.array("cat_boundaries", n_cat + 1, "num_cat + 1")?;
        let line = s.required("cat_boundaries")?.line;
        let t = s.required("cat_threshold")?;
        let bits: Vec<u32> = s.array(
            "cat_threshold",
            t.value.split_ascii_whitespace().count(),
            "",
        )?;
        if b.first() != Some(&0)
            || b.windows(2).any(|w| w[0] > w[1])
            || b.last() != Some(&bits.len())
        {
            return Err(error(
                line,
                "cat_boundaries",
                format!(
                    "must rise from 0 to the {} values of cat_threshold",
                    bits.len()
                ),
            ));
        }
        (b, bits)
    } else {
        (Vec::new(), Vec::new())
    };

    let mut nodes = Vec::with_capacity(n_nodes);
    for i in 0..n_nodes {
        let feature = usize::try_from(features[i])
            .ok()
            .filter(|&f| f < n_features)
            .ok_or_else(|| {
                let line = s.get("split_feature").map_or(s.line, |e| e.line);
                error(
                    line,
                    "split_feature",
                    format!(
                        "node {i} splits on feature {}, but the model has {n_features} features",
                        features[i]
                    ),
                )
            })?;
        let decision = decision(s, i, decisions[i], thresholds[i], &boundaries)?;
        nodes.push(Node {
            feature,
            threshold: thresholds[i],
            decision,
            left: child(s, "left_child", i, left[i], n_nodes, n_leaves)?,
            right: child(s, "right_child", i, right[i], n_nodes, n_leaves)?,
        });
    }
    check_topology(s, &nodes, n_leaves)?;
    Ok(Tree::new(nodes, leaf_values, bits))
}

/// The decision rule of node `i` from its `decision_type` bits.
fn decision(
    s: &Section<'_>,
    i: usize,
    bits: i64,
    threshold: f64,
    boundaries: &[usize],
) -> Result<Decision, MlError> {
    let line = |key| s.get(key).map_or(s.line, |e| e.line);
    if !(0..16).contains(&bits) || (bits >> 2) & 3 == 3 {
        return Err(error(
            line("decision_type"),
            "decision_type",
            format!("node {i} has decision_type {bits}, which is not a LightGBM decision type"),
        ));
    }
    if bits & CATEGORICAL_MASK != 0 {
        // The threshold of a categorical split is the index of its category bitset.
        let n_sets = boundaries.len().saturating_sub(1);
        let k = threshold as usize;
        if !(threshold >= 0.0 && threshold.fract() == 0.0 && k < n_sets) {
            return Err(error(
                line("threshold"),
                "threshold",
                format!(
                    "categorical node {i} names category set {threshold}, but the tree has \
                     {n_sets} (num_cat)"
                ),
            ));
        }
        return Ok(Decision::Categorical {
            start: boundaries[k],
            end: boundaries[k + 1],
        });
    }
    if threshold.is_nan() {
        return Err(error(
            line("threshold"),
            "threshold",
            format!("node {i} has a NaN threshold"),
        ));
    }
    let missing = match (bits >> 2) & 3 {
        0 => Missing::None,
        1 => Missing::Zero,
        _ => Missing::NaN,
    };
    Ok(Decision::Numerical {
        missing,
        default_left: bits & DEFAULT_LEFT_MASK != 0,
    })
}

/// A child reference: `>= 0` an internal node, `< 0` the leaf `!c`.
fn child(
    s: &Section<'_>,
    key: &str,
    i: usize,
    c: i64,
    n_nodes: usize,
    n_leaves: usize,
) -> Result<i32, MlError> {
    let ok = if c >= 0 {
        (c as u64) < n_nodes as u64
    } else {
        ((!c) as u64) < n_leaves as u64
    };
    if !ok {
        let line = s.get(key).map_or(s.line, |e| e.line);
        return Err(error(
            line,
            key,
            format!(
                "node {i} points to {c}, outside the {n_nodes} nodes and {n_leaves} leaves \
                 of the tree"
            ),
        ));
    }
    // In range of `n_nodes` or `n_leaves`, both below `i32::MAX`.
    Ok(c as i32)
}

/// Checks that the children form one tree from node 0: every node and leaf is reached
/// exactly once (so scoring always ends, at a leaf).
fn check_topology(s: &Section<'_>, nodes: &[Node], n_leaves: usize) -> Result<(), MlError> {
    let mut node_seen = vec![false; nodes.len()];
    let mut leaf_seen = vec![false; n_leaves];
    let mut stack = vec![0usize];
    node_seen[0] = true;
    let line = s.get("left_child").map_or(s.line, |e| e.line);
    while let Some(i) = stack.pop() {
        for c in [nodes[i].left, nodes[i].right] {
            let seen = if c >= 0 {
                &mut node_seen[c as usize]
            } else {
                &mut leaf_seen[(!c) as usize]
            };
            if *seen {
                return Err(error(
                    line,
                    "left_child",
                    format!(
                        "{} is reached twice: left_child and right_child must form a tree",
                        describe(c)
                    ),
                ));
            }
            *seen = true;
            if c >= 0 {
                stack.push(c as usize);
            }
        }
    }
    let unreached = node_seen
        .iter()
        .position(|s| !s)
        .map(|i| describe(i as i32))
        .or_else(|| {
            leaf_seen
                .iter()
                .position(|s| !s)
                .map(|l| describe(!(l as i32)))
        });
    match unreached {
        Some(what) => Err(error(
            line,
            "left_child",
            format!("{what} is not reachable from the root"),
        )),
        None => Ok(()),
    }
}

fn describe(c: i32) -> String {
    if c >= 0 {
        format!("node {c}")
    } else {
        format!("leaf {}", !c)
    }
}
