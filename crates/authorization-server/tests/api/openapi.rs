use crate::helpers::spawn;

/// `/openapi.json` describes exactly the service's operations and each is routed (see
/// [`common::openapi::check_served_document`]).
#[tokio::test]
async fn the_served_document_describes_every_operation() {
    let server = spawn(&[]).await;
    let operations = [
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/authorize"),
        ("POST", "/token"),
        ("GET", "/readyz"),
    ];
    common::openapi::check_served_document(&server.base, &operations)
        .await
        .unwrap();
}
