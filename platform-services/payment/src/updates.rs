//! `GET /payments/updates`: a WebSocket of the caller's payment status changes.
//!
//! Messages are JSON text frames:
//! - first, `{"type": "snapshot", "payments": [PaymentUpdate, ..]}`: the caller's payments that
//!   are not final yet (not `completed`, `failed` or `rejected`), newest first, at most
//!   [`SNAPSHOT_LIMIT`];
//! - then `{"type": "payment", "payment_id", "status", "amount", "currency", "payee",
//!   "updated_at"}` for each status change of one of the caller's payments, up to its final
//!   `completed`, `failed` or `rejected`;
//! - a new snapshot when this connection fell behind and missed changes.
//!
//! The server pings every [`PING_EVERY`] and closes a connection that answered nothing for two
//! pings in a row; a client's Close is answered and ends the connection.
//!
//! Changes reach connections through an in-process `tokio::sync::broadcast` fed from two
//! places: this process's own changes (creation, review) at once, and, while any socket is
//! open, a poll of the payments the database saw change in the last [`FEED_WINDOW`] (every
//! [`FEED_EVERY`]): the saga's later steps run in the worker, and other API replicas change
//! payments too. Each (payment, status, time) is announced once; a payment that passes through
//! several states within one poll shows its latest (its final state always arrives). The poll
//! works alike on CockroachDB and Postgres (no LISTEN/NOTIFY, which CockroachDB lacks).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::extract::State as AxState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
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
/// How often the feed reads the recent changes while a socket is open.
pub const FEED_EVERY: Duration = Duration::from_millis(250);
/// How far back each read of the feed looks: a change is seen even when its transaction
/// committed a few seconds after it set `updated_at` (its start).
pub const FEED_WINDOW: Duration = Duration::from_secs(5);
/// At most this many changes per read, the newest (more than this many within one
/// [`FEED_EVERY`] would skip some).
const FEED_BATCH: i64 = 2000;
/// The subprotocol a browser offers with its token (`Sec-WebSocket-Protocol: bearer, <jwt>`).
const BEARER_PROTOCOL: &str = "bearer";

/// One payment's state as a client sees it on the updates socket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentUpdate {
    pub payment_id: Uuid,
    /// The payment's state: `initiated`, `pending_review`, `screened`, `converted`, `held`,
    /// `voiding`, or a final `completed`, `failed`, `rejected`.
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
    /// What was announced per payment lately, so each change goes out once whichever way it
    /// came.
    announced: Arc<Mutex<HashMap<Uuid, Announced>>>,
}

/// The last change announced for one payment.
struct Announced {
    status: String,
    updated_at: DateTime<Utc>,
    /// When it was announced (by this process's clock).
    at: Instant,
}

impl Updates {
    /// Announces this process's own changes only (tests, a process without a database).
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            announced: Arc::default(),
        }
    }

    /// Announces this process's changes and, while a socket is open, every change the
    /// database saw (the module's documentation says how). Outside a Tokio runtime (an
    /// OpenAPI dump), the same as [`Updates::new`].
    pub fn watching(pool: Pool) -> Self {
        let updates = Self::new();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (tx, announced) = (updates.tx.downgrade(), updates.announced.clone());
            runtime.spawn(Self::follow(tx, announced, pool));
        }
        updates
    }

    /// Announce `p`'s current status unless it, or a later one, was announced already; call
    /// after the transaction that set it committed. (A read of the feed can return a state
    /// that this process replaced and announced a moment later: it is not announced after it.)
    pub fn publish(&self, p: &Payment) {
        {
            let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
            if announced.get(&p.id).is_some_and(|a| {
                a.updated_at > p.updated_at
                    || (a.updated_at == p.updated_at && a.status == p.status)
            }) {
                return;
            }
            let last = Announced {
                status: p.status.clone(),
                updated_at: p.updated_at,
                at: Instant::now(),
            };
            announced.insert(p.id, last);
        }
        // No open socket is not an error.
        let _ = self.tx.send(Arc::new(Change {
            owner: p.owner.clone(),
            update: p.into(),
        }));
    }

    /// The feed: reads the recent changes every [`FEED_EVERY`] while a socket is open; ends
    /// when the last [`Updates`] of its app is dropped.
    async fn follow(
        tx: broadcast::WeakSender<Arc<Change>>,
        announced: Arc<Mutex<HashMap<Uuid, Announced>>>,
        pool: Pool,
    ) {
        let mut tick = tokio::time::interval(FEED_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let Some(tx) = tx.upgrade() else { return };
            let updates = Self {
                tx,
                announced: announced.clone(),
            };
            updates.forget_old();
            if updates.tx.receiver_count() == 0 {
                continue;
            }
            match updates.read_changes(&pool).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("payment updates feed reads changes again");
                }
                Ok(()) => {}
                // Logged once per outage; the sockets stay open and catch up afterwards.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "payment updates feed: reading changes failed; retrying");
                }
                Err(_) => {}
            }
        }
    }

    async fn read_changes(&self, pool: &Pool) -> Result<(), PaymentError> {
        let client = pool.get().await?;
        let changed =
            store::changed_recently(&client, FEED_WINDOW.as_secs_f64(), FEED_BATCH).await?;
        // Newest first from the database; announced oldest first.
        for p in changed.iter().rev() {
            self.publish(p);
        }
        Ok(())
    }

    /// Drops what no read can return again (older than twice the window).
    fn forget_old(&self) {
        let mut announced = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        announced.retain(|_, a| a.at.elapsed() < FEED_WINDOW * 2);
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
