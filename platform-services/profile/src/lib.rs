//! profile: user profiles and KYC status (pending, submitted, verified, rejected);
//! submission by the owner, approval or rejection by ops_user or admin.

mod kyc;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use platform_common::auth::{CurrentUser, RoleGuard, User, roles};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use platform_common::{ApiError, CommonError};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{OpenApi, ToSchema};

pub use kyc::{Actor, KycStatus};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "profiles",
    sql: "
CREATE TABLE IF NOT EXISTS profiles (
    username TEXT PRIMARY KEY,
    email TEXT,
    full_name TEXT NOT NULL,
    kyc_status TEXT NOT NULL DEFAULT 'pending',
    kyc_reviewed_by TEXT,
    kyc_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
",
}];

const REVIEWERS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN]);
const READERS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN, roles::AUDITOR]);

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("profile {0} not found")]
    NotFound(String),
    #[error("KYC cannot move from {from} to {to} this way")]
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
}

impl ApiError for ProfileError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidTransition { .. } => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NotFound(_) => "profile_not_found",
            Self::InvalidTransition { .. } => "invalid_kyc_transition",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(ProfileError);
platform_common::impl_db_error_conversions!(ProfileError);

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub username: String,
    pub email: Option<String>,
    pub full_name: String,
    pub kyc_status: KycStatus,
    pub kyc_reviewed_by: Option<String>,
    pub kyc_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "username, email, full_name, kyc_status, kyc_reviewed_by, kyc_reason, created_at, updated_at";

impl From<&Row> for Profile {
    fn from(r: &Row) -> Self {
        Profile {
            username: r.get(0),
            email: r.get(1),
            full_name: r.get(2),
            kyc_status: KycStatus::parse(r.get(3)).unwrap_or(KycStatus::Pending),
            kyc_reviewed_by: r.get(4),
            kyc_reason: r.get(5),
            created_at: r.get(6),
            updated_at: r.get(7),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    pub full_name: String,
    /// Defaults to the token's e-mail.
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycDecision {
    /// `verified` or `rejected`.
    pub decision: KycStatus,
    pub reason: Option<String>,
}

#[derive(Clone)]
struct State {
    ctx: Context,
}

#[derive(OpenApi)]
#[openapi(
    paths(get_me, put_me, get_profile, submit_kyc, decide_kyc),
    components(schemas(Profile, ProfileBody, KycDecision, KycStatus))
)]
struct Api;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "profile",
        migrations: MIGRATIONS,
        publishes: &[],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |ctx| {
            Ok(Router::new()
                .route("/profiles/me", get(get_me).put(put_me))
                .route("/profiles/me/kyc", post(submit_kyc))
                .route("/profiles/{username}", get(get_profile))
                .route("/profiles/{username}/kyc/decision", put(decide_kyc))
                .with_state(State { ctx: ctx.clone() }))
        },
        tasks: |_: &mut TaskRegistry, _| {},
    }
}

async fn load(s: &State, username: &str) -> Result<Profile, ProfileError> {
    let c = s.ctx.db.get().await?;
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM profiles WHERE username = $1"),
        &[&username],
    )
    .await?
    .map(|r| Profile::from(&r))
    .ok_or_else(|| ProfileError::NotFound(username.to_string()))
}

/// The caller's profile.
#[utoipa::path(get, path = "/profiles/me", tag = "profile", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 404, description = "no profile yet")))]
async fn get_me(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Profile>, ProfileError> {
    load(&s, &user.username).await.map(Json)
}

/// Create or update the caller's profile (KYC status is untouched).
#[utoipa::path(put, path = "/profiles/me", tag = "profile", security(("bearer" = [])), request_body = ProfileBody,
    responses((status = 200, body = Profile)))]
async fn put_me(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<ProfileBody>,
) -> Result<Json<Profile>, ProfileError> {
    let name = b.full_name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(CommonError::validation("full_name", "must be 1 to 200 characters").into());
    }
    let email = b.email.or(user.email.clone());
    if email
        .as_deref()
        .is_some_and(|e| !e.contains('@') || e.len() > 254)
    {
        return Err(CommonError::validation("email", "is not an e-mail address").into());
    }
    let c = s.ctx.db.get().await?;
    let row = c
        .query_one(
            &format!(
                "INSERT INTO profiles (username, email, full_name) VALUES ($1, $2, $3)
                 ON CONFLICT (username) DO UPDATE SET email = excluded.email, full_name = excluded.full_name, updated_at = now()
                 RETURNING {COLUMNS}"
            ),
            &[&user.username, &email, &name],
        )
        .await?;
    Ok(Json(Profile::from(&row)))
}

/// A profile: its owner, or ops_user, admin, auditor.
#[utoipa::path(get, path = "/profiles/{username}", tag = "profile", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 403, description = "not yours"), (status = 404, description = "no such profile")))]
async fn get_profile(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<Profile>, ProfileError> {
    if username != user.username {
        READERS.check(&user)?;
    }
    load(&s, &username).await.map(Json)
}

async fn transition(
    s: &State,
    username: &str,
    to: KycStatus,
    by: Actor,
    reviewer: Option<&User>,
    reason: Option<String>,
) -> Result<Profile, ProfileError> {
    let mut c = s.ctx.db.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT kyc_status FROM profiles WHERE username = $1 FOR UPDATE",
            &[&username],
        )
        .await?
        .ok_or_else(|| ProfileError::NotFound(username.to_string()))?;
    let from = KycStatus::parse(row.get(0)).unwrap_or(KycStatus::Pending);
    if !from.can_move(to, by) {
        return Err(ProfileError::InvalidTransition {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE profiles SET kyc_status = $2, kyc_reviewed_by = $3, kyc_reason = $4, updated_at = now()
                 WHERE username = $1 RETURNING {COLUMNS}"
            ),
            &[&username, &to.as_str(), &reviewer.map(|u| u.username.clone()), &reason],
        )
        .await?;
    tx.commit().await?;
    tracing::info!(
        username,
        from = from.as_str(),
        to = to.as_str(),
        "kyc status changed"
    );
    Ok(Profile::from(&row))
}

/// Submit the caller's KYC for review (from pending or rejected).
#[utoipa::path(post, path = "/profiles/me/kyc", tag = "profile", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 409, description = "not allowed from the current status")))]
async fn submit_kyc(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Profile>, ProfileError> {
    transition(
        &s,
        &user.username,
        KycStatus::Submitted,
        Actor::Owner,
        None,
        None,
    )
    .await
    .map(Json)
}

/// Approve or reject a submitted KYC (ops_user, admin).
#[utoipa::path(put, path = "/profiles/{username}/kyc/decision", tag = "profile", security(("bearer" = [])), request_body = KycDecision,
    responses((status = 200, body = Profile), (status = 403, description = "not a reviewer"), (status = 409, description = "not submitted")))]
async fn decide_kyc(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(d): ApiJson<KycDecision>,
) -> Result<Json<Profile>, ProfileError> {
    REVIEWERS.check(&user)?;
    if !matches!(d.decision, KycStatus::Verified | KycStatus::Rejected) {
        return Err(CommonError::validation("decision", "must be verified or rejected").into());
    }
    if username == user.username {
        return Err(CommonError::Forbidden("reviewers cannot decide their own KYC".into()).into());
    }
    transition(
        &s,
        &username,
        d.decision,
        Actor::Reviewer,
        Some(&user),
        d.reason,
    )
    .await
    .map(Json)
}
