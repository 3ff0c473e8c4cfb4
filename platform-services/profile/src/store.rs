//! The profiles table's SQL. Rows are read by column name.

use platform_common::db::{Client, DbError, Transaction, read_opt};
use tokio_postgres::Row;

use crate::kyc::KycStatus;
use crate::profiles::Profile;

const RETURNING: &str = "RETURNING username, email, full_name, kyc_status, kyc_reviewed_by, kyc_reason, created_at, updated_at";

fn profile(r: &Row) -> Result<Profile, tokio_postgres::Error> {
    Ok(Profile {
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        full_name: r.try_get("full_name")?,
        kyc_status: kyc_status(r)?,
        kyc_reviewed_by: r.try_get("kyc_reviewed_by")?,
        kyc_reason: r.try_get("kyc_reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn kyc_status(r: &Row) -> Result<KycStatus, tokio_postgres::Error> {
    Ok(KycStatus::parse(r.try_get("kyc_status")?).unwrap_or(KycStatus::Pending))
}

pub async fn get(c: &Client, username: &str) -> Result<Option<Profile>, DbError> {
    let row = c
        .query_opt("SELECT * FROM profiles WHERE username = $1", &[&username])
        .await?;
    read_opt(row, profile)
}

/// Up to `limit` profiles, oldest change first, only those in `status` when given.
pub async fn list(
    c: &Client,
    status: Option<KycStatus>,
    limit: i64,
) -> Result<Vec<Profile>, DbError> {
    let rows = c
        .query(
            "SELECT * FROM profiles WHERE ($1::TEXT IS NULL OR kyc_status = $1::TEXT)
             ORDER BY updated_at, username LIMIT $2",
            &[&status.map(KycStatus::as_str), &limit],
        )
        .await?;
    Ok(rows.iter().map(profile).collect::<Result<_, _>>()?)
}

/// Creates the profile or updates its name and e-mail; the KYC status is untouched.
pub async fn upsert(
    c: &Client,
    username: &str,
    email: Option<&str>,
    full_name: &str,
) -> Result<Profile, DbError> {
    let row = c
        .query_one(
            &format!(
                "INSERT INTO profiles (username, email, full_name) VALUES ($1, $2, $3)
                 ON CONFLICT (username) DO UPDATE SET email = excluded.email, full_name = excluded.full_name, updated_at = now()
                 {RETURNING}"
            ),
            &[&username, &email, &full_name],
        )
        .await?;
    Ok(profile(&row)?)
}

/// The KYC status, the profile locked until the transaction ends.
pub async fn lock_kyc_status(
    tx: &Transaction<'_>,
    username: &str,
) -> Result<Option<KycStatus>, DbError> {
    let row = tx
        .query_opt(
            "SELECT kyc_status FROM profiles WHERE username = $1 FOR UPDATE",
            &[&username],
        )
        .await?;
    read_opt(row, kyc_status)
}

pub async fn set_kyc_status(
    tx: &Transaction<'_>,
    username: &str,
    to: KycStatus,
    reviewed_by: Option<&str>,
    reason: Option<&str>,
) -> Result<Profile, DbError> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE profiles SET kyc_status = $2, kyc_reviewed_by = $3, kyc_reason = $4, updated_at = now()
                 WHERE username = $1 {RETURNING}"
            ),
            &[&username, &to.as_str(), &reviewed_by, &reason],
        )
        .await?;
    Ok(profile(&row)?)
}
