//! `GET /payments/updates`: a WebSocket of the caller's payment status changes.
//!
//! Messages are JSON text frames:
//! - first, `{"type": "snapshot", "payments": [PaymentUpdate, ..]}`: the caller's payments that
//!   are not final yet (`initiated`, `pending_review`), newest first, at most
//!   [`SNAPSHOT_LIMIT`];
//! - then `{"type": "payment", "payment_id", "status", "amount", "currency", "payee",
//!   "updated_at"}` for each status change of one of the caller's payments;
//! - a new snapshot when this connection fell behind and missed changes.
//!
//! The server pings every [`PING_EVERY`] and closes a connection that answered nothing for two
//! pings in a row; a client's Close is answered and ends the connection.
//!
//! Changes reach connections through an in-process `tokio::sync::broadcast` fed where a
//! payment's status is set (today: creation). That is complete for one `serve` replica only: a
//! change made by another replica is not seen here. Several replicas would publish each change
//! on Redis pub/sub as well and fan it in to this channel.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::State as AxState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform_common::Problem;
use platform_common::auth::{AuthError, CurrentUser, JWT_ASSERTION_HEADER, TokenVerifier, User};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::payments::Payment;
use crate::{PaymentError, State, store};

/// How many changes a slow connection may fall behind before it gets a fresh snapshot.
const CHANNEL_CAPACITY: usize = 1024;
pub const SNAPSHOT_LIMIT: i64 = 100;
pub const PING_EVERY: Duration = Duration::from_secs(30);
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The subprotocol a browser offers with its token (`Sec-WebSocket-Protocol: bearer, <jwt>`).
const BEARER_PROTOCOL: &str = "bearer";

/// One payment's state as a client sees it on the updates socket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentUpdate {
    pub payment_id: Uuid,
    /// `initiated`, `pending_review` or `rejected`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub payee: String,
    pub updated_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentUpdate {
    fn from(p: &Payment) -> Self {
        Self {
            payment_id: p.id,
            status: p.status.clone(),
            amount: p.amount,
            currency: p.currency.clone(),
            payee: p.payee.clone(),
            updated_at: p.updated_at,
        }
    }
}

struct Change {
    owner: String,
    update: PaymentUpdate,
}

/// Where status changes are announced to the open update sockets of this process.
#[derive(Clone)]
pub struct Updates {
    tx: broadcast::Sender<Arc<Change>>,
}

impl Updates {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }

    /// Announce `p`'s current status; call after the transaction that set it committed.
    pub fn publish(&self, p: &Payment) {
        // No open socket is not an error.
        let _ = self.tx.send(Arc::new(Change {
            owner: p.owner.clone(),
            update: p.into(),
        }));
    }
}

/// The caller of a WebSocket: `Authorization: Bearer` or `X-JWT-Assertion` as everywhere, and
/// for browsers an `access_token` query parameter or `Sec-WebSocket-Protocol: bearer, <token>`.
pub struct SocketUser {
    user: User,
    /// The token came as a subprotocol: the handshake must select `bearer`.
    via_protocol: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for SocketUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION)
            || parts.headers.contains_key(JWT_ASSERTION_HEADER)
        {
            let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
            return Ok(Self {
                user,
                via_protocol: false,
            });
        }
        let (token, via_protocol) = if let Some(t) = query_token(parts.uri.query()) {
            (t, false)
        } else if let Some(t) = protocol_token(&parts.headers) {
            (t, true)
        } else {
            return Err(AuthError::MissingToken);
        };
        let verifier = parts
            .extensions
            .get::<Arc<TokenVerifier>>()
            .cloned()
            .expect("TokenVerifier extension is installed by platform_common::http::router");
        Ok(Self {
            user: verifier.user(&token).await?,
            via_protocol,
        })
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    // JWTs are base64url and dots: nothing in them is percent-encoded.
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn protocol_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let at = offered.iter().position(|p| *p == BEARER_PROTOCOL)?;
    offered
        .get(at + 1)
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string())
}

