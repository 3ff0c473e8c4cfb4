//! The KYC gate: payments above the threshold need the payer's KYC verified.

use crate::{PaymentError, State};

/// Whether the payer's KYC is verified (read from the profile service's table on the shared
/// database).
pub async fn verified(s: &State, payer: &str) -> Result<bool, PaymentError> {
    let client = s.ctx.db.get().await?;
    // TODO(merge): profile::kyc_verified once profiles are keyed by subject.
    let row = client
        .query_opt(
            "SELECT kyc_status FROM profiles WHERE username = $1",
            &[&payer],
        )
        .await?;
    Ok(row.is_some_and(|r| r.get::<_, String>(0) == "verified"))
}
