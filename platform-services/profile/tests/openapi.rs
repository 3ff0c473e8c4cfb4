//! The OpenAPI document is valid and lists exactly the routes the router serves.

#[tokio::test]
async fn openapi_document_is_valid_and_matches_the_router() {
    platform_testing::openapi::check(&profile::spec()).await;
}
