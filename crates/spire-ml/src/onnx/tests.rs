#![allow(clippy::unwrap_used)]

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

use super::*;

const FLOAT: i32 = 1;
const DOUBLE: i32 = 11;
const INT64: i32 = 7;

fn value(name: &str, elem: i32, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: d.map(dimension::Value::DimValue),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: format!("{op}_{}", outputs[0]),
        op_type: op.into(),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[i64], elem: i32, values: &[f64]) -> pb::TensorProto {
    let mut t = pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: elem,
        ..Default::default()
    };
    if elem == DOUBLE {
        t.double_data = values.to_vec();
    } else {
        t.float_data = values.iter().map(|&v| v as f32).collect();
    }
    t
}

fn model(graph: pb::GraphProto) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `p = sigmoid(w · [a, b] + c)` over two double inputs of one column each, with a `[N, 1]`
/// float output, the shape a Keras or PyTorch network with a sigmoid unit exports. With
/// `sigmoid = false` the output is the (double) logit.
fn two_input_graph(sigmoid: bool) -> Vec<u8> {
    let mut nodes = vec![
        node("Concat", &["a", "b"], &["ab"]),
        node("MatMul", &["ab", "w"], &["z0"]),
        node("Add", &["z0", "c"], &["z"]),
    ];
    nodes[0].attribute.push(pb::AttributeProto {
        name: "axis".into(),
        r#type: 2,
        i: 1,
        ..Default::default()
    });
    // tract 0.23 runs Sigmoid on float only, so the logit is cast first.
    let (out, out_elem) = if sigmoid {
        let mut cast = node("Cast", &["z"], &["zf"]);
        cast.attribute.push(pb::AttributeProto {
            name: "to".into(),
            r#type: 2,
            i: FLOAT.into(),
            ..Default::default()
        });
        nodes.extend([cast, node("Sigmoid", &["zf"], &["p"])]);
        ("p", FLOAT)
    } else {
        ("z", DOUBLE)
    };
    model(pb::GraphProto {
        node: nodes,
        initializer: vec![
            tensor("w", &[2, 1], DOUBLE, &[0.5, -2.0]),
            tensor("c", &[1], DOUBLE, &[0.25]),
        ],
        input: vec![
            value("a", DOUBLE, &[None, Some(1)]),
            value("b", DOUBLE, &[None, Some(1)]),
        ],
        output: vec![value(out, out_elem, &[None, Some(1)])],
        ..Default::default()
    })
}

#[test]
fn per_column_double_inputs_take_their_names_from_the_graph() {
    let m = OnnxModel::from_bytes(&two_input_graph(true), &OnnxOptions::default()).unwrap();
    assert_eq!(m.feature_names(), ["a", "b"]);
    assert_eq!(m.input_names(), ["a", "b"]);
    assert_eq!(m.output_name(), "p");
    let x = Matrix::from_rows(&[[1.0, 0.0], [0.0, 1.0], [3.0, -1.5]]).unwrap();
    let p = m.predict_proba(&x).unwrap();
    for (row, p) in x.rows().zip(&p) {
        let z = 0.5 * row[0] - 2.0 * row[1] + 0.25;
        let want = 1.0 / (1.0 + (-z).exp());
        assert!((p - want).abs() < 1e-7, "{p} vs {want}");
    }
    // Renaming the features keeps the graph's inputs.
    let renamed = OnnxModel::from_bytes(
        &two_input_graph(true),
        &OnnxOptions {
            feature_names: Some(vec!["visits".into(), "spend".into()]),
            output: None,
        },
    )
    .unwrap();
    assert_eq!(renamed.feature_names(), ["visits", "spend"]);
    assert_eq!(renamed.predict_proba(&x).unwrap(), p);
}

#[test]
fn operators_tract_cannot_evaluate_fail_at_load() {
    // Sigmoid on doubles: tract 0.23 parses it but cannot evaluate it; the probe row at load
    // time turns that into an error naming the operator.
    let bytes = model(pb::GraphProto {
        node: vec![node("Sigmoid", &["x"], &["p"])],
        input: vec![value("x", DOUBLE, &[None, Some(1)])],
        output: vec![value("p", DOUBLE, &[None, Some(1)])],
        ..Default::default()
    });
    let err = OnnxModel::from_bytes(&bytes, &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("Sigmoid") && err.contains("F64"), "{err}");
}

