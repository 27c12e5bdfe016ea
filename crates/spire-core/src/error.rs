//! The error kinds every Spire crate maps its errors onto.
//!
//! Each library crate has one `thiserror` enum of its own; each of those enums exposes
//! `kind() -> ErrorKind` so the server can map errors to HTTP status codes and the CLI to exit
//! codes in one exhaustive `match` each.

use std::fmt;

/// The coarse category of an error, shared by all Spire crates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent something invalid: bad config, bad spec, bad record, bad argument.
    InvalidInput,
    /// A named thing (table, run, model, segment, user) does not exist.
    NotFound,
    /// The thing being created exists already.
    AlreadyExists,
    /// A concurrent change won: retry after re-reading.
    Conflict,
    /// A backend (disk, database, broker) is not reachable or failed transiently.
    Unavailable,
    /// A bug or an invariant broken inside Spire.
    Internal,
}

impl ErrorKind {
    /// The process exit code the CLI uses for this kind (2 for bad input, as `clap` does).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 4,
            ErrorKind::Unavailable => 5,
            ErrorKind::Internal => 1,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}
