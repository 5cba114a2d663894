//! The routes, each declared with its OpenAPI documentation, and their thin handlers: parse the
//! request, run the flow, answer.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use common::request_id::{self, RequestId};
use oauth::resource::{CurrentTime, EpochTime};
use oauth::{ErrorBody, Scope, UserName};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browser;
use crate::error::Error;
use crate::flow::Flow;
use crate::Webapp;

/// The service's own routes, each with its documentation.
pub(crate) fn openapi_router() -> OpenApiRouter<Webapp> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(current_time))
        .routes(routes!(epoch_time))
        .routes(routes!(browser::login_current_time))
        .routes(routes!(browser::login_epoch_time))
        .routes(routes!(browser::callback))
}

/// A `user` that cannot be served, by every route that takes one; documented once.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "`invalid_request`: the `user` parameter is repeated or invalid."
)]
#[expect(
    dead_code,
    reason = "documentation only: the answer itself is built by Error"
)]
pub(crate) struct UserRefused(ErrorBody);

/// How a flow's upstream calls fail, for both time endpoints; documented once.
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    reason = "documentation only: the answers themselves are built by Error"
)]
enum UpstreamFailed {
    #[response(
        status = 502,
        description = "An upstream refused or answered something unusable; `step` names which."
    )]
    Refused(ErrorBody),
    #[response(
        status = 503,
        description = "An upstream is unreachable or busy (`temporarily_unavailable`, with `step`; e.g. the authorization server's rate limit)."
    )]
    Unavailable(ErrorBody),
    #[response(
        status = 504,
        description = "An upstream did not answer in time (`temporarily_unavailable`, with `step`)."
    )]
    TimedOut(ErrorBody),
}

/// Runs the whole flow for scope `current_time` as `user`: authorization request, token request,
/// resource request; answers the resource server's body.
#[utoipa::path(
    get,
    path = "/current_time",
    tag = "webapp",
    params(("user" = Option<UserName>, Query, description = "The user (default: the configured one).")),
    responses(
        (status = 200, description = "The resource server's answer for this user, passed through.", body = CurrentTime),
        UserRefused,
        UpstreamFailed,
    )
)]
async fn current_time(
    State(flow): State<Arc<Flow>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    time_endpoint(&flow, Scope::CurrentTime, &request_id, query.as_deref()).await
}

/// Runs the whole flow for scope `epoch_time` as `user`: authorization request, token request,
/// resource request; answers the resource server's body.
#[utoipa::path(
    get,
    path = "/epoch_time",
    tag = "webapp",
    params(("user" = Option<UserName>, Query, description = "The user (default: the configured one).")),
    responses(
        (status = 200, description = "The resource server's answer for this user, passed through.", body = EpochTime),
        UserRefused,
        UpstreamFailed,
    )
)]
async fn epoch_time(
    State(flow): State<Arc<Flow>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    time_endpoint(&flow, Scope::EpochTime, &request_id, query.as_deref()).await
}

async fn time_endpoint(
    flow: &Flow,
    scope: Scope,
    request_id: &RequestId,
    query: Option<&str>,
) -> Result<Response, Error> {
    request_id::record_client(&flow.config().deployment.client_id);
    let user = user_from_query(query, &flow.config().default_user)?;
    request_id::record_user(&user);
    let body = flow.run(scope, &user, request_id).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The `user` of a time endpoint: the default when absent; when present, exactly once and a valid
/// [`UserName`] (the empty string included is refused).
pub(crate) fn user_from_query(query: Option<&str>, default: &UserName) -> Result<UserName, Error> {
    let mut users = oauth::form::parse(query.unwrap_or(""))
        .filter(|(name, _)| name == "user")
        .map(|(_, value)| value);
    let Some(raw) = users.next() else {
        return Ok(default.clone());
    };
    if users.next().is_some() {
        return Err(Error::InvalidRequest(
            "the user parameter is repeated".to_owned(),
        ));
    }
    UserName::parse(&raw).map_err(|err| Error::InvalidRequest(format!("invalid user: {err}")))
}

/// The document's info and components, to which [`openapi_router`] adds the operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "webapp",
        description = "The OAuth client: each time request runs a whole authorization code flow, \
                       by itself for a user's call, through the user's browser for a login."
    ),
    components(schemas(ErrorBody, UserName))
)]
struct ApiDoc;

#[cfg(test)]
mod tests {
    use common::api_error::ApiError;

    use super::*;

    fn user(query: Option<&str>) -> Result<String, String> {
        let default = UserName::parse("alice").unwrap();
        user_from_query(query, &default)
            .map(|u| u.as_str().to_owned())
            .map_err(|e| e.body().error_description)
    }

    #[test]
    fn the_user_defaults_and_is_validated() {
        assert_eq!(user(None), Ok("alice".to_owned()));
        assert_eq!(user(Some("")), Ok("alice".to_owned()));
        assert_eq!(user(Some("other=1")), Ok("alice".to_owned()));
        assert_eq!(user(Some("user=bob")), Ok("bob".to_owned()));
        assert_eq!(user(Some("user=b%40x.io")), Ok("b@x.io".to_owned()));
        for bad in [
            "user=",
            "user",
            "user=a+b",
            "user=a%2Fb",
            "user=bob&user=bob",
        ] {
            assert!(user(Some(bad)).is_err(), "{bad}");
        }
    }
}