#[test]
fn logits_are_rejected_when_scored() {
    let m = OnnxModel::from_bytes(&two_input_graph(false), &OnnxOptions::default()).unwrap();
    let x = Matrix::from_rows(&[[0.0, 0.0], [10.0, 0.0]]).unwrap();
    let err = m.predict_proba(&x).unwrap_err();
    assert!(
        matches!(err, MlError::OutOfRange { row: 1, .. }) && err.to_string().contains("logits"),
        "{err}"
    );
}

#[test]
fn multiclass_outputs_are_rejected_at_load() {
    let bytes = model(pb::GraphProto {
        node: vec![
            node("MatMul", &["x", "w"], &["z"]),
            node("Softmax", &["z"], &["p"]),
        ],
        initializer: vec![tensor("w", &[2, 3], FLOAT, &[1.0, 0.0, 0.5, 0.0, 1.0, 0.5])],
        input: vec![value("x", FLOAT, &[None, Some(2)])],
        output: vec![value("p", FLOAT, &[None, Some(3)])],
        ..Default::default()
    });
    let opts = OnnxOptions {
        feature_names: Some(vec!["u".into(), "v".into()]),
        output: None,
    };
    let err = OnnxModel::from_bytes(&bytes, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[1, 3]") && err.contains("binary"), "{err}");
}

#[test]
fn unsupported_operators_and_inputs_are_named() {
    let graph = |op: &str, input_elem: i32, dims: &[Option<i64>]| {
        model(pb::GraphProto {
            node: vec![node(op, &["x"], &["p"])],
            input: vec![value("x", input_elem, dims)],
            output: vec![value("p", FLOAT, &[None, Some(1)])],
            ..Default::default()
        })
    };
    let opts = OnnxOptions {
        feature_names: Some(vec!["u".into()]),
        output: None,
    };
    let err = OnnxModel::from_bytes(&graph("NoSuchOp", FLOAT, &[None, Some(1)]), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("NoSuchOp"), "{err}");
    let err = OnnxModel::from_bytes(&graph("Sigmoid", INT64, &[None, Some(1)]), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input \"x\"") && err.contains("int64"),
        "{err}"
    );
    let err = OnnxModel::from_bytes(&graph("Sigmoid", FLOAT, &[None]), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 dimensions"), "{err}");
    // An open width is sized by the feature names; without them it is an error.
    let open = graph("Sigmoid", FLOAT, &[None, None]);
    assert!(OnnxModel::from_bytes(&open, &opts).is_ok());
    let err = OnnxModel::from_bytes(&open, &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no fixed number of columns"), "{err}");
}

#[test]
fn sequence_outputs_ask_for_zipmap_false() {
    let mut zipped = value("output_probability", FLOAT, &[]);
    zipped.r#type = Some(pb::TypeProto::default());
    let bytes = model(pb::GraphProto {
        node: vec![node("Sigmoid", &["x"], &["output_probability"])],
        input: vec![value("x", FLOAT, &[None, Some(1)])],
        output: vec![value("output_label", INT64, &[None]), zipped],
        ..Default::default()
    });
    let err = OnnxModel::from_bytes(&bytes, &OnnxOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zipmap") && err.contains("output_label (tensor of int64)"),
        "{err}"
    );
}

#[test]
fn scaler_is_rewritten_and_other_outputs_pruned() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/byom/onnx_mlp.onnx"
    );
    let bytes = std::fs::read(path).unwrap();
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    let ops = |p: &pb::ModelProto| -> Vec<String> {
        p.graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.clone())
            .collect()
    };
    let before = ops(&proto);
    assert!(before.contains(&"Scaler".to_string()) && before.contains(&"ArgMax".to_string()));
    let prepared = graph::prepare(proto, None, Some(10)).unwrap();
    let after = ops(&prepared.proto);
    assert!(!after.contains(&"Scaler".to_string()), "{after:?}");
    assert!(!after.contains(&"ArgMax".to_string()), "{after:?}");
    assert_eq!(&after[..3], ["Cast", "Sub", "Mul"]);
    assert_eq!(prepared.output, "probabilities");
    assert_eq!(prepared.inputs.len(), 1);
    assert_eq!(prepared.inputs[0].width, 10);
    assert_eq!(prepared.inputs[0].elem, ElemType::F32);
}
