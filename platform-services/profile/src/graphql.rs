//! The GraphQL read model at `/graphql` (POST, and GET with `?query=`): the caller's profile,
//! another's for staff, and the KYC review queue, with the same role rules as the REST routes.
//! The schema is committed as `schema.graphql` (the gateway publishes it with the API); a test
//! keeps it equal to what this module serves.

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, ErrorExtensions, Object, Schema, SimpleObject,
};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform_common::ApiError;
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, User};
use platform_common::service::Context as ServiceContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kyc::KycStatus;
use crate::profiles::READERS;
use crate::{ProfileError, State, store};

/// Query nesting the service accepts (the gateway enforces its own, tighter limit first).
const MAX_DEPTH: usize = 8;

pub type ProfileSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema, with the service context the resolvers read from when `ctx` is given.
pub fn schema(ctx: Option<ServiceContext>) -> ProfileSchema {
    let builder = Schema::build(Query, EmptyMutation, EmptySubscription).limit_depth(MAX_DEPTH);
    match ctx {
        Some(c) => builder.data(c).finish(),
        None => builder.finish(),
    }
}

/// The SDL of [`schema`], as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// A GraphQL request as JSON (`POST /graphql`).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"query": "{ me { username kycStatus } }"}))]
#[allow(dead_code)] // documentation only: async-graphql parses the request itself
pub struct GraphqlBody {
    #[schema(min_length = 1)]
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A GraphQL response: `data`, and `errors` for fields that failed (a role error carries the
/// REST `code` and `status` in its `extensions`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"data": {"me": {"username": "user", "kycStatus": "PENDING"}}}))]
pub struct GraphqlResult {
    data: Option<serde_json::Value>,
    errors: Option<Vec<serde_json::Value>>,
}

/// Run a GraphQL query sent as JSON.
#[utoipa::path(post, path = "/graphql", tag = "profile", operation_id = "graphql_post",
    security(("bearer" = [])), request_body = GraphqlBody,
    responses((status = 200, body = GraphqlResult, content_type = "application/graphql-response+json")))]
pub(crate) async fn post(
    s: AxState<State>,
    user: CurrentUser,
    req: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    execute(s, user, req).await
}

/// Run a GraphQL query sent in the query string.
#[utoipa::path(get, path = "/graphql", tag = "profile", operation_id = "graphql_get",
    security(("bearer" = [])),
    params(("query" = String, Query, description = "the GraphQL query", example = "{ me { username } }"),
        ("operationName" = Option<String>, Query), ("variables" = Option<String>, Query, description = "JSON object")),
    responses((status = 200, body = GraphqlResult, content_type = "application/graphql-response+json")))]
pub(crate) async fn get(
    s: AxState<State>,
    user: CurrentUser,
    req: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    execute(s, user, req).await
}

/// A bearer token is required, as on every route; a request async-graphql cannot read is a
/// problem+json 400 like any other malformed body.
async fn execute(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    req: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    match req {
        Ok(req) => GraphQLResponse::from(s.graphql.execute(req.into_inner().data(user)).await)
            .into_response(),
        Err(e) => CommonError::InvalidBody {
            field: None,
            detail: format!("not a GraphQL request: {}", e.0),
        }
        .into_response(),
    }
}

/// A profile and its KYC status.
#[derive(SimpleObject)]
#[graphql(name = "Profile")]
pub struct ProfileView {
    /// The owner's stable subject (`sub`): the profile's key.
    user_id: String,
    /// The owner's username when they last saved the profile; for display only.
    username: String,
    email: Option<String>,
    full_name: String,
    kyc_status: KycStatus,
    /// The subject of the reviewer of the last KYC decision.
    kyc_reviewer_id: Option<String>,
    /// The username of the reviewer of the last KYC decision, for display.
    kyc_reviewed_by: Option<String>,
    /// The reason given with the last KYC decision.
    kyc_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<crate::Profile> for ProfileView {
    fn from(p: crate::Profile) -> Self {
        Self {
            user_id: p.user_id,
            username: p.username,
            email: p.email,
            full_name: p.full_name,
            kyc_status: p.kyc_status,
            kyc_reviewer_id: p.kyc_reviewer_id,
            kyc_reviewed_by: p.kyc_reviewed_by,
            kyc_reason: p.kyc_reason,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

pub struct Query;

#[Object]
impl Query {
    /// The caller's profile; null before their first `PUT /profiles/me`.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProfileView>> {
        let (s, user) = parts(ctx)?;
        load_opt(s, &user.id).await
    }

    /// A profile by its owner's subject (`userId`): the caller's own, or anyone's for
    /// ops_user, admin and auditor.
    async fn profile(
        &self,
        ctx: &Context<'_>,
        user_id: String,
    ) -> async_graphql::Result<Option<ProfileView>> {
        let (s, user) = parts(ctx)?;
        if user_id != user.id {
            READERS
                .check(user)
                .map_err(|e| error(ProfileError::from(e)))?;
        }
        load_opt(s, &user_id).await
    }

    /// Profiles, oldest change first, optionally only those in one KYC status (the review
    /// queue is `profiles(kycStatus: SUBMITTED)`): ops_user, admin and auditor.
    async fn profiles(
        &self,
        ctx: &Context<'_>,
        kyc_status: Option<KycStatus>,
        #[graphql(default = 50, validator(minimum = 1, maximum = 200))] first: i32,
    ) -> async_graphql::Result<Vec<ProfileView>> {
        let (s, user) = parts(ctx)?;
        READERS
            .check(user)
            .map_err(|e| error(ProfileError::from(e)))?;
        let c = s.db.get().await.map_err(|e| error(e.into()))?;
        let rows = store::list(&c, kyc_status, i64::from(first))
            .await
            .map_err(|e| error(e.into()))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

fn parts<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<(&'a ServiceContext, &'a User)> {
    Ok((ctx.data::<ServiceContext>()?, ctx.data::<User>()?))
}

async fn load_opt(s: &ServiceContext, user_id: &str) -> async_graphql::Result<Option<ProfileView>> {
    let c = s.db.get().await.map_err(|e| error(e.into()))?;
    let p = store::get(&c, user_id).await.map_err(|e| error(e.into()))?;
    Ok(p.map(Into::into))
}

/// A service error as a GraphQL error: its message (never internal detail) and, in
/// `extensions`, the same `code` and `status` the REST routes' problem+json carries.
fn error(e: ProfileError) -> async_graphql::Error {
    let status = e.status();
    let message = if status.is_server_error() {
        tracing::error!(code = e.code(), error = %e, "graphql resolver failed");
        "internal error; see the service log".to_string()
    } else {
        e.to_string()
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", e.code());
        ext.set("status", status.as_u16());
    })
}

#[cfg(test)]
mod tests {
    /// `schema.graphql` is what the service serves. After a deliberate schema change:
    /// `UPDATE_SCHEMA=1 cargo test -p profile graphql` rewrites it.
    #[test]
    fn committed_schema_is_the_served_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let served = super::sdl();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &served).expect("write schema.graphql");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == served,
            "{path} differs from the served schema; run `UPDATE_SCHEMA=1 cargo test -p profile graphql` and commit it"
        );
    }
}
