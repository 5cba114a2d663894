use crate::helpers::spawn;

/// `/openapi.json` describes exactly the routes `router` declares (see
/// [`common::openapi::check_served_document`]).
#[tokio::test]
async fn openapi_document_covers_every_route() {
    let server = spawn(&[]).await;
    let declared = common::openapi::routes_in_source(include_str!("../../src/lib.rs"));
    common::openapi::check_served_document(&server.base, declared)
        .await
        .unwrap();
}
