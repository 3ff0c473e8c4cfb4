//! A streamed backend body with the API's idle timeout and total cap: frames pass through
//! as they arrive, nothing is buffered.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct TimedBody<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, idle: Duration, deadline: Option<Instant>) -> Self {
        Self {
            inner: Box::pin(inner),
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamTimeout {
    #[error("the backend sent nothing for the API's idle timeout")]
    Idle,
    #[error("the request exceeded the API's total time cap")]
    Total,
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if let Some(d) = this.deadline.as_mut() {
                    if d.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(StreamTimeout::Total.into())));
                    }
                }
                if this.idle_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Err(StreamTimeout::Idle.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
