//! The user_profiles table's SQL, keyed by the user's subject. Rows are read by column name.

use deadpool_postgres::GenericClient;
use platform_common::db::{DbError, read_opt};
use tokio_postgres::Row;

use crate::kyc::KycStatus;
use crate::profiles::Profile;

const COLUMNS: &str = "user_id, username, email, full_name, kyc_status, kyc_reviewer_id, \
                       kyc_reviewed_by, kyc_reason, created_at, updated_at";

fn profile(r: &Row) -> Result<Profile, tokio_postgres::Error> {
    Ok(Profile {
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        full_name: r.try_get("full_name")?,
        kyc_status: kyc_status(r)?,
        kyc_reviewer_id: r.try_get("kyc_reviewer_id")?,
        kyc_reviewed_by: r.try_get("kyc_reviewed_by")?,
        kyc_reason: r.try_get("kyc_reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn kyc_status(r: &Row) -> Result<KycStatus, tokio_postgres::Error> {
    Ok(KycStatus::parse(r.try_get("kyc_status")?).unwrap_or(KycStatus::Pending))
}

pub async fn get(c: &impl GenericClient, user_id: &str) -> Result<Option<Profile>, DbError> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM user_profiles WHERE user_id = $1"),
            &[&user_id],
        )
        .await?;
    read_opt(row, profile)
}

/// The KYC status of `user_id`'s profile; `None` without a profile.
pub async fn kyc_status_of(
    c: &impl GenericClient,
    user_id: &str,
) -> Result<Option<KycStatus>, DbError> {
    let row = c
        .query_opt(
            "SELECT kyc_status FROM user_profiles WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
    read_opt(row, kyc_status)
}

/// Up to `limit` profiles, oldest change first, only those in `status` when given.
pub async fn list(
    c: &impl GenericClient,
    status: Option<KycStatus>,
    limit: i64,
) -> Result<Vec<Profile>, DbError> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM user_profiles WHERE ($1::TEXT IS NULL OR kyc_status = $1::TEXT)
                 ORDER BY updated_at, user_id LIMIT $2"
            ),
            &[&status.map(KycStatus::as_str), &limit],
        )
        .await?;
    Ok(rows.iter().map(profile).collect::<Result<_, _>>()?)
}

/// Creates the profile or updates its username, name and e-mail; the KYC status is untouched.
pub async fn upsert(
    c: &impl GenericClient,
    user_id: &str,
    username: &str,
    email: Option<&str>,
    full_name: &str,
) -> Result<Profile, DbError> {
    let row = c
        .query_one(
            &format!(
                "INSERT INTO user_profiles (user_id, username, email, full_name) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, email = excluded.email,
                   full_name = excluded.full_name, updated_at = now()
                 RETURNING {COLUMNS}"
            ),
            &[&user_id, &username, &email, &full_name],
        )
        .await?;
    Ok(profile(&row)?)
}

/// The KYC status, the profile locked until the transaction ends.
pub async fn lock_kyc_status(
    c: &impl GenericClient,
    user_id: &str,
) -> Result<Option<KycStatus>, DbError> {
    let row = c
        .query_opt(
            "SELECT kyc_status FROM user_profiles WHERE user_id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await?;
    read_opt(row, kyc_status)
}

/// Who decided a KYC: the subject (the key) and the username (for display).
pub struct Reviewer<'a> {
    pub id: &'a str,
    pub username: &'a str,
}

pub async fn set_kyc_status(
    c: &impl GenericClient,
    user_id: &str,
    to: KycStatus,
    reviewer: Option<Reviewer<'_>>,
    reason: Option<&str>,
) -> Result<Profile, DbError> {
    let (reviewer_id, reviewed_by) = match &reviewer {
        Some(r) => (Some(r.id), Some(r.username)),
        None => (None, None),
    };
    let row = c
        .query_one(
            &format!(
                "UPDATE user_profiles SET kyc_status = $2, kyc_reviewer_id = $3, kyc_reviewed_by = $4,
                   kyc_reason = $5, updated_at = now()
                 WHERE user_id = $1 RETURNING {COLUMNS}"
            ),
            &[&user_id, &to.as_str(), &reviewer_id, &reviewed_by, &reason],
        )
        .await?;
    Ok(profile(&row)?)
}
