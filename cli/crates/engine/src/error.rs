//! What can go wrong talking to the engine once connected: which call, and the engine's own
//! error as the source.

/// A failed Engine API call.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `what` names the call and its object, e.g. "inspecting container finctl_redis_1".
    #[error("{what}")]
    Api {
        what: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// An attached exec came back detached.
    #[error("the engine started the exec in {container} detached")]
    Detached { container: String },
}

/// `.what("...")` on a bollard result: the call's name becomes the message.
pub(crate) trait ApiResultExt<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, EngineError>;
}

impl<T> ApiResultExt<T> for Result<T, bollard::errors::Error> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, EngineError> {
        self.map_err(|source| EngineError::Api {
            what: what(),
            source,
        })
    }
}
