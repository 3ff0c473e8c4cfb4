//! rule-engine service (domain routes to come).

use axum::Router;
use platform_common::jobs::TaskRegistry;
use platform_common::service::ServiceSpec;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi()]
struct Api;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "rule-engine",
        migrations: &[],
        publishes: &[],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |_| Ok(Router::new()),
        tasks: |_: &mut TaskRegistry, _| {},
    }
}
