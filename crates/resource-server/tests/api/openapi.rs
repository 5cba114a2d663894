use crate::helpers::TestApp;

/// `/openapi.json` describes exactly the service's operations and each is routed (see
/// [`common::openapi::check_served_document`]).
#[tokio::test]
async fn the_served_document_describes_every_operation() {
    let app = TestApp::spawn().await;
    let operations = [("GET", "/current_time"), ("GET", "/epoch_time")];
    common::openapi::check_served_document(&app.base, &operations)
        .await
        .unwrap();
}
