//! Prepares an ONNX graph for tract: picks the probability output and prunes what only other
//! outputs need, rewrites operators tract lacks into standard ones, and fixes the input
//! shapes to `[N, width]` with a symbolic batch size `N`.

use std::collections::HashSet;

use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

use crate::error::MlError;

const FORMAT: &str = "ONNX";

/// ONNX `TensorProto.DataType` codes used here.
const FLOAT: i32 = 1;
const DOUBLE: i32 = 11;
/// ONNX `AttributeProto.AttributeType.INT`.
const ATTRIBUTE_INT: i32 = 2;

/// The element type of a graph input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ElemType {
    /// `tensor(float)`: cells are rounded to `f32`.
    F32,
    /// `tensor(double)`.
    F64,
}

/// A graph input of shape `[N, width]`; its columns are consecutive features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Input {
    /// The input's name in the graph.
    pub name: String,
    /// Its element type.
    pub elem: ElemType,
    /// Its number of columns.
    pub width: usize,
}

/// A graph ready for tract, with what scoring needs to feed and read it.
pub(crate) struct Prepared {
    /// The rewritten model.
    pub proto: pb::ModelProto,
    /// The inputs, in graph order.
    pub inputs: Vec<Input>,
    /// The name of the one output kept.
    pub output: String,
}

fn error(location: Option<String>, message: impl Into<String>) -> MlError {
    MlError::model_file(FORMAT, location, message)
}

/// Prepares `proto`. `output` names the probability output (default: the first output that
/// is a float or double tensor); `n_features` (the number of feature names the caller gave)
/// sizes a single input whose width the graph leaves open.
pub(crate) fn prepare(
    mut proto: pb::ModelProto,
    output: Option<&str>,
    n_features: Option<usize>,
) -> Result<Prepared, MlError> {
    let has_default_opset = proto
        .opset_import
        .iter()
        .any(|o| o.domain.is_empty() || o.domain == "ai.onnx");
    let Some(graph) = proto.graph.as_mut() else {
        return Err(error(None, "the file has no graph"));
    };
    let output = pick_output(graph, output)?;
    graph.output.retain(|o| o.name == output);
    let rewritten = rewrite_scalers(graph)?;
    prune(graph);
    let inputs = fix_inputs(graph, n_features)?;
    if rewritten && !has_default_opset {
        proto.opset_import.push(pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        });
    }
    Ok(Prepared {
        proto,
        inputs,
        output,
    })
}

/// `(elem_type, shape)` of a tensor value, `None` for other types (sequences, maps).
fn tensor_type(v: &pb::ValueInfoProto) -> Option<(i32, Option<&pb::TensorShapeProto>)> {
    // tract's ONNX schema knows only tensor types: sequences and maps (ZipMap's output)
    // decode without a value.
    let pb::type_proto::Value::TensorType(t) = v.r#type.as_ref()?.value.as_ref()?;
    Some((t.elem_type, t.shape.as_ref()))
}

fn describe(v: &pb::ValueInfoProto) -> String {
    match tensor_type(v) {
        Some((t, _)) => format!("{} (tensor of {})", v.name, elem_name(t)),
        None => format!("{} (not a tensor)", v.name),
    }
}

fn elem_name(code: i32) -> &'static str {
    match code {
        1 => "float",
        2 => "uint8",
        3 => "int8",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        _ => "another type",
    }
}

fn pick_output(graph: &pb::GraphProto, wanted: Option<&str>) -> Result<String, MlError> {
    let listing = || {
        graph
            .output
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let is_float = |v: &pb::ValueInfoProto| matches!(tensor_type(v), Some((t, _)) if t == FLOAT || t == DOUBLE);
    let chosen = match wanted {
        Some(name) => graph
            .output
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| {
                error(
                    None,
                    format!(
                        "the graph has no output {name:?}; its outputs: {}",
                        listing()
                    ),
                )
            })?,
        None => graph.output.iter().find(|o| is_float(o)).ok_or_else(|| {
            error(
                None,
                format!(
                    "no output is a float or double tensor of probabilities (outputs: {}); \
                     a scikit-learn classifier must be exported without ZipMap: \
                     to_onnx(model, X, options={{\"zipmap\": False}})",
                    listing()
                ),
            )
        })?,
    };
    if !is_float(chosen) {
        return Err(error(
            None,
            format!(
                "output {} is not a float or double tensor of probabilities",
                describe(chosen)
            ),
        ));
    }
    Ok(chosen.name.clone())
}

fn floats_attr(node: &pb::NodeProto, name: &str, default: f32) -> Vec<f32> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.floats.clone())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| vec![default])
}

