use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// The JSON error body every service answers with: the RFC 6749 §5.2 shape, plus the failed step
/// when the webapp reports an upstream failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    #[schema(inline, example = "invalid_request")]
    pub error: ErrorCode,
    pub error_description: String,
    /// The webapp only: the step of the flow that failed (`authorize`, `token`, `resource`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl ErrorBody {
    pub fn new(error: ErrorCode, error_description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: error_description.into(),
            step: None,
        }
    }
}
