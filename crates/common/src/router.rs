//! A service's whole HTTP surface, put together the same way for all three: its own routes, each
//! declared with its `#[utoipa::path]` (utoipa-axum's `routes!`, so that a route cannot go
//! undocumented), the routes every service serves alike (`GET /healthz`, `GET /openapi.json`,
//! `GET /metrics`), the JSON 404 and 405 answers and the middleware stack of
//! [`crate::observability`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::observability::{self, Observability};
use crate::openapi::{finish, method_not_allowed, not_found, Health};

/// The router a service serves: its `routes` (their state applied) and the common ones, with the
/// fallbacks, in the middleware stack. `/openapi.json` serves the document the routes collected,
/// completed by [`finish`].
pub fn service_router(routes: OpenApiRouter, observability: &Observability) -> Router {
    let metrics = OpenApiRouter::default()
        .routes(routes!(observability::metrics))
        .with_state(observability.registry().clone());
    let (router, collected) = routes
        .routes(routes!(healthz))
        .merge(metrics)
        .split_for_parts();
    // `/openapi.json` joins last: it is in the document it serves, so it needs the rest first.
    let (document_route, document) = OpenApiRouter::with_openapi(collected)
        .routes(routes!(openapi))
        .split_for_parts();
    let document = Arc::new(finish(document));
    observability.wrap(
        router
            .merge(document_route.with_state(document))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// A service's own route, for the tests.
    #[utoipa::path(
        post,
        path = "/things",
        request_body = String,
        responses((status = 200, description = "Done."))
    )]
    async fn things(body: String) -> String {
        body
    }

    fn router() -> Router {
        let routes = OpenApiRouter::new().routes(routes!(things));
        service_router(routes, &Observability::new("test").unwrap())
    }

    async fn call(method: &str, uri: &str) -> (u16, serde_json::Value) {
        let (status, body, _) = call_with_headers(method, uri).await;
        (status, body)
    }

    async fn call_with_headers(
        method: &str,
        uri: &str,
    ) -> (u16, serde_json::Value, http::HeaderMap) {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&body).unwrap_or_default(),
            headers,
        )
    }

    #[tokio::test]
    async fn the_document_describes_every_route_and_each_answers() {
        let (status, document) = call("GET", "/openapi.json").await;
        assert_eq!(status, 200);
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                operations.push(format!("{} {path}", method.to_uppercase()));
                let (status, _) = call(&method.to_uppercase(), path).await;
                assert!(![404, 405].contains(&status), "{method} {path}: {status}");
            }
        }
        operations.sort();
        let expected = [
            "GET /healthz",
            "GET /metrics",
            "GET /openapi.json",
            "POST /things",
        ];
        assert_eq!(operations, expected);
        // `finish` completed it: the limits' answers, on a body-taking operation the body's too.
        let things = &document["paths"]["/things"]["post"]["responses"];
        for status in ["408", "413", "414", "431"] {
            assert!(things.get(status).is_some(), "{status} in {things}");
        }
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_get_the_json_fallbacks() {
        let (status, body, headers) = call_with_headers("GET", "/nowhere").await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
        assert_eq!(headers["cache-control"], "no-store");
        let (status, body, headers) = call_with_headers("GET", "/things").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (405, Some("invalid_request"))
        );
        assert_eq!(headers["cache-control"], "no-store");
    }
}
