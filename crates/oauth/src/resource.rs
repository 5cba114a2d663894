//! The resource server's answers: the contract between it and the webapp, which checks each answer
//! against it before passing it on to the user.

use serde::{Deserialize, Serialize};

use crate::UserName;

/// `GET /current_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrentTime {
    /// RFC 3339, UTC, whole seconds.
    #[schema(example = "2026-11-28T15:04:05Z")]
    pub current_time: String,
    /// The user the access token was issued for.
    pub user: UserName,
}

/// `GET /epoch_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EpochTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub epoch_time: u64,
    /// The user the access token was issued for.
    pub user: UserName,
}
