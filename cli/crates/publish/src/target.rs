//! What a gateway must offer to be published to: list what it has, create, update, delete.
//! One implementation per product: [`crate::builtin`] (finctl's gateway), [`crate::wso2`]
//! (WSO2 API Manager 4.x), [`crate::kong`] (Kong's admin API).

use async_trait::async_trait;
use gateway_routes::Api;

/// An API as it is on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Read back in the route table's terms, as far as the target can express them (see
    /// [`Target::project`]).
    pub api: Api,
    /// finctl published it (marked on the target: the route's `owner`, a WSO2 property, a
    /// Kong tag). `--prune` deletes only these.
    pub owned: bool,
    /// The target's own id for it (WSO2's API id, Kong's service id, the builtin `name:version`).
    pub handle: String,
}

#[async_trait]
pub trait Target: Send {
    /// `builtin`, `wso2`, `kong`: shown in the plan.
    fn name(&self) -> &'static str;

    /// Where it is (`http://127.0.0.1:8281`), shown in the plan.
    fn location(&self) -> String;

    /// The desired API as this target will read it back once published: what it cannot
    /// represent is dropped, so that a second run compares equal and writes nothing.
    fn project(&self, api: &Api) -> Api {
        api.clone()
    }

    /// Every API on the target, finctl's and others'.
    async fn list(&mut self) -> anyhow::Result<Vec<Remote>>;

    async fn create(&mut self, api: &Api) -> anyhow::Result<()>;

    /// `fields` are the top-level [`Api`] fields that differ (`backend_url`, `throttle`).
    async fn update(&mut self, remote: &Remote, api: &Api, fields: &[String])
    -> anyhow::Result<()>;

    async fn delete(&mut self, remote: &Remote) -> anyhow::Result<()>;

    /// Called once after the changes, with everything that should now be published (a
    /// DB-less Kong takes it as one declarative configuration). Not called when the plan has
    /// no change.
    async fn finish(&mut self, _desired: &[Api]) -> anyhow::Result<()> {
        Ok(())
    }
}
