//! What the contract tests share.

use serde_json::Value;

/// The stack's gateway as far as OpenAPI documents go: `doc` at `<prefix>/openapi.json`.
/// Returns its base URL.
pub async fn document_server(prefix: &str, doc: Value) -> String {
    let app = axum::Router::new().route(
        &format!("{prefix}/openapi.json"),
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
