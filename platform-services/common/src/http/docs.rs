//! OpenAPI at `/openapi.json` and a readable index of it at `/docs`.
//!
//! The page is rendered here from the document itself: no script from a CDN, so it works
//! offline and in air-gapped stacks.

use std::fmt::Write;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use utoipa::openapi::OpenApi;

pub fn routes(doc: OpenApi) -> Router {
    let json = doc.to_pretty_json().expect("OpenAPI document serialises");
    let html = render(&doc);
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let j = json.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], j) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let h = html.clone();
                async move { Html(h) }
            }),
        )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn render(doc: &OpenApi) -> String {
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op
                .summary
                .clone()
                .or_else(|| op.description.clone())
                .unwrap_or_default();
            let secured = if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                "bearer"
            } else {
                ""
            };
            let _ = writeln!(
                rows,
                "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td><td>{secured}</td></tr>",
                escape(path),
                escape(&summary)
            );
        }
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} API</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:.2em 1em;border-bottom:1px solid #ddd}}</style>\
         </head><body><h1>{title} {version}</h1><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. \
         Errors are <code>application/problem+json</code>.</p>\
         <table><tr><th>Method</th><th>Path</th><th>Summary</th><th>Auth</th></tr>{rows}</table></body></html>",
        title = escape(&doc.info.title),
        version = escape(&doc.info.version),
    )
}
