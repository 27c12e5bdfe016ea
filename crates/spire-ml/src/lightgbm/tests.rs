#![allow(clippy::unwrap_used)]

use super::*;

/// A two-tree model: tree 0 splits `visits` (NaN missing, default left) then `channel`
/// (categories 1 and 2 go left); tree 1 is a single leaf.
const SMALL: &str = "tree
version=v4
num_class=1
num_tree_per_iteration=1
label_index=0
max_feature_idx=1
objective=binary sigmoid:1
feature_names=visits channel
feature_infos=[0:9] 0:1:2:3
tree_sizes=300 200

Tree=0
num_leaves=3
num_cat=1
split_feature=0 1
split_gain=10 5
threshold=1.5 0
decision_type=10 1
left_child=-1 -2
right_child=1 -3
leaf_value=0.10000000000000001 0.20000000000000001 0.29999999999999999
leaf_weight=1 1 1
leaf_count=10 10 10
internal_value=0 0
internal_weight=2 1
internal_count=30 20
cat_boundaries=0 1
cat_threshold=6
is_linear=0
shrinkage=1


Tree=1
num_leaves=1
num_cat=0
split_feature=
split_gain=
threshold=
decision_type=
left_child=
right_child=
leaf_value=-0.050000000000000003
leaf_weight=
leaf_count=
internal_value=
internal_weight=
internal_count=
is_linear=0
shrinkage=1


end of trees

feature_importances:
visits=1
channel=1

parameters:
[boosting: gbdt]
end of parameters

pandas_categorical:null
";

fn rows() -> Matrix {
    Matrix::from_rows(&[
        [1.0, 5.0],
        [f64::NAN, 1.0],
        [2.0, 1.0],
        [2.0, 3.0],
        [2.0, f64::NAN],
        [2.0, 2.9],
        [1e-40, 1.0],
    ])
    .unwrap()
}

#[test]
fn parses_and_scores_the_small_model() {
    let m = LightGbmModel::from_model_text(SMALL).unwrap();
    assert_eq!(m.n_trees(), 2);
    assert_eq!(m.n_leaves(), 4);
    assert_eq!(m.feature_names(), ["visits", "channel"]);
    assert_eq!(m.categorical_features(), ["channel"]);
    assert!(m.handles_missing());
    let raw = m.raw_score(&rows()).unwrap();
    // Leaves by the rules of the module docs, plus tree 1's constant.
    let (l0, l1, l2, c) = (0.1, 0.2, 0.3, -0.05);
    assert_eq!(
        raw,
        [l0 + c, l0 + c, l1 + c, l2 + c, l2 + c, l1 + c, l0 + c]
    );
    let p = m.predict_proba(&rows()).unwrap();
    for (p, r) in p.iter().zip(&raw) {
        assert_eq!(*p, 1.0 / (1.0 + (-r).exp()));
    }
}

#[test]
fn sigmoid_and_average_output() {
    let text = SMALL
        .replace("binary sigmoid:1", "binary sigmoid:0.5")
        .replace("feature_infos", "average_output\nfeature_infos");
    let m = LightGbmModel::from_model_text(&text).unwrap();
    assert_eq!(m.sigmoid(), 0.5);
    let base = LightGbmModel::from_model_text(SMALL).unwrap();
    let x = rows();
    let (raw, base_raw) = (m.raw_score(&x).unwrap(), base.raw_score(&x).unwrap());
    for (r, b) in raw.iter().zip(&base_raw) {
        assert_eq!(*r, b / 2.0);
    }
    let p = m.predict_proba(&x).unwrap();
    assert_eq!(p[0], 1.0 / (1.0 + (-0.5 * raw[0]).exp()));
}

#[test]
fn windows_line_ends_parse_the_same() {
    let crlf = SMALL.replace('\n', "\r\n");
    let a = LightGbmModel::from_model_text(SMALL).unwrap();
    let b = LightGbmModel::from_model_text(&crlf).unwrap();
    assert_eq!(a.raw_score(&rows()).unwrap(), b.raw_score(&rows()).unwrap());
}

