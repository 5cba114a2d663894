use crate::fakes::{AsMode, Harness, RsMode};

/// `/openapi.json` describes exactly the service's operations and each is routed (see
/// [`common::openapi::check_served_document`]).
#[tokio::test]
async fn the_served_document_describes_every_operation() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let operations = [
        ("GET", "/current_time"),
        ("GET", "/epoch_time"),
        ("GET", "/login/current_time"),
        ("GET", "/login/epoch_time"),
        ("GET", "/callback"),
    ];
    common::openapi::check_served_document(&app.base, &operations)
        .await
        .unwrap();
}
