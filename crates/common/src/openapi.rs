//! What the three services' OpenAPI documents share, and the routes every service serves the same
//! way: `GET /healthz`, `GET /openapi.json` ([`operations_router`]), `GET /metrics` (served by
//! [`crate::observability`]), the JSON 404 and 405 answers ([`not_found`],
//! [`method_not_allowed`]) and the answers of the input limits that sit in front of every route.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::ToSchema;

use crate::observability::{MAX_BODY_BYTES, MAX_URI_BYTES};
use oauth::{ErrorBody, ErrorCode};

/// The body of `/healthz` and `/readyz`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (the process serves) or `ready` (its dependencies answer too).
    #[schema(example = "ok")]
    pub status: &'static str,
}

impl Health {
    pub const OK: Self = Self { status: "ok" };
    pub const READY: Self = Self { status: "ready" };
}

/// `GET /healthz` and `GET /openapi.json` serving `document` (built once, here, rather than on
/// every request), to be merged into a service's router.
pub fn operations_router<S: Clone + Send + Sync + 'static>(document: OpenApi) -> Router<S> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .with_state(Arc::new(document))
}

/// Liveness: the process serves.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "`ok`.", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health::OK)
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service.", body = Object))
)]
async fn openapi(State(document): State<Arc<OpenApi>>) -> Response {
    Json(document.as_ref()).into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, openapi))]
struct OperationsApi;

/// The fallback answer for a path no route serves.
pub async fn not_found() -> (StatusCode, Json<ErrorBody>) {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody::new(ErrorCode::NotFound, "no such endpoint")),
    )
}

/// The answer for a method a route does not serve (axum adds the `Allow` header).
pub async fn method_not_allowed() -> (StatusCode, Json<ErrorBody>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "method not allowed on this endpoint",
        )),
    )
}

/// Completes a service's generated document with what every service serves the same way:
/// `GET /healthz`, `GET /openapi.json`, `GET /metrics` and the limits' answers — 414 and 431 on every operation (the middleware and
/// the HTTP server refuse before routing), 413 and 408 on every operation taking a body.
pub fn finish(mut api: OpenApi) -> OpenApi {
    api.merge(<OperationsApi as utoipa::OpenApi>::openapi());
    api.merge(<crate::observability::MetricsApi as utoipa::OpenApi>::openapi());
    let components = api.components.get_or_insert_with(Default::default);
    components
        .schemas
        .entry("ErrorBody".to_owned())
        .or_insert_with(<ErrorBody as utoipa::PartialSchema>::schema);
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_limit_responses(operation);
        }
    }
    api
}

fn add_limit_responses(operation: &mut Operation) {
    let error_body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build()
    };
    let responses = &mut operation.responses.responses;
    responses.entry("414".to_owned()).or_insert_with(|| {
        ResponseBuilder::new()
            .description(format!(
                "The request target is longer than {MAX_URI_BYTES} bytes."
            ))
            .content("application/json", error_body())
            .build()
            .into()
    });
    // hyper answers an over-long request head itself, without a body.
    responses.entry("431".to_owned()).or_insert_with(|| {
        ResponseBuilder::new()
            .description("The request head is larger than the server accepts.")
            .build()
            .into()
    });
    if operation.request_body.is_some() {
        let body_limits = [
            (
                "413",
                format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            ),
            (
                "408",
                "The request body did not arrive within `BODY_TIMEOUT_SECONDS` of its head; the \
                 connection is closed."
                    .to_owned(),
            ),
        ];
        for (status, description) in body_limits {
            responses.entry(status.to_owned()).or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", error_body())
                    .build()
                    .into()
            });
        }
    }
}

/// Every `(method, path)` pair the document describes, upper-case method first: what the route
/// coverage tests compare against the routers.
pub fn operations(api: &OpenApi) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for (path, item) in &api.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        for (method, present) in methods {
            if present {
                found.push((method, path.clone()));
            }
        }
    }
    found
}

/// The first argument of every `.route(` call in a router's source (a path literal without its
/// quotes, or the expression as written), for the route coverage tests: axum cannot list a
/// router's routes, so the tests read them where they are declared.
#[cfg(any(test, feature = "test-support"))]
pub fn routes_in_source(source: &str) -> Vec<String> {
    source
        .split(".route(")
        .skip(1)
        .filter_map(|call| call.split(',').next())
        .map(|first| first.trim().trim_matches('"').to_owned())
        .collect()
}

/// The route coverage check each service's API tests run against a served instance at `base`:
/// `/openapi.json` is OpenAPI 3.1 and describes exactly the `declared` routes (the expressions of
/// [`routes_in_source`], with non-literal ones already resolved) plus the routes of
/// [`operations_router`] and `/metrics`, and every
/// documented operation is routed (not the fallback's 404 nor a 405) and answers a status the
/// document lists for it. A route added without an annotated handler, or a documented path nobody
/// serves, fails here.
#[cfg(any(test, feature = "test-support"))]
pub async fn check_served_document(base: &str, declared: Vec<String>) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| err.to_string())?;
    let get = |url: String| http.get(url).send();
    let document: serde_json::Value = get(format!("{base}/openapi.json"))
        .await
        .map_err(|err| err.to_string())?
        .json()
        .await
        .map_err(|err| err.to_string())?;
    let version = document["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.1") {
        return Err(format!("OpenAPI version {version:?}, not 3.1"));
    }
    // Every schema reference resolves (utoipa does not check that a referenced type was listed).
    let schemas = &document["components"]["schemas"];
    let text = document.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        if schemas.get(name).is_none() {
            return Err(format!("unresolvable reference to the schema {name:?}"));
        }
    }
    let paths = document["paths"].as_object().ok_or("no paths")?;
    let common_routes = ["/healthz", "/openapi.json", "/metrics"].map(String::from);
    let mut expected: Vec<String> = declared.into_iter().chain(common_routes).collect();
    expected.sort();
    let mut documented: Vec<String> = paths.keys().cloned().collect();
    documented.sort();
    if documented != expected {
        return Err(format!(
            "documented paths {documented:?} differ from the routed ones {expected:?}"
        ));
    }
    for (path, item) in paths {
        for (method, operation) in item.as_object().ok_or("a path item is not an object")? {
            let method = http::Method::from_bytes(method.to_uppercase().as_bytes())
                .map_err(|err| err.to_string())?;
            let response = http
                .request(method.clone(), format!("{base}{path}"))
                .send()
                .await
                .map_err(|err| err.to_string())?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|err| err.to_string())?;
            if status == 405 || body.contains("no such endpoint") {
                return Err(format!(
                    "{method} {path} is documented but not routed: {status} {body}"
                ));
            }
            if operation["responses"].get(status.to_string()).is_none() {
                return Err(format!(
                    "{method} {path} answered {status}, which is not documented"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_from_the_source() {
        let source = "Router::new()\n    .route(\n        \"/a\",\n        get(a),\n    )\n    .route(Scope::X.path(), get(x))";
        assert_eq!(routes_in_source(source), ["/a", "Scope::X.path()"]);
    }
}