#[test]
fn scoring_checks_its_input() {
    let m = LightGbmModel::from_model_text(SMALL).unwrap();
    let err = m.predict_proba(&Matrix::zeros(2, 3)).unwrap_err();
    assert!(
        matches!(err, MlError::Shape(_)) && err.to_string().contains("visits, channel"),
        "{err}"
    );
    let inf = Matrix::from_rows(&[[1.0, 1.0], [f64::INFINITY, 1.0]]).unwrap();
    assert!(matches!(
        m.predict_proba(&inf),
        Err(MlError::NonFinite { row: 1, col: 0, .. })
    ));
    assert!(m.predict_proba(&Matrix::zeros(0, 2)).unwrap().is_empty());
}

#[test]
fn renaming_features() {
    let m = LightGbmModel::from_model_text(SMALL).unwrap();
    let renamed = m
        .clone()
        .with_feature_names(vec!["a".into(), "b".into()])
        .unwrap();
    assert_eq!(renamed.feature_names(), ["a", "b"]);
    assert_eq!(renamed.model_text(), SMALL);
    for bad in [
        vec!["a".to_string()],
        vec!["a".into(), "a".into()],
        vec!["a".into(), String::new()],
    ] {
        let err = m.clone().with_feature_names(bad).unwrap_err();
        assert!(matches!(err, MlError::Shape(_)), "{err}");
    }
}

/// `(edit of SMALL, words the error message must contain)`.
fn malformed_cases() -> Vec<(String, Vec<&'static str>)> {
    let r = |from: &str, to: &str| {
        assert!(SMALL.contains(from), "{from}");
        SMALL.replacen(from, to, 1)
    };
    vec![
        (String::new(), vec!["empty"]),
        (
            "hello\n".into(),
            vec!["line 1", "not a LightGBM text model"],
        ),
        (
            r("num_class=1", "num_class=3"),
            vec!["line 3", "num_class", "multiclass"],
        ),
        (
            r("objective=binary sigmoid:1", "objective=regression"),
            vec!["line 7", "objective", "\"regression\""],
        ),
        (
            r(
                "objective=binary sigmoid:1",
                "objective=multiclass num_class:3",
            ),
            vec!["\"multiclass\""],
        ),
        (
            r("objective=binary sigmoid:1", "objective=lambdarank"),
            vec!["\"lambdarank\""],
        ),
        (r("objective=binary sigmoid:1\n", ""), vec!["objective"]),
        (r("sigmoid:1", "sigmoid:-2"), vec!["sigmoid"]),
        (r("version=v4", "version=v9"), vec!["version", "v9"]),
        (
            r("feature_names=visits channel", "feature_names=visits"),
            vec!["line 8", "feature_names", "1 names"],
        ),
        (
            r("max_feature_idx=1", "max_feature_idx=x"),
            vec!["max_feature_idx"],
        ),
        (
            r("threshold=1.5 0", "threshold=1.5 zero"),
            vec!["line 17", "key threshold", "value 2"],
        ),
        (
            r("threshold=1.5 0", "threshold=1.5"),
            vec!["key threshold", "1 values, expected 2"],
        ),
        (
            r("leaf_value=0.10000000000000001 ", "leaf_value="),
            vec!["key leaf_value", "expected 3"],
        ),
        (
            r("split_feature=0 1", "split_feature=0 7"),
            vec!["split_feature", "feature 7"],
        ),
        (
            r("left_child=-1 -2", "left_child=-1 -9"),
            vec!["left_child", "-9"],
        ),
        (
            r("left_child=-1 -2", "left_child=0 -2"),
            vec!["reached twice"],
        ),
        (
            r("left_child=-1 -2", "left_child=-1 -1"),
            vec!["leaf 0 is reached twice"],
        ),
        (
            r("decision_type=10 1", "decision_type=12 1"),
            vec!["decision_type 12"],
        ),
        (
            r("threshold=1.5 0", "threshold=1.5 4"),
            vec!["category set 4"],
        ),
        (
            r("cat_boundaries=0 1", "cat_boundaries=0 2"),
            vec!["cat_boundaries"],
        ),
        (r("is_linear=0", "is_linear=1"), vec!["linear trees"]),
        (r("num_leaves=3", "num_leaves=0"), vec!["num_leaves"]),
        (r("num_leaves=3\n", ""), vec!["Tree=0 has no num_leaves"]),
        (r("Tree=1", "Tree=2"), vec!["expected `Tree=1`"]),
        (
            r("tree_sizes=300 200", "tree_sizes=300"),
            vec!["tree_sizes", "lists 1 trees"],
        ),
        (
            r("shrinkage=1\n", "shrinkage=1\nshrinkage=1\n"),
            vec!["appears twice"],
        ),
        (
            SMALL[..SMALL.find("end of trees").unwrap()].to_string(),
            vec!["truncated", "after 2 trees"],
        ),
        (r("\nTree=0", "\nend of trees\nTree=0"), vec!["no trees"]),
    ]
}

