//! Every environment variable the gateway reads, in one place (the compose file and
//! `finctl publish-apis` use the same names).

/// Public listener (default 8280).
pub const PORT: &str = "PORT";
/// Admin listener: the admin API and `/metrics` (default 8281).
pub const ADMIN_PORT: &str = "ADMIN_PORT";
/// The admin API's bearer token (required).
pub const GATEWAY_ADMIN_TOKEN: &str = "GATEWAY_ADMIN_TOKEN";
/// Where the route table is stored (default [`DEFAULT_ROUTES_FILE`]).
pub const GATEWAY_ROUTES_FILE: &str = "GATEWAY_ROUTES_FILE";

pub const DEFAULT_PORT: u16 = 8280;
pub const DEFAULT_ADMIN_PORT: u16 = 8281;
pub const DEFAULT_ROUTES_FILE: &str = "/var/lib/gateway/routes.json";
