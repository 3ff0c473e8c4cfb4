//! Profiles and their KYC status: the caller's own, others' for staff, and KYC review.

use axum::Json;
use axum::extract::State as AxState;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, User, roles};
use platform_common::db::{self, DbOptionExt};
use platform_common::http::{ApiJson, ApiPath};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kyc::{self, Actor, KycStatus};
use crate::{ProfileError, State, store};

const REVIEWERS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN]);
pub(crate) const READERS: RoleGuard =
    RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN, roles::AUDITOR]);

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "8d3c1f0e-5b7a-4c2e-9f61-2a4b6c8d0e1f", "username": "user",
    "email": "user@innover.local", "full_name": "Una User", "kyc_status": "submitted",
    "kyc_reviewer_id": null, "kyc_reviewed_by": null, "kyc_reason": null,
    "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}))]
pub struct Profile {
    /// The owner's stable subject (the token's `sub`): the profile's key.
    pub user_id: String,
    /// The owner's username when they last saved the profile; for display only.
    pub username: String,
    pub email: Option<String>,
    pub full_name: String,
    pub kyc_status: KycStatus,
    /// The subject of the reviewer of the last KYC decision.
    pub kyc_reviewer_id: Option<String>,
    /// The username of the reviewer of the last KYC decision, for display.
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
    load(&s, &user.id).await.map(Json)
}

/// Create or update the caller's profile (KYC status is untouched); the token's username is
/// saved with it for display.
#[utoipa::path(put, path = "/profiles/me", tag = "profile", operation_id = "put_my_profile",
    security(("bearer" = [])), request_body = ProfileBody,
    responses((status = 200, body = Profile,
        links(("GetProfile" = (operation_id = "get_profile", parameters(("user_id" = "$response.body#/user_id"))))))),
    extensions(("x-problem-codes" = json!({"503": ["contention"]}))))]
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
    let profile = db::serializable(&s.ctx.db, |tx| {
        let (user, email, name) = (user.clone(), email.clone(), name.to_string());
        Box::pin(async move {
            let p = store::upsert(tx, &user.id, &user.username, email.as_deref(), &name).await?;
            Ok::<_, ProfileError>(p)
        })
    })
    .await?;
    Ok(Json(profile))
}

/// A profile by its owner's subject: the owner, or ops_user, admin, auditor.
#[utoipa::path(get, path = "/profiles/{user_id}", tag = "profile", operation_id = "get_profile",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "the owner's subject (`sub`), as in the profile's `user_id`",
        example = "8d3c1f0e-5b7a-4c2e-9f61-2a4b6c8d0e1f")),
    responses((status = 200, body = Profile), (status = 403, description = "another user's profile, without ops_user, admin or auditor"),
        (status = 404, description = "no such profile")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden"], "404": ["profile_not_found"]}))))]
pub(crate) async fn get_profile(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<Profile>, ProfileError> {
    if user_id != user.id {
        READERS.check(&user)?;
    }
    load(&s, &user_id).await.map(Json)
}

async fn load(s: &State, user_id: &str) -> Result<Profile, ProfileError> {
    let c = s.ctx.db.get().await?;
    store::get(&c, user_id)
        .await
        .or_not_found(|| ProfileError::NotFound(user_id.to_string()))
}

/// Moves `user_id`'s KYC to `to` in one serializable transaction (run again on a conflict).
async fn transition(
    s: &State,
    user_id: &str,
    to: KycStatus,
    by: Actor,
    reviewer: Option<&User>,
    reason: Option<String>,
) -> Result<Profile, ProfileError> {
    let (from, profile) = db::serializable(&s.ctx.db, |tx| {
        let (user_id, reviewer, reason) = (user_id.to_string(), reviewer.cloned(), reason.clone());
        Box::pin(async move {
            let from = store::lock_kyc_status(tx, &user_id)
                .await
                .or_not_found(|| ProfileError::NotFound(user_id.clone()))?;
            if !from.can_move(to, by) {
                return Err(ProfileError::InvalidTransition {
                    from: from.as_str(),
                    to: to.as_str(),
                });
            }
            let reviewer = reviewer.as_ref().map(|u| store::Reviewer {
                id: &u.id,
                username: &u.username,
            });
            let profile =
                store::set_kyc_status(tx, &user_id, to, reviewer, reason.as_deref()).await?;
            Ok((from, profile))
        })
    })
    .await?;
    tracing::info!(
        user_id,
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
            links(("DecideKyc" = (operation_id = "decide_kyc", parameters(("user_id" = "$response.body#/user_id")))))),
        (status = 404, description = "no profile yet"),
        (status = 409, description = "not allowed from the current status")),
    extensions(("x-problem-codes" = json!({"404": ["profile_not_found"], "409": ["invalid_kyc_transition"],
        "503": ["contention"]}))))]
pub(crate) async fn submit_kyc(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Profile>, ProfileError> {
    transition(&s, &user.id, KycStatus::Submitted, Actor::Owner, None, None)
        .await
        .map(Json)
}

/// Approve or reject a submitted KYC (ops_user, admin); never the caller's own.
#[utoipa::path(put, path = "/profiles/{user_id}/kyc/decision", tag = "profile", operation_id = "decide_kyc",
    security(("bearer" = ["ops_user", "admin"])), request_body = KycDecision,
    params(("user_id" = String, Path, description = "the subject (`sub`) of the user whose KYC is decided (not the caller's own)",
        example = "8d3c1f0e-5b7a-4c2e-9f61-2a4b6c8d0e1f")),
    responses((status = 200, body = Profile),
        (status = 403, description = "not a reviewer (`forbidden`), or the reviewer's own KYC (`self_approval_forbidden`)"),
        (status = 404, description = "no such profile"), (status = 409, description = "not submitted")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden", "self_approval_forbidden"], "404": ["profile_not_found"],
        "409": ["invalid_kyc_transition"], "503": ["contention"]}))))]
pub(crate) async fn decide_kyc(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(d): ApiJson<KycDecision>,
) -> Result<Json<Profile>, ProfileError> {
    REVIEWERS.check(&user)?;
    if !matches!(d.decision, KycStatus::Verified | KycStatus::Rejected) {
        return Err(CommonError::validation("decision", "must be verified or rejected").into());
    }
    if !kyc::may_decide(&user.id, &user_id) {
        return Err(ProfileError::SelfApproval);
    }
    transition(
        &s,
        &user_id,
        d.decision,
        Actor::Reviewer,
        Some(&user),
        d.reason,
    )
    .await
    .map(Json)
}
