//! Reading MLflow requests: GET parameters come in the query string, other methods send a
//! JSON body; both are merged into one [`Params`] object read with typed getters that
//! answer MLflow's `INVALID_PARAMETER_VALUE` errors.

use axum::body::Body;
use axum::extract::{FromRequest, Query, Request};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

/// The largest JSON request body accepted (a full `log-batch` is well under 1 MiB).
pub const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// A request's parameters: the query string merged with the JSON body (the body wins).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Params, ApiError> {
        let (parts, body) = req.into_parts();
        let mut map = Map::new();
        let Query(pairs): Query<Vec<(String, String)>> = Query::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::invalid(format!("malformed query string: {e}")))?;
        for (key, value) in pairs {
            match map.get_mut(&key) {
                Some(Value::Array(items)) => items.push(Value::String(value)),
                Some(first) => {
                    let first = first.take();
                    map.insert(key, Value::Array(vec![first, Value::String(value)]));
                }
                None => {
                    map.insert(key, Value::String(value));
                }
            }
        }
        let bytes = read_body(body, MAX_JSON_BODY).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::invalid(format!("malformed JSON request body: {e}")))?;
            match value {
                Value::Object(body) => map.extend(body),
                Value::Null => {}
                other => {
                    return Err(ApiError::invalid(format!(
                        "the request body must be a JSON object, not {}",
                        kind(&other)
                    )))
                }
            }
        }
        Ok(Params(map))
    }
}

/// Reads a whole body of at most `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        ApiError::new(
            ErrorCode::RequestLimitExceeded,
            format!("could not read the request body (at most {limit} bytes are accepted): {e}"),
        )
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "Missing value for required parameter '{name}'. See the API docs for more information \
         about request parameters."
    ))
}

fn wrong(name: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value {got} for parameter '{name}': expected {expected}, got {}",
        kind(got)
    ))
}

impl Params {
    /// The raw value of `name`, if present and not null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An optional string parameter (numbers are accepted and printed).
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(wrong(name, "a string", other)),
            },
            Some(other) => Err(wrong(name, "a string", other)),
        }
    }

    /// A required, non-empty string parameter.
    pub fn str(&self, name: &str) -> Result<String, ApiError> {
        match self.opt_str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(missing(name)),
        }
    }

    /// A string that may be absent: an empty string when it is.
    pub fn str_or_empty(&self, name: &str) -> Result<String, ApiError> {
        Ok(self.opt_str(name)?.unwrap_or_default())
    }

    /// The run id, sent as `run_id` or (older clients) `run_uuid`.
    pub fn run_id(&self) -> Result<String, ApiError> {
        match self.opt_str("run_id")?.filter(|s| !s.is_empty()) {
            Some(id) => Ok(id),
            None => self.str("run_uuid").map_err(|_| missing("run_id")),
        }
    }

    /// An optional 64-bit integer, sent as a JSON number or a decimal string.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| wrong(name, "an integer", &Value::Number(n.clone()))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| wrong(name, "an integer", &Value::String(s.clone()))),
            Some(other) => Err(wrong(name, "an integer", other)),
        }
    }

    /// A required double; `"NaN"`, `"Infinity"` and `"-Infinity"` (protobuf JSON) are
    /// accepted, as are numbers and decimal strings.
    pub fn f64(&self, name: &str) -> Result<f64, ApiError> {
        let value = self.get(name).ok_or_else(|| missing(name))?;
        parse_double(value).ok_or_else(|| wrong(name, "a number", value))
    }

    /// An optional list of strings (a single string counts as a list of one).
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(wrong(name, "a list of strings", other)),
                })
                .collect(),
            Some(other) => Err(wrong(name, "a list of strings", other)),
        }
    }

    /// A list of objects (e.g. `metrics` of `log-batch`), each wrapped as [`Params`].
    pub fn objects(&self, name: &str) -> Result<Vec<Params>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(map) => Ok(Params(map.clone())),
                    other => Err(wrong(name, "a list of objects", other)),
                })
                .collect(),
            Some(other) => Err(wrong(name, "a list of objects", other)),
        }
    }

    /// `[{"key": …, "value": …}, …]` pairs (tags, params), in order; each key required.
    pub fn key_values(&self, name: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.objects(name)?
            .iter()
            .map(|kv| Ok((kv.str("key")?, kv.str_or_empty("value")?)))
            .collect()
    }
}

/// A protobuf-JSON double: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"` or a decimal
/// string.
pub fn parse_double(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.trim().parse().ok(),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Params {
        match v {
            Value::Object(m) => Params(m),
            _ => Params::default(),
        }
    }

    #[test]
    fn getters_accept_protobuf_json_spellings() {
        let p = params(json!({
            "a": "x", "n": "42", "m": 7, "nan": "NaN", "inf": "Infinity", "ninf": "-Infinity",
            "list": ["1", 2], "tags": [{"key": "k", "value": "v"}], "run_uuid": "r"
        }));
        assert_eq!(p.str("a").unwrap(), "x");
        assert_eq!(p.opt_i64("n").unwrap(), Some(42));
        assert_eq!(p.opt_i64("m").unwrap(), Some(7));
        assert!(p.f64("nan").unwrap().is_nan());
        assert_eq!(p.f64("inf").unwrap(), f64::INFINITY);
        assert_eq!(p.f64("ninf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(p.str_list("list").unwrap(), ["1", "2"]);
        assert_eq!(p.key_values("tags").unwrap(), [("k".into(), "v".into())]);
        assert_eq!(p.run_id().unwrap(), "r");
    }

    #[test]
    fn missing_and_mistyped_parameters_are_invalid_parameter_values() {
        let p = params(json!({"a": {"x": 1}, "n": "4x", "empty": ""}));
        for err in [
            p.str("nope").unwrap_err(),
            p.str("empty").unwrap_err(),
            p.str("a").unwrap_err(),
            p.opt_i64("n").unwrap_err(),
            p.f64("a").unwrap_err(),
            p.run_id().unwrap_err(),
        ] {
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{err:?}");
        }
        assert!(p.str("nope").unwrap_err().message.contains("'nope'"));
    }
}
