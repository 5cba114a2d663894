use oauth::Scope;

use crate::helpers::TestApp;

/// `/openapi.json` describes exactly the routes `router` declares (see
/// [`common::openapi::check_served_document`]).
#[tokio::test]
async fn openapi_document_covers_every_route() {
    let app = TestApp::spawn().await;
    let declared = common::openapi::routes_in_source(include_str!("../../src/routes.rs"))
        .into_iter()
        .map(|route| match route.as_str() {
            "Scope::CurrentTime.path()" => Scope::CurrentTime.path().to_owned(),
            "Scope::EpochTime.path()" => Scope::EpochTime.path().to_owned(),
            _ => route,
        })
        .collect();
    common::openapi::check_served_document(&app.base, declared)
        .await
        .unwrap();
}
