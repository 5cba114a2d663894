use crate::fakes::{AsMode, Harness, RsMode};

/// `/openapi.json` describes exactly the routes the router declares (see
/// [`common::openapi::check_served_document`]).
#[tokio::test]
async fn openapi_document_covers_every_route() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let declared = common::openapi::routes_in_source(include_str!("../../src/routes.rs"));
    common::openapi::check_served_document(&app.base, declared)
        .await
        .unwrap();
}
