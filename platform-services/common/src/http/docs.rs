//! OpenAPI at `/openapi.json` and a readable index of it at `/docs`.
//!
//! The page is rendered here from the document itself: no script from a CDN, so it works
//! offline and in air-gapped stacks.

use std::fmt::Write;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use super::openapi::Document;

/// The document and its page, rendered once.
pub(crate) struct Pages {
    json: String,
    html: String,
}

pub fn routes(doc: Document) -> Router {
    let pages = Arc::new(Pages {
        json: serde_json::to_string_pretty(&doc.0).expect("OpenAPI document serialises"),
        html: render(&doc),
    });
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs_page))
        .with_state(pages)
}

/// This service's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "platform", operation_id = "openapi",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json",
        body = Object, example = json!({"openapi": "3.1.0", "info": {"title": "svc-forex", "version": "0.1.0"}}))))]
pub(crate) async fn openapi_json(State(p): State<Arc<Pages>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], p.json.clone())
}

/// The operations as a page (no CDN assets).
#[utoipa::path(get, path = "/docs", tag = "platform", operation_id = "docs",
    responses((status = 200, description = "the operations as an HTML page", content_type = "text/html",
        body = String, example = "<!doctype html>")))]
pub(crate) async fn docs_page(State(p): State<Arc<Pages>>) -> Html<String> {
    Html(p.html.clone())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn render(doc: &Document) -> String {
    let mut rows = String::new();
    for (method, path, op) in doc.operations() {
        let text = |k: &str| op.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let summary = if text("summary").is_empty() {
            text("description")
        } else {
            text("summary")
        };
        let secured = if op
            .get("security")
            .and_then(|s| s.as_array())
            .is_some_and(|s| !s.is_empty())
        {
            "bearer"
        } else {
            ""
        };
        let _ = writeln!(
            rows,
            "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td><td>{secured}</td></tr>",
            escape(path),
            escape(summary)
        );
    }
    let info = |k: &str| doc.0["info"][k].as_str().unwrap_or_default().to_string();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} API</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em;border-bottom:1px solid #ddd}}</style>\
         </head><body><h1>{title} {version}</h1><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. \
         Errors are <code>application/problem+json</code>.</p>\
         <table><tr><th>Method</th><th>Path</th><th>Summary</th><th>Auth</th></tr>{rows}</table></body></html>",
        title = escape(&info("title")),
        version = escape(&info("version")),
    )
}
