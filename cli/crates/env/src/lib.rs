//! Every environment variable finctl reads, named once. Code reads them through these
//! constants, and `finctl --help` builds its environment section from [`DOCUMENTED`], so the
//! help cannot drift from what is read.
//!
//! This crate depends on nothing.

/// Overrides where the project (the folder holding `compose/`, or the `-f` files' working
/// directory) is.
pub const FINCTL_PROJECT_DIR: &str = "FINCTL_PROJECT_DIR";
/// Overrides where heavy build artefacts are cached (default `~/.cache/finctl`).
pub const FINCTL_CACHE_DIR: &str = "FINCTL_CACHE_DIR";
/// Overrides the Debian mirror used by debootstrap and package downloads
/// (default: read from the machine's apt sources).
pub const FINCTL_DEBIAN_MIRROR: &str = "FINCTL_DEBIAN_MIRROR";
/// Compose's: the project name (wins over `.env` and the folder name).
pub const COMPOSE_PROJECT_NAME: &str = "COMPOSE_PROJECT_NAME";
/// Compose's: the active profiles, comma-separated, when no `--profile` is given.
pub const COMPOSE_PROFILES: &str = "COMPOSE_PROFILES";
/// Compose's: the Compose files when no `-f` is given, separated by `:` (or
/// [`COMPOSE_PATH_SEPARATOR`]).
pub const COMPOSE_FILE: &str = "COMPOSE_FILE";
/// Compose's: the separator of [`COMPOSE_FILE`]'s paths (default `:`).
pub const COMPOSE_PATH_SEPARATOR: &str = "COMPOSE_PATH_SEPARATOR";
/// Standard: the Docker engine address (`unix:///...` or `tcp://...`).
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// Standard: disables coloured output when set to anything.
pub const NO_COLOR: &str = "NO_COLOR";
/// Standard: where `~` is.
pub const HOME: &str = "HOME";
/// Standard: XDG cache root.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";

/// `finctl publish-apis` (builtin) and `finctl up`: the built-in gateway's admin API
/// (default: the gateway service's published ADMIN_PORT on 127.0.0.1).
pub const FINCTL_GATEWAY_ADMIN_URL: &str = "FINCTL_GATEWAY_ADMIN_URL";
/// The built-in gateway's admin token; read as the Compose file passes it to the gateway
/// (the environment, else `compose/.env`).
pub const GATEWAY_ADMIN_TOKEN: &str = "GATEWAY_ADMIN_TOKEN";
/// `publish-apis --target wso2|kong`: the built-in gateway's public URL, where each REST API's
/// OpenAPI document is read (`<context>/<version>/openapi.json`; default
/// `http://127.0.0.1:8280`, `none` sends no documents).
pub const FINCTL_GATEWAY_URL: &str = "FINCTL_GATEWAY_URL";
/// `publish-apis --target wso2`: WSO2 API Manager's base URL (default `https://127.0.0.1:9443`).
pub const FINCTL_WSO2_URL: &str = "FINCTL_WSO2_URL";
/// `--target wso2`: the user that registers finctl's client and publishes (default `admin`).
pub const FINCTL_WSO2_USERNAME: &str = "FINCTL_WSO2_USERNAME";
/// `--target wso2`: that user's password (default `admin`, WSO2's out-of-the-box one).
pub const FINCTL_WSO2_PASSWORD: &str = "FINCTL_WSO2_PASSWORD";
/// `--target wso2`: the gateway environment revisions are deployed to (default `Default`).
pub const FINCTL_WSO2_GATEWAY_ENV: &str = "FINCTL_WSO2_GATEWAY_ENV";
/// `--target wso2`: `1` accepts WSO2's self-signed TLS certificate.
pub const FINCTL_WSO2_INSECURE_TLS: &str = "FINCTL_WSO2_INSECURE_TLS";
/// `publish-apis --target kong`: Kong's admin API (default `http://127.0.0.1:8001`).
pub const FINCTL_KONG_ADMIN_URL: &str = "FINCTL_KONG_ADMIN_URL";
/// `--target kong`: sent as `Kong-Admin-Token` when set (Kong Enterprise RBAC).
pub const FINCTL_KONG_ADMIN_TOKEN: &str = "FINCTL_KONG_ADMIN_TOKEN";

/// A variable users set, with the one line `--help` says about it.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    pub name: &'static str,
    pub help: &'static str,
}

/// The variables `finctl --help` lists, in that order.
pub const DOCUMENTED: &[Documented] = &[
    Documented {
        name: FINCTL_PROJECT_DIR,
        help: "the project folder (default: walk up to compose/ or compose.yaml)",
    },
    Documented {
        name: FINCTL_CACHE_DIR,
        help: "where heavy build artefacts are cached (default: ~/.cache/finctl)",
    },
    Documented {
        name: FINCTL_DEBIAN_MIRROR,
        help: "Debian mirror for image builds (default: read from apt's sources)",
    },
    Documented {
        name: COMPOSE_PROJECT_NAME,
        help: "the project name when no -p is given (default: .env, the folder name)",
    },
    Documented {
        name: COMPOSE_PROFILES,
        help: "active profiles, comma-separated, when no --profile is given",
    },
    Documented {
        name: COMPOSE_FILE,
        help: "the Compose files when no -f is given, :-separated",
    },
    Documented {
        name: COMPOSE_PATH_SEPARATOR,
        help: "the separator of COMPOSE_FILE's paths (default :)",
    },
    Documented {
        name: FINCTL_GATEWAY_ADMIN_URL,
        help: "publish-apis: the built-in gateway's admin API (default: its published port)",
    },
    Documented {
        name: GATEWAY_ADMIN_TOKEN,
        help: "the built-in gateway's admin token (default: compose/.env)",
    },
    Documented {
        name: FINCTL_WSO2_URL,
        help: "publish-apis --target wso2: API Manager's URL (default: https://127.0.0.1:9443)",
    },
    Documented {
        name: FINCTL_WSO2_USERNAME,
        help: "--target wso2: the publishing user (default: admin)",
    },
    Documented {
        name: FINCTL_WSO2_PASSWORD,
        help: "--target wso2: its password (default: admin)",
    },
    Documented {
        name: FINCTL_WSO2_GATEWAY_ENV,
        help: "--target wso2: the gateway environment to deploy to (default: Default)",
    },
    Documented {
        name: FINCTL_WSO2_INSECURE_TLS,
        help: "--target wso2: 1 accepts API Manager's self-signed certificate",
    },
    Documented {
        name: FINCTL_KONG_ADMIN_URL,
        help: "publish-apis --target kong: Kong's admin API (default: http://127.0.0.1:8001)",
    },
    Documented {
        name: FINCTL_KONG_ADMIN_TOKEN,
        help: "--target kong: sent as Kong-Admin-Token when set",
    },
    Documented {
        name: DOCKER_HOST,
        help: "the Docker engine (default: the local socket)",
    },
    Documented {
        name: NO_COLOR,
        help: "disable colour",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_names_are_unique() {
        let mut names: Vec<&str> = DOCUMENTED.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DOCUMENTED.len());
    }
}

/// A password or token read from the environment: kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}
