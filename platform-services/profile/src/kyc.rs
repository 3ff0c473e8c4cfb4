//! KYC status, its allowed transitions, who may decide it, and the gate other services read.

use deadpool_postgres::GenericClient;
use platform_common::db::DbError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum KycStatus {
    Pending,
    Submitted,
    Verified,
    Rejected,
}

/// Who is asking for a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The profile's owner.
    Owner,
    /// ops_user or admin.
    Reviewer,
}

impl KycStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Submitted => "submitted",
            Self::Verified => "verified",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "submitted" => Self::Submitted,
            "verified" => Self::Verified,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }

    /// pending -> submitted and rejected -> submitted by the owner;
    /// submitted -> verified | rejected by a reviewer. Nothing else, and verified is final.
    pub fn can_move(self, to: KycStatus, by: Actor) -> bool {
        use KycStatus::*;
        matches!(
            (self, to, by),
            (Pending | Rejected, Submitted, Actor::Owner)
                | (Submitted, Verified | Rejected, Actor::Reviewer)
        )
    }
}

/// Whether `reviewer_id` may decide the KYC of `owner_id` (both subjects): never their own,
/// whatever their roles, so every verification is made by a second person.
pub fn may_decide(reviewer_id: &str, owner_id: &str) -> bool {
    reviewer_id != owner_id
}

/// Whether the KYC of the user with subject `user_id` is verified: false without a profile.
///
/// For services sharing the profile service's database (payment gates a payer on it): call it
/// on a pool client or inside the caller's own transaction, where a concurrent decision is then
/// a serialization conflict of that transaction rather than a stale read.
pub async fn kyc_verified(client: &impl GenericClient, user_id: &str) -> Result<bool, DbError> {
    Ok(store::kyc_status_of(client, user_id).await? == Some(KycStatus::Verified))
}

#[cfg(test)]
mod tests {
    use super::KycStatus::*;
    use super::*;

    #[test]
    fn transitions() {
        assert!(Pending.can_move(Submitted, Actor::Owner));
        assert!(Rejected.can_move(Submitted, Actor::Owner));
        assert!(Submitted.can_move(Verified, Actor::Reviewer));
        assert!(Submitted.can_move(Rejected, Actor::Reviewer));
        // Owners cannot approve themselves; reviewers cannot skip submission.
        assert!(!Submitted.can_move(Verified, Actor::Owner));
        assert!(!Pending.can_move(Verified, Actor::Reviewer));
        assert!(!Verified.can_move(Submitted, Actor::Owner));
        assert!(!Verified.can_move(Rejected, Actor::Reviewer));
        assert!(may_decide("ops-sub", "dana-sub"));
        assert!(!may_decide("ops-sub", "ops-sub"));
        for s in [Pending, Submitted, Verified, Rejected] {
            assert_eq!(KycStatus::parse(s.as_str()), Some(s));
        }
    }
}
