//! What the three services' OpenAPI documents share: the JSON 404 and 405 answers
//! ([`not_found`], [`method_not_allowed`]) and the answers of the input limits that sit in front
//! of every route ([`finish`]). The documents themselves are collected by each service's router
//! ([`crate::router`]).

use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, ToSchema};

use crate::api_error::json_error;
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

/// The fallback answer for a path no route serves.
pub async fn not_found() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        ErrorBody::new(ErrorCode::NotFound, "no such endpoint"),
    )
}

/// The answer for a method a route does not serve (axum adds the `Allow` header).
pub async fn method_not_allowed() -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorBody::new(
            ErrorCode::InvalidRequest,
            "method not allowed on this endpoint",
        ),
    )
}

/// An HTTP authentication scheme of a service's document, which its operations name in their
/// `security`: a `const` of the service, given to its `#[openapi(modifiers(&…))]`.
pub struct HttpSecurity {
    pub name: &'static str,
    pub scheme: HttpAuthScheme,
    /// What a bearer token is (`JWT`); only for [`HttpAuthScheme::Bearer`].
    pub bearer_format: Option<&'static str>,
    pub description: &'static str,
}

impl Modify for HttpSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let mut http = HttpBuilder::new()
            .scheme(self.scheme.clone())
            .description(Some(self.description));
        if let Some(format) = self.bearer_format {
            http = http.bearer_format(format);
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(self.name, SecurityScheme::Http(http.build()));
    }
}

/// Completes a service's collected document with the limits' answers: 414 and 431 on every
/// operation (the middleware and the HTTP server refuse before routing), 413 and 408 on every
/// operation taking a body.
pub fn finish(mut api: OpenApi) -> OpenApi {
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

/// The operations every service serves the same way ([`crate::router`]).
#[cfg(any(test, feature = "test-support"))]
pub const COMMON_OPERATIONS: [(&str, &str); 3] = [
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// The check each service's API tests run against a served instance at `base`: `/openapi.json`
/// is OpenAPI 3.1, every schema it references is in it, it describes exactly the service's own
/// `operations` (upper-case method, path) and [`COMMON_OPERATIONS`], and every operation it
/// describes is routed (neither the fallback's 404 nor a 405) and answers a status it documents.
#[cfg(any(test, feature = "test-support"))]
pub async fn check_served_document(base: &str, operations: &[(&str, &str)]) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| err.to_string())?;
    let document: serde_json::Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .map_err(|err| err.to_string())?
        .json()
        .await
        .map_err(|err| err.to_string())?;
    let version = document["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.1") {
        return Err(format!("OpenAPI version {version:?}, not 3.1"));
    }
    // utoipa does not check that a referenced type was collected.
    let schemas = &document["components"]["schemas"];
    let text = document.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        if schemas.get(name).is_none() {
            return Err(format!("unresolvable reference to the schema {name:?}"));
        }
    }
    let mut expected: Vec<(String, String)> = operations
        .iter()
        .chain(&COMMON_OPERATIONS)
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    expected.sort();
    let paths = document["paths"].as_object().ok_or("no paths")?;
    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().ok_or("a path item is not an object")? {
            documented.push((method.to_uppercase(), path.clone()));
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
    documented.sort();
    if documented != expected {
        return Err(format!(
            "documented operations {documented:?} differ from the service's {expected:?}"
        ));
    }
    Ok(())
}
