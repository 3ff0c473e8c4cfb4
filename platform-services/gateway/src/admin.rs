//! The admin API on its own listener (`ADMIN_PORT`), as documented in `gateway-routes`:
//! every change is validated, persisted, then swapped in whole.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway_routes::{Api, RouteTable};
use platform_common::Problem;

use crate::Gateway;
use crate::table::{Compiled, Invalid, validate_api, validate_table};

pub fn router(gw: Arc<Gateway>) -> Router {
    let admin = Router::new()
        .route("/admin/apis", get(list).put(replace))
        .route(
            "/admin/apis/{id}",
            get(get_one).put(put_one).delete(delete_one),
        )
        .route_layer(middleware::from_fn_with_state(gw.clone(), require_token));
    Router::new()
        .merge(admin)
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "no such admin route")
        })
        .with_state(gw)
}

async fn require_token(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().as_bytes().to_vec());
    match presented {
        Some(t) if gw.admin_token_matches(&t) => next.run(req).await,
        _ => Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin API needs `Authorization: Bearer $GATEWAY_ADMIN_TOKEN`",
        )
        .into_response(),
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        gw.metrics.render(),
    )
        .into_response()
}

fn unprocessable(e: Invalid) -> Response {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_route",
        e.to_string(),
    )
    .with_field(e.field)
    .into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("not a valid body: {e}"),
            )
            .into_response(),
        )
    })
}

async fn list(State(gw): State<Arc<Gateway>>) -> Response {
    axum::Json(gw.table.load().table.clone()).into_response()
}

async fn get_one(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gw.table.load().table.apis.iter().find(|a| a.id() == id) {
        Some(api) => axum::Json(api).into_response(),
        None => not_found(&id),
    }
}

fn not_found(id: &str) -> Response {
    Problem::new(StatusCode::NOT_FOUND, "not_found", format!("no API {id}")).into_response()
}

/// Persists `table`, then makes it the one requests see.
fn commit(gw: &Gateway, table: RouteTable) -> Result<(), Box<Response>> {
    if let Err(e) = gw.store.save(&table) {
        tracing::error!(error = %e, path = %gw.store.path().display(), "could not store the route table");
        return Err(Box::new(
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                "the route table could not be stored; nothing changed",
            )
            .into_response(),
        ));
    }
    gw.table.store(Arc::new(Compiled::new(table)));
    gw.routes_ok.store(true, Ordering::Release);
    *gw.routes_problem.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(())
}

async fn replace(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    let table: RouteTable = match parse(&body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if let Err(e) = validate_table(&table) {
        return unprocessable(e);
    }
    let _write = gw.write_lock.lock().await;
    match commit(&gw, table.clone()) {
        Ok(()) => {
            tracing::info!(apis = table.apis.len(), "route table replaced");
            axum::Json(table).into_response()
        }
        Err(r) => *r,
    }
}

async fn put_one(State(gw): State<Arc<Gateway>>, Path(id): Path<String>, body: Bytes) -> Response {
    let api: Api = match parse(&body) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if let Err(e) = validate_api(&api, "") {
        return unprocessable(e);
    }
    if api.id() != id {
        return unprocessable(Invalid {
            field: "name".into(),
            reason: format!("the body is API {}, the path says {id}", api.id()),
        });
    }
    let _write = gw.write_lock.lock().await;
    let mut table = gw.table.load().table.clone();
    if let Some(other) = table
        .apis
        .iter()
        .find(|a| a.id() != id && a.prefix() == api.prefix())
    {
        return unprocessable(Invalid {
            field: "context".into(),
            reason: format!("{} is already served by {}", api.prefix(), other.id()),
        });
    }
    let created = match table.apis.iter_mut().find(|a| a.id() == id) {
        Some(slot) => {
            *slot = api.clone();
            false
        }
        None => {
            table.apis.push(api.clone());
            true
        }
    };
    if let Err(e) = validate_table(&table) {
        return unprocessable(e);
    }
    if let Err(r) = commit(&gw, table) {
        return *r;
    }
    tracing::info!(api = %id, created, "API published");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(api)).into_response()
}

async fn delete_one(State(gw): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let _write = gw.write_lock.lock().await;
    let mut table = gw.table.load().table.clone();
    let before = table.apis.len();
    table.apis.retain(|a| a.id() != id);
    if table.apis.len() == before {
        return not_found(&id);
    }
    if let Err(r) = commit(&gw, table) {
        return *r;
    }
    tracing::info!(api = %id, "API deleted");
    StatusCode::NO_CONTENT.into_response()
}