/// The caller's payment status changes as a WebSocket (JSON text messages): first a snapshot of
/// the caller's payments that are not final, then one message per change.
#[utoipa::path(get, path = "/payments/updates", tag = "payments", operation_id = "payment_updates",
    security(("bearer" = [])),
    params(
        ("access_token" = Option<String>, Query, description = "the JWT, for browsers (instead of `Authorization`)"),
        ("Sec-WebSocket-Protocol" = Option<String>, Header, description = "`bearer, <jwt>`: the JWT for browsers; answered with `bearer`"),
    ),
    responses(
        (status = 101, description = "WebSocket. Text messages: `{\"type\":\"snapshot\",\"payments\":[PaymentUpdate]}` first, then `{\"type\":\"payment\", ..PaymentUpdate}` per status change"),
        (status = 426, description = "not a WebSocket upgrade request")),
    extensions(("x-problem-codes" = json!({"426": ["upgrade_required"]}))))]
pub async fn updates(
    AxState(s): AxState<State>,
    caller: SocketUser,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // axum's own rejection is plain text; clients get problem+json like every other error.
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return Problem::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                e.body_text(),
            )
            .into_response();
        }
    };
    let ws = if caller.via_protocol {
        ws.protocols([BEARER_PROTOCOL])
    } else {
        ws
    };
    let user = caller.user;
    ws.on_upgrade(move |socket| async move {
        tracing::debug!(user = %user.username, "payment updates opened");
        stream(s, user, socket).await;
    })
}

async fn stream(s: State, user: User, mut socket: WebSocket) {
    // Subscribe before reading the snapshot so no change falls between the two; a change may
    // then arrive twice (in the snapshot and as a message), which is harmless.
    let mut changes = s.updates.tx.subscribe();
    if send_snapshot(&s, &user, &mut socket).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut unanswered = 0u8;
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) => {
                    // The close reply is queued; reading on sends it and sees the end.
                    let _ = tokio::time::timeout(CLOSE_WAIT, socket.recv()).await;
                    break;
                }
                None | Some(Err(_)) => break,
                // Anything from the client (pong, ping, text) shows it is alive.
                Some(Ok(_)) => unanswered = 0,
            },
            change = changes.recv() => match change {
                Ok(c) if c.owner == user.id => {
                    let mut msg = json!(c.update);
                    msg["type"] = "payment".into();
                    if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(user = %user.username, missed, "payment updates lagged; resending the snapshot");
                    if send_snapshot(&s, &user, &mut socket).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            _ = ping.tick() => {
                if unanswered >= 2 {
                    let _ = socket.send(close(close_code::POLICY, "no answer to ping")).await;
                    break;
                }
                unanswered += 1;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!(user = %user.username, "payment updates closed");
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

async fn send_snapshot(s: &State, user: &User, socket: &mut WebSocket) -> Result<(), ()> {
    let payments = match open_payments(s, &user.id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "payment updates: reading the snapshot failed");
            let _ = socket
                .send(close(close_code::AGAIN, "database unavailable, retry"))
                .await;
            return Err(());
        }
    };
    let msg = json!({"type": "snapshot", "payments": payments});
    socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .map_err(|_| ())
}

async fn open_payments(s: &State, owner: &str) -> Result<Vec<PaymentUpdate>, PaymentError> {
    let client = s.ctx.db.get().await?;
    let payments = store::not_final(&client, owner, SNAPSHOT_LIMIT).await?;
    Ok(payments.iter().map(PaymentUpdate::from).collect())
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    #[test]
    fn token_from_query() {
        assert_eq!(
            query_token(Some("a=1&access_token=x.y.z")).as_deref(),
            Some("x.y.z")
        );
        assert_eq!(query_token(Some("access_token=")), None);
        assert_eq!(query_token(Some("token=x")), None);
        assert_eq!(query_token(None), None);
    }

    #[test]
    fn token_from_subprotocol() {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, bearer, x.y.z"),
        );
        assert_eq!(protocol_token(&h).as_deref(), Some("x.y.z"));
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("bearer"),
        );
        assert_eq!(protocol_token(&h), None);
        assert_eq!(protocol_token(&HeaderMap::new()), None);
    }
}
