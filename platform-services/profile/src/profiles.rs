//! Profiles and their KYC status: the caller's own, others' for staff, and KYC review.

use axum::Json;
use axum::extract::State as AxState;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, User, roles};
use platform_common::db::DbOptionExt;
use platform_common::http::{ApiJson, ApiPath};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kyc::{Actor, KycStatus};
use crate::{ProfileError, State, store};

const REVIEWERS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN]);
pub(crate) const READERS: RoleGuard =
    RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN, roles::AUDITOR]);

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"username": "user", "email": "user@innover.local", "full_name": "Una User",
    "kyc_status": "submitted", "kyc_reviewed_by": null, "kyc_reason": null,
    "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}))]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"full_name": "Una User", "email": "user@innover.local"}))]
pub struct ProfileBody {
    /// 1 to 200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub full_name: String,
    /// Defaults to the token's e-mail.
    #[schema(max_length = 254, pattern = "@")]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "verified", "reason": "documents checked"}))]
pub struct KycDecision {
    /// `verified` or `rejected`.
    #[schema(value_type = Decision)]
    pub decision: KycStatus,
    pub reason: Option<String>,
}

/// The statuses a reviewer can decide: the schema of [`KycDecision::decision`] (the other
/// statuses are a 422).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documentation only
enum Decision {
    Verified,
    Rejected,
}

/// The caller's profile.
#[utoipa::path(get, path = "/profiles/me", tag = "profile", operation_id = "get_my_profile",
    security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 404, description = "no profile yet")),
    extensions(("x-problem-codes" = json!({"404": ["profile_not_found"]}))))]
pub(crate) async fn get_me(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Profile>, ProfileError> {
    load(&s, &user.username).await.map(Json)
}

/// Create or update the caller's profile (KYC status is untouched).
#[utoipa::path(put, path = "/profiles/me", tag = "profile", operation_id = "put_my_profile",
    security(("bearer" = [])), request_body = ProfileBody,
    responses((status = 200, body = Profile,
        links(("GetProfile" = (operation_id = "get_profile", parameters(("username" = "$response.body#/username"))))))))]
pub(crate) async fn put_me(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<ProfileBody>,
) -> Result<Json<Profile>, ProfileError> {
    let name = b.full_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CommonError::validation("full_name", "must be 1 to 200 characters").into());
    }
    let email = b.email.or(user.email.clone());
    if email
        .as_deref()
        .is_some_and(|e| !e.contains('@') || e.chars().count() > 254)
    {
        return Err(CommonError::validation("email", "is not an e-mail address").into());
    }
    let c = s.ctx.db.get().await?;
    Ok(Json(
        store::upsert(&c, &user.username, email.as_deref(), name).await?,
    ))
}

/// A profile: its owner, or ops_user, admin, auditor.
#[utoipa::path(get, path = "/profiles/{username}", tag = "profile", operation_id = "get_profile",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "the profile's user name", example = "user")),
    responses((status = 200, body = Profile), (status = 403, description = "another user's profile, without ops_user, admin or auditor"),
        (status = 404, description = "no such profile")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden"], "404": ["profile_not_found"]}))))]
pub(crate) async fn get_profile(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<Profile>, ProfileError> {
    if username != user.username {
        READERS.check(&user)?;
    }
    load(&s, &username).await.map(Json)
}

async fn load(s: &State, username: &str) -> Result<Profile, ProfileError> {
    let c = s.ctx.db.get().await?;
    store::get(&c, username)
        .await
        .or_not_found(|| ProfileError::NotFound(username.to_string()))
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
    let from = store::lock_kyc_status(&tx, username)
        .await
        .or_not_found(|| ProfileError::NotFound(username.to_string()))?;
    if !from.can_move(to, by) {
        return Err(ProfileError::InvalidTransition {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    let profile = store::set_kyc_status(
        &tx,
        username,
        to,
        reviewer.map(|u| u.username.as_str()),
        reason.as_deref(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        username,
        from = from.as_str(),
        to = to.as_str(),
        "kyc status changed"
    );
    Ok(profile)
}

/// Submit the caller's KYC for review (from pending or rejected).
#[utoipa::path(post, path = "/profiles/me/kyc", tag = "profile", operation_id = "submit_kyc",
    security(("bearer" = [])),
    responses((status = 200, body = Profile,
            links(("DecideKyc" = (operation_id = "decide_kyc", parameters(("username" = "$response.body#/username")))))),
        (status = 404, description = "no profile yet"),
        (status = 409, description = "not allowed from the current status")),
    extensions(("x-problem-codes" = json!({"404": ["profile_not_found"], "409": ["invalid_kyc_transition"]}))))]
pub(crate) async fn submit_kyc(
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
#[utoipa::path(put, path = "/profiles/{username}/kyc/decision", tag = "profile", operation_id = "decide_kyc",
    security(("bearer" = ["ops_user", "admin"])), request_body = KycDecision,
    params(("username" = String, Path, description = "whose KYC is decided (not the caller's own)", example = "user")),
    responses((status = 200, body = Profile), (status = 403, description = "not a reviewer, or the reviewer's own KYC"),
        (status = 404, description = "no such profile"), (status = 409, description = "not submitted")),
    extensions(("x-problem-codes" = json!({"404": ["profile_not_found"], "409": ["invalid_kyc_transition"]}))))]
pub(crate) async fn decide_kyc(
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
