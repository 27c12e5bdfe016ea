//! One LightGBM tree and its decision rules, as LightGBM's `Tree::Predict` applies them to
//! raw feature values (`include/LightGBM/tree.h`: `NumericalDecision`, `CategoricalDecision`).

/// LightGBM's `kZeroThreshold` (a `float` `1e-35` widened to `double`): values at most this
/// far from zero are zero, both for zero-as-missing splits and when LightGBM reads a dense
/// row (it keeps only cells with `|v| > kZeroThreshold` or NaN, the rest score as 0.0).
pub(crate) const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// How a numerical split treats missing values (bits 2–3 of `decision_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// No missing values in training: NaN is scored as 0.0 against the threshold.
    None,
    /// Zero (and NaN, read as zero) is missing and goes the default way.
    Zero,
    /// NaN is missing and goes the default way.
    NaN,
}

/// The rule of an internal node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// `value <= threshold` goes left, after the missing-value rule.
    Numerical {
        /// The missing-value rule.
        missing: Missing,
        /// Whether missing values go left.
        default_left: bool,
    },
    /// The category (the value truncated to an integer) goes left when its bit is set in
    /// `cat_threshold[start..end]`; NaN, negative and unlisted categories go right.
    Categorical {
        /// First word of the node's bitset in the tree's `cat_threshold`.
        start: usize,
        /// One past the last word.
        end: usize,
    },
}

/// An internal node. Children `>= 0` are nodes, `< 0` are the leaf `!child`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Node {
    /// Column of the feature the node splits on.
    pub feature: usize,
    /// The numerical threshold (the bitset index for categorical nodes, already resolved).
    pub threshold: f64,
    /// The rule.
    pub decision: Decision,
    /// Left child.
    pub left: i32,
    /// Right child.
    pub right: i32,
}

/// A checked tree: children are in range and form one tree from node 0, features are
/// columns of the model, categorical nodes point inside `cat_bits`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    leaf_values: Vec<f64>,
    cat_bits: Vec<u32>,
}

impl Tree {
    /// Wraps checked parts (see [`super::parse`]); `nodes` may be empty for a one-leaf tree.
    pub(crate) fn new(nodes: Vec<Node>, leaf_values: Vec<f64>, cat_bits: Vec<u32>) -> Tree {
        Tree {
            nodes,
            leaf_values,
            cat_bits,
        }
    }

    /// The value of the leaf `row` falls into. `row` holds one value per model feature, with
    /// LightGBM's zero rule already applied.
    pub(crate) fn predict(&self, row: &[f64]) -> f64 {
        if self.nodes.is_empty() {
            return self.leaf_values[0];
        }
        let mut at = 0usize;
        loop {
            let node = &self.nodes[at];
            let next = self.decide(node, row[node.feature]);
            if next < 0 {
                return self.leaf_values[(!next) as usize];
            }
            at = next as usize;
        }
    }

    fn decide(&self, node: &Node, value: f64) -> i32 {
        match node.decision {
            Decision::Numerical {
                missing,
                default_left,
            } => {
                let value = if value.is_nan() && missing != Missing::NaN {
                    0.0
                } else {
                    value
                };
                let is_missing = match missing {
                    Missing::None => false,
                    Missing::Zero => (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&value),
                    Missing::NaN => value.is_nan(),
                };
                if is_missing {
                    if default_left {
                        node.left
                    } else {
                        node.right
                    }
                } else if value <= node.threshold {
                    node.left
                } else {
                    node.right
                }
            }
            Decision::Categorical { start, end } => {
                if value.is_nan() {
                    return node.right;
                }
                // C++ `static_cast<int>` truncates toward zero; Rust's cast does too and
                // saturates out of range, where both end up right (negative or past the set).
                let category = value as i32;
                if category < 0 {
                    return node.right;
                }
                let (word, bit) = ((category / 32) as usize, category % 32);
                let bits = &self.cat_bits[start..end];
                match bits.get(word) {
                    Some(w) if (w >> bit) & 1 == 1 => node.left,
                    _ => node.right,
                }
            }
        }
    }

    /// Number of leaves.
    pub(crate) fn n_leaves(&self) -> usize {
        self.leaf_values.len()
    }

    /// Whether the tree has a categorical split on `feature`.
    pub(crate) fn splits_categorically_on(&self, feature: usize) -> bool {
        self.nodes
            .iter()
            .any(|n| n.feature == feature && matches!(n.decision, Decision::Categorical { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stump(decision: Decision, threshold: f64, bits: Vec<u32>) -> Tree {
        let node = Node {
            feature: 0,
            threshold,
            decision,
            left: -1,
            right: -2,
        };
        Tree::new(vec![node], vec![-1.0, 1.0], bits)
    }

    #[test]
    fn zero_threshold_is_the_widened_float() {
        assert_eq!(ZERO_THRESHOLD, 1.0000000180025095e-35);
    }

    #[test]
    fn numerical_missing_rules() {
        let none = stump(
            Decision::Numerical {
                missing: Missing::None,
                default_left: false,
            },
            0.5,
            vec![],
        );
        // NaN scores as 0.0 <= 0.5: left, whatever the default direction says.
        assert_eq!(none.predict(&[f64::NAN]), -1.0);
        assert_eq!(none.predict(&[0.5]), -1.0);
        assert_eq!(none.predict(&[0.6]), 1.0);
        assert_eq!(none.predict(&[f64::INFINITY]), 1.0);

        let nan_right = stump(
            Decision::Numerical {
                missing: Missing::NaN,
                default_left: false,
            },
            0.5,
            vec![],
        );
        assert_eq!(nan_right.predict(&[f64::NAN]), 1.0);
        assert_eq!(nan_right.predict(&[0.0]), -1.0);

        let zero_right = stump(
            Decision::Numerical {
                missing: Missing::Zero,
                default_left: false,
            },
            0.5,
            vec![],
        );
        assert_eq!(zero_right.predict(&[0.0]), 1.0);
        assert_eq!(zero_right.predict(&[f64::NAN]), 1.0);
        assert_eq!(zero_right.predict(&[1e-36]), 1.0);
        assert_eq!(zero_right.predict(&[0.1]), -1.0);
        let zero_left = stump(
            Decision::Numerical {
                missing: Missing::Zero,
                default_left: true,
            },
            -0.5,
            vec![],
        );
        assert_eq!(zero_left.predict(&[0.0]), -1.0);
        assert_eq!(zero_left.predict(&[0.1]), 1.0);
    }

    #[test]
    fn categorical_bitsets() {
        // Categories 1, 3 and 33 go left.
        let t = stump(
            Decision::Categorical { start: 0, end: 2 },
            0.0,
            vec![0b1010, 0b10],
        );
        for (v, left) in [
            (1.0, true),
            (1.9, true),
            (3.0, true),
            (33.0, true),
            (0.0, false),
            (-0.5, false), // truncates to category 0
            (2.0, false),
            (32.0, false),
            (64.0, false),
            (-1.0, false),
            (f64::NAN, false),
            (1e12, false),
            (f64::INFINITY, false),
        ] {
            assert_eq!(t.predict(&[v]) < 0.0, left, "value {v}");
        }
    }

    #[test]
    fn single_leaf() {
        let t = Tree::new(vec![], vec![0.25], vec![]);
        assert_eq!(t.predict(&[]), 0.25);
        assert_eq!(t.n_leaves(), 1);
    }
}
