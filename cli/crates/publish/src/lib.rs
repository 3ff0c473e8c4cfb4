//! `finctl publish-apis`: `api-config.yaml` validated and resolved into the gateway's route
//! table ([`config`]), compared with what a target gateway has ([`plan`]), and the
//! differences written through that gateway's own API ([`target::Target`]): the built-in
//! gateway's admin API ([`builtin`]), WSO2 API Manager's publisher API ([`wso2`]), Kong's
//! admin API ([`kong`]).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use finctl_publish::{builtin::Builtin, config, plan::{self, Plan}, target::Target};
//!
//! let resolved = config::load(std::path::Path::new("api-config.yaml"))?;
//! let mut target = Builtin::new("http://127.0.0.1:8281", "dev-gateway-admin-token")?;
//! let remote = target.list().await?;
//! let plan = Plan::new(&target, &resolved.table.apis, &remote, false);
//! plan::apply(&mut target, &plan, &mut |_| {}).await?;
//! # Ok(()) }
//! ```
//!
//! [`wso2::Wso2`] is built from [`wso2::Wso2Config::from_env`] (`FINCTL_WSO2_*`); [`kong`]
//! publishes to Kong Gateway 3.x (DB or DB-less) and registers the IdP's RSA key with it.
//!
//! Depends on finctl-compose (line positions, durations), finctl-env and finctl-error; never on Docker.

pub mod builtin;
pub mod config;
pub mod definition;
pub mod kong;
pub mod plan;
pub mod target;
pub mod wso2;
