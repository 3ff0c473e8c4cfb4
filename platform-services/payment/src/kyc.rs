//! The KYC gate: payments above the threshold need the payer's KYC verified.

use crate::{PaymentError, State};

/// Whether the payer's KYC is verified (the profile service's record, on the shared
/// database, keyed by the payer's subject).
pub async fn verified(s: &State, payer: &str) -> Result<bool, PaymentError> {
    let client = s.ctx.db.get().await?;
    Ok(profile::kyc_verified(&client, payer).await?)
}