#[test]
fn malformed_files_are_clear_errors() {
    for (text, words) in malformed_cases() {
        let err = LightGbmModel::from_model_text(&text).unwrap_err();
        assert!(matches!(err, MlError::ModelFile { .. }), "{err}");
        let msg = err.to_string();
        for w in &words {
            assert!(msg.contains(w), "{msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn every_truncation_is_an_error_and_none_panics() {
    let end = SMALL.find("end of trees").unwrap() + "end of trees".len();
    for cut in (0..end).filter(|&i| SMALL.is_char_boundary(i)) {
        let prefix = &SMALL[..cut];
        assert!(
            LightGbmModel::from_model_text(prefix).is_err(),
            "a prefix of {cut} bytes parsed"
        );
    }
    // Past `end of trees` only the parameters are lost: the trees are whole.
    let m = LightGbmModel::from_model_text(&SMALL[..end]).unwrap();
    assert_eq!(m.n_trees(), 2);
}

#[test]
fn mutated_files_never_panic() {
    let replacements = [
        "-1",
        "0",
        "99",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "x",
        "",
        "2147483648",
        "-2147483649",
        "1.5",
        "18446744073709551616",
    ];
    let x = rows();
    let mut parsed = 0;
    // Each number of each line, replaced by each value.
    for (i, line) in SMALL.lines().enumerate() {
        let Some((key, values)) = line.split_once('=') else {
            continue;
        };
        let tokens: Vec<&str> = values.split(' ').collect();
        for t in 0..tokens.len() {
            for rep in replacements {
                let mut edited = tokens.clone();
                edited[t] = rep;
                let new_line = format!("{key}={}", edited.join(" "));
                let text: Vec<String> = SMALL
                    .lines()
                    .enumerate()
                    .map(|(j, l)| {
                        if j == i {
                            new_line.clone()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect();
                if let Ok(m) = LightGbmModel::from_model_text(&text.join("\n")) {
                    parsed += 1;
                    let p = m.predict_proba(&x).unwrap();
                    assert!(
                        p.iter().all(|p| (0.0..=1.0).contains(p)),
                        "{new_line}: {p:?}"
                    );
                }
            }
        }
    }
    assert!(parsed > 0);
}

#[test]
fn artifact_round_trip_and_payload_errors() {
    let m = LightGbmModel::from_model_text(SMALL)
        .unwrap()
        .with_feature_names(vec!["v".into(), "c".into()])
        .unwrap();
    let a = m.to_artifact().unwrap();
    assert_eq!(a.payload["model_text"], SMALL);
    let back = LightGbmModel::from_artifact(&Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap())
        .unwrap();
    assert_eq!(back.feature_names(), ["v", "c"]);
    assert_eq!(back.model_text(), SMALL);

    let mut bad = a.clone();
    bad.feature_names.pop();
    let err = LightGbmModel::from_artifact(&bad).unwrap_err();
    assert!(matches!(err, MlError::Artifact(_)), "{err}");
    let mut bad = a.clone();
    bad.payload = serde_json::json!({"model_text": &SMALL[..200]});
    let err = LightGbmModel::from_artifact(&bad).unwrap_err().to_string();
    assert!(
        err.contains("lightgbm payload") && err.contains("LightGBM model"),
        "{err}"
    );
    let mut bad = a;
    bad.payload = serde_json::json!({"text": SMALL});
    assert!(LightGbmModel::from_artifact(&bad).is_err());
}
