//! MLflow-style errors: `{"error_code": "...", "message": "..."}` with MLflow's HTTP status
//! for each code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use spire_core::ErrorKind;
use spire_registry::RegistryError;

/// The MLflow error codes Spire answers with (`databricks.proto`'s `ErrorCode` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A parameter is missing, malformed or contradicts what is stored (HTTP 400).
    InvalidParameterValue,
    /// The request itself is unusable (HTTP 400).
    BadRequest,
    /// The named experiment, run, model, version or artifact does not exist (HTTP 404).
    ResourceDoesNotExist,
    /// The thing being created exists already (HTTP 400, as MLflow answers).
    ResourceAlreadyExists,
    /// The request carries no valid token where one is needed (HTTP 401).
    Unauthenticated,
    /// The caller may not do this (HTTP 403): a read-only token writing, or moving the
    /// protected `champion` alias without an admin token.
    PermissionDenied,
    /// No such endpoint (HTTP 404).
    EndpointNotFound,
    /// The request body is larger than the server accepts (HTTP 413).
    RequestLimitExceeded,
    /// The database is busy or unreachable; retry (HTTP 503).
    TemporarilyUnavailable,
    /// A bug or broken invariant on the server (HTTP 500).
    InternalError,
}

impl ErrorCode {
    /// The code's name as MLflow spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            ErrorCode::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The HTTP status MLflow's server sends with this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::BadRequest
            | ErrorCode::ResourceAlreadyExists => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::RequestLimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered in MLflow's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The MLflow error code (decides the HTTP status).
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_PARAMETER_VALUE` with `message`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidParameterValue, message)
    }

    /// `RESOURCE_DOES_NOT_EXIST` with `message`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ResourceDoesNotExist, message)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let code = match e.kind() {
            ErrorKind::InvalidInput | ErrorKind::Conflict => ErrorCode::InvalidParameterValue,
            ErrorKind::NotFound => ErrorCode::ResourceDoesNotExist,
            ErrorKind::AlreadyExists => ErrorCode::ResourceAlreadyExists,
            ErrorKind::Unavailable => ErrorCode::TemporarilyUnavailable,
            ErrorKind::Internal => ErrorCode::InternalError,
        };
        if code == ErrorCode::InternalError {
            tracing::error!(error = ?e, "registry failure behind the MLflow API");
        }
        ApiError::new(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code.as_str(), "message": self.message});
        (self.code.status(), Json(body)).into_response()
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_kinds_map_to_mlflow_codes_and_statuses() {
        let cases = [
            (
                RegistryError::NotFound {
                    what: "run x".into(),
                },
                "RESOURCE_DOES_NOT_EXIST",
                404,
            ),
            (
                RegistryError::AlreadyExists { what: "e".into() },
                "RESOURCE_ALREADY_EXISTS",
                400,
            ),
            (
                RegistryError::Conflict {
                    what: "param".into(),
                },
                "INVALID_PARAMETER_VALUE",
                400,
            ),
            (
                RegistryError::InvalidInput("bad".into()),
                "INVALID_PARAMETER_VALUE",
                400,
            ),
        ];
        for (err, code, status) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.code.as_str(), code);
            assert_eq!(api.code.status().as_u16(), status);
        }
        assert_eq!(ErrorCode::PermissionDenied.status().as_u16(), 403);
    }
}
