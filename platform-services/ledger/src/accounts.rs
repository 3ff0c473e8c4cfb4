use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::{CommonError, money};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{LedgerError, State};

pub(crate) const WRITERS: RoleGuard = RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN]);
pub(crate) const READERS: RoleGuard =
    RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN, roles::AUDITOR]);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Client-chosen id; creating the same account again is idempotent.
    pub id: Uuid,
    pub currency: String,
    #[serde(default)]
    pub debits_must_not_exceed_credits: bool,
    #[serde(default)]
    pub credits_must_not_exceed_debits: bool,
    pub reference: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub id: Uuid,
    pub currency: String,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub debits_posted: i64,
    pub credits_posted: i64,
    /// credits_posted - debits_posted
    pub balance: i64,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "id, currency, debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
    debits_posted, credits_posted, reference, created_at";

impl From<&Row> for Account {
    fn from(r: &Row) -> Self {
        let (debits, credits): (i64, i64) = (r.get(4), r.get(5));
        Account {
            id: r.get(0),
            currency: r.get(1),
            debits_must_not_exceed_credits: r.get(2),
            credits_must_not_exceed_debits: r.get(3),
            debits_posted: debits,
            credits_posted: credits,
            balance: credits - debits,
            reference: r.get(6),
            created_at: r.get(7),
        }
    }
}

/// Create an account (finance, admin). Same id and fields again: 200 with the original.
#[utoipa::path(post, path = "/accounts", tag = "ledger", security(("bearer" = [])), request_body = NewAccount,
    responses((status = 201, body = Account), (status = 200, body = Account), (status = 409, description = "id exists with different fields")))]
pub async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(new): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<Account>), LedgerError> {
    WRITERS.check(&user)?;
    money::currency("currency", &new.currency)?;
    if new.debits_must_not_exceed_credits && new.credits_must_not_exceed_debits {
        return Err(CommonError::validation(
            "credits_must_not_exceed_debits",
            "at most one balance flag may be set",
        )
        .into());
    }
    let client = s.ctx.db.get().await?;
    let inserted = client
        .execute(
            "INSERT INTO accounts (id, currency, debits_must_not_exceed_credits, credits_must_not_exceed_debits, reference, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            &[&new.id, &new.currency, &new.debits_must_not_exceed_credits, &new.credits_must_not_exceed_debits, &new.reference, &user.username],
        )
        .await?;
    let row = client
        .query_one(
            &format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"),
            &[&new.id],
        )
        .await?;
    let account = Account::from(&row);
    if inserted == 1 {
        return Ok((StatusCode::CREATED, Json(account)));
    }
    let same = account.currency == new.currency
        && account.debits_must_not_exceed_credits == new.debits_must_not_exceed_credits
        && account.credits_must_not_exceed_debits == new.credits_must_not_exceed_debits
        && account.reference == new.reference;
    if same {
        Ok((StatusCode::OK, Json(account)))
    } else {
        Err(LedgerError::ExistsWithDifferentFields("account"))
    }
}

/// An account and its balances (finance, admin, auditor).
#[utoipa::path(get, path = "/accounts/{id}", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 404, description = "no such account")))]
pub async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Account>, LedgerError> {
    READERS.check(&user)?;
    let client = s.ctx.db.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| LedgerError::AccountNotFound(id.to_string()))?;
    Ok(Json(Account::from(&row)))
}
