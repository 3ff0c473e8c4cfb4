//! Conversions: a quote taken up, once, before it expires, by the caller who asked for it.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::Utc;
use platform_common::auth::CurrentUser;
use platform_common::db::{self, DbOptionExt};
use platform_common::http::ApiJson;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::quotes::Quote;
use crate::{ForexError, State, store};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quote_id": "6e5d4c3b-2a19-4f08-9e7d-6c5b4a392817"}))]
pub struct ConversionRequest {
    pub quote_id: Uuid,
}

/// Convert at a quote: once, before it expires, by the caller who asked for it.
#[utoipa::path(post, path = "/conversions", tag = "forex", operation_id = "convert",
    security(("bearer" = [])), request_body = ConversionRequest,
    responses((status = 201, body = Quote), (status = 404, description = "no such quote, or another user's"),
        (status = 409, description = "converted already"), (status = 410, description = "the quote expired")),
    extensions(("x-problem-codes" = json!({"404": ["quote_not_found"], "409": ["quote_already_converted"],
        "410": ["quote_expired"]}))))]
pub(crate) async fn convert(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(r): ApiJson<ConversionRequest>,
) -> Result<(StatusCode, Json<Quote>), ForexError> {
    let id = r.quote_id;
    let quote = db::serializable(&s.ctx.db, |tx| {
        let user_id = user.id.clone();
        Box::pin(async move {
            let not_found = || ForexError::QuoteNotFound(id.to_string());
            let stored = store::lock_quote(tx, id).await.or_not_found(not_found)?;
            // Someone else's quote is not found either. Quotes are keyed by the stable
            // subject: a username can be renamed, and then given to someone else.
            if stored.owner_id.as_deref() != Some(user_id.as_str()) {
                return Err(not_found());
            }
            if stored.converted_at.is_some() {
                return Err(ForexError::QuoteUsed(id.to_string()));
            }
            let expires_at = stored.quote.expires_at;
            if Utc::now() >= expires_at {
                return Err(ForexError::QuoteExpired(id.to_string(), expires_at));
            }
            store::mark_converted(tx, id).await?;
            Ok(stored.quote)
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(quote)))
}