/// Rewrites each ONNX-ML `Scaler` (`Y = (X - offset) * scale`, what scikit-learn's
/// `StandardScaler` exports to; tract 0.23 has no such operator) into `Cast` to float,
/// `Sub` and `Mul`. Returns whether any was rewritten.
fn rewrite_scalers(graph: &mut pb::GraphProto) -> Result<bool, MlError> {
    let mut rewritten = false;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for (i, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.op_type != "Scaler" || node.domain != "ai.onnx.ml" {
            nodes.push(node);
            continue;
        }
        let ([x], [y]) = (node.input.as_slice(), node.output.as_slice()) else {
            return Err(error(
                Some(format!("node {:?}", node.name)),
                "a Scaler needs one input and one output",
            ));
        };
        let p = format!("spire_scaler_{i}");
        for (suffix, values) in [
            ("offset", floats_attr(&node, "offset", 0.0)),
            ("scale", floats_attr(&node, "scale", 1.0)),
        ] {
            graph.initializer.push(pb::TensorProto {
                dims: vec![values.len() as i64],
                data_type: FLOAT,
                float_data: values,
                name: format!("{p}_{suffix}"),
                ..Default::default()
            });
        }
        let cast = pb::NodeProto {
            input: vec![x.clone()],
            output: vec![format!("{p}_x")],
            name: format!("{p}_cast"),
            op_type: "Cast".into(),
            attribute: vec![pb::AttributeProto {
                name: "to".into(),
                r#type: ATTRIBUTE_INT,
                i: FLOAT.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let sub = pb::NodeProto {
            input: vec![format!("{p}_x"), format!("{p}_offset")],
            output: vec![format!("{p}_centered")],
            name: format!("{p}_sub"),
            op_type: "Sub".into(),
            ..Default::default()
        };
        let mul = pb::NodeProto {
            input: vec![format!("{p}_centered"), format!("{p}_scale")],
            output: vec![y.clone()],
            name: format!("{p}_mul"),
            op_type: "Mul".into(),
            ..Default::default()
        };
        nodes.extend([cast, sub, mul]);
        rewritten = true;
    }
    graph.node = nodes;
    Ok(rewritten)
}

/// Drops the nodes the kept output does not depend on (e.g. scikit-learn's `label` branch),
/// so operators only they use need not be supported. Nodes are in topological order, as
/// ONNX requires; graphs with subgraphs (`If`, `Loop`) are left whole.
fn prune(graph: &mut pb::GraphProto) {
    let has_subgraphs = graph.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    });
    if has_subgraphs {
        return;
    }
    let mut needed: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut keep = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
        }
    }
    let mut keep = keep.into_iter();
    graph.node.retain(|_| keep.next().unwrap_or(true));
}

/// Reads the inputs (graph inputs that are not initializers) and sets their shapes to
/// `[N, width]`.
fn fix_inputs(
    graph: &mut pb::GraphProto,
    n_features: Option<usize>,
) -> Result<Vec<Input>, MlError> {
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let feeds: Vec<usize> = (0..graph.input.len())
        .filter(|&i| !initializers.contains(graph.input[i].name.as_str()))
        .collect();
    if feeds.is_empty() {
        return Err(error(None, "the graph has no inputs"));
    }
    let single = feeds.len() == 1;
    let mut inputs = Vec::with_capacity(feeds.len());
    for i in feeds {
        let v = &mut graph.input[i];
        let at = Some(format!("input {:?}", v.name));
        let Some((code, shape)) = tensor_type(v) else {
            return Err(error(at, "is not a tensor"));
        };
        let elem = match code {
            FLOAT => ElemType::F32,
            DOUBLE => ElemType::F64,
            other => {
                return Err(error(
                    at,
                    format!(
                        "is a tensor of {}; Spire feeds features as float or double",
                        elem_name(other)
                    ),
                ))
            }
        };
        let dims = shape.map(|s| s.dim.as_slice()).unwrap_or_default();
        if dims.len() != 2 {
            return Err(error(
                at,
                format!(
                    "has {} dimensions; Spire feeds inputs of shape [rows, columns]",
                    dims.len()
                ),
            ));
        }
        let width = match (&dims[1].value, n_features) {
            (Some(dimension::Value::DimValue(w)), _) if *w > 0 => *w as usize,
            (_, Some(n)) if single => n,
            _ => {
                return Err(error(
                    at,
                    "has no fixed number of columns; give the feature names",
                ))
            }
        };
        let name = v.name.clone();
        if let Some(pb::type_proto::Value::TensorType(t)) =
            v.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.shape = Some(pb::TensorShapeProto {
                dim: vec![
                    Dimension {
                        value: Some(dimension::Value::DimParam("N".into())),
                        ..Default::default()
                    },
                    Dimension {
                        value: Some(dimension::Value::DimValue(width as i64)),
                        ..Default::default()
                    },
                ],
            });
        }
        inputs.push(Input { name, elem, width });
    }
    Ok(inputs)
}
