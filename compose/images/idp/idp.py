#!/usr/bin/env python3
"""finctl offline IdP: Canaille (OIDC + SCIM 2.0 + dynamic client registration)
configured to stand in for Keycloak on port 8080.

Start-up, in order:
  1. load or create the signing key (RSA 2048, alg RS256) in IDP_DATA_DIR;
  2. build the Canaille app (sqlite in IDP_DATA_DIR, migrations applied); on a
     new volume the database starts as a copy of the template the image build
     made (`idp.py --prepare-template`: migrations and seed already applied),
     which saves the slowest part of a first start;
  3. apply the seed file idempotently: the admin client (users, roles and the
     other clients come from `finctl bootstrap identity`, through SCIM and
     the admin API below, as on Keycloak);
  4. self-test in-process: discovery, JWKS, a client_credentials token;
  5. only then bind the port, so "port answers" means "can issue tokens".

The issuer is fixed by IDP_ISSUER and never derived from the Host header, so
tokens are identical whether fetched from the host or from inside the Docker
network. Endpoint URLs in the discovery document do follow the request's Host
(like Keycloak's dynamic backchannel), so a client on the host can follow them.

Environment (defaults in brackets):
  IDP_ISSUER                 [http://keycloak:8080]  "iss" of every token
  IDP_BIND                   [0.0.0.0:8080]
  IDP_DATA_DIR               [/var/lib/idp]          sqlite db, keys, secret
  IDP_SEED_FILE              [/etc/idp/seed.toml]
  IDP_ADMIN_CLIENT_ID        [finctl-admin]          the seed's admin client
  IDP_ADMIN_CLIENT_SECRET    [finctl-admin-dev-secret] via seed.toml secret_env
  IDP_JWKS_FILE              [$IDP_DATA_DIR/jwks.json] private JWK set (JSON)
  IDP_SECRET_KEY             [generated, kept in $IDP_DATA_DIR/secret_key]
  IDP_ACCESS_TOKEN_LIFETIME  [3600]                  seconds
  IDP_DCR_OPEN               [true]  dynamic client registration without token
  IDP_LOG_LEVEL              [INFO]
  IDP_TEMPLATE_DB            [/opt/idp/template/canaille.sqlite]

`idp.py --check-only` runs steps 1 to 4 and exits; `idp.py --prepare-template`
(image build) writes IDP_TEMPLATE_DB from the seed file and exits.
"""

import asyncio
import base64
import json
import logging
import os
import secrets
import signal
import sys
import time
import tomllib

STARTED = time.monotonic()

log = logging.getLogger("idp")

# Authlib refuses a plain-http issuer ("issuer MUST use https") unless this is
# set; the stack talks plain http inside the Docker network, like Keycloak in
# dev mode.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


def env(name, default):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default):
    return env(name, "true" if default else "false").lower() in ("1", "true", "yes", "on")


ISSUER = env("IDP_ISSUER", "http://keycloak:8080").rstrip("/")
BIND = env("IDP_BIND", "0.0.0.0:8080")
DATA_DIR = env("IDP_DATA_DIR", "/var/lib/idp")
SEED_FILE = env("IDP_SEED_FILE", "/etc/idp/seed.toml")
JWKS_FILE = env("IDP_JWKS_FILE", os.path.join(DATA_DIR, "jwks.json"))
TEMPLATE_DB = env("IDP_TEMPLATE_DB", "/opt/idp/template/canaille.sqlite")
# The one client the image starts with (seed.toml): the admin API's and SCIM's
# credential for `finctl bootstrap identity`, as KEYCLOAK_ADMIN is Keycloak's.
ADMIN_CLIENT_ID = env("IDP_ADMIN_CLIENT_ID", "finctl-admin")
TOKEN_LIFETIME = int(env("IDP_ACCESS_TOKEN_LIFETIME", "3600"))
DCR_OPEN = env_bool("IDP_DCR_OPEN", True)
LOG_LEVEL = env("IDP_LOG_LEVEL", "INFO").upper()


def write_private(path, text):
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def new_signing_key():
    """A private RSA JWK with alg=RS256 (Canaille picks the signing key by
    alg; without it tokens may be signed with another key)."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, auto_kid=True)
    return dict(key.as_dict(private=True), alg="RS256", use="sig")


def load_or_create_jwks():
    """Private JWK set; every RSA key gets alg=RS256 (see new_signing_key)."""
    if os.path.exists(JWKS_FILE):
        with open(JWKS_FILE) as f:
            data = json.load(f)
        keys = data["keys"] if isinstance(data, dict) else data
    else:
        keys = [new_signing_key()]
        write_private(JWKS_FILE, json.dumps({"keys": keys}))
        log.info("generated RS256 signing key %s in %s", keys[0]["kid"], JWKS_FILE)
    for k in keys:
        if k.get("kty") == "RSA":
            k.setdefault("alg", "RS256")
    return keys


def load_or_create_secret_key():
    if os.environ.get("IDP_SECRET_KEY"):
        return os.environ["IDP_SECRET_KEY"]
    path = os.path.join(DATA_DIR, "secret_key")
    if not os.path.exists(path):
        write_private(path, secrets.token_urlsafe(48))
    with open(path) as f:
        return f.read().strip()


def load_seed():
    with open(SEED_FILE, "rb") as f:
        return tomllib.load(f)


def skip_attribute_docstrings():
    """scim2-models asks pydantic to read every field's docstring from the
    source (`use_attribute_docstrings`), which costs about a second of CPU at
    each start for descriptions nothing here reads. Turn that off; validation
    is unchanged."""
    try:
        from pydantic._internal import _fields

        _fields.extract_docstrings_from_cls = lambda cls, use_inspect=False: {}
    except (ImportError, AttributeError):  # another pydantic: just slower
        log.debug("pydantic docstring extraction left on")


def database_path(data_dir):
    return os.path.join(data_dir, "canaille.sqlite")


def start_from_template():
    """A new volume's database starts as a copy of the image's template
    (schema migrated, seed applied), written under a temporary name first so an
    interrupted copy is never mistaken for a database."""
    target = database_path(DATA_DIR)
    if os.path.exists(target) or not os.path.exists(TEMPLATE_DB):
        return False
    import shutil

    shutil.copyfile(TEMPLATE_DB, target + ".tmp")
    os.replace(target + ".tmp", target)
    return True


def make_config(seed, jwks, secret_key, data_dir=None):
    admin_groups = seed.get("admin_groups", ["admin"])
    return {
        "SECRET_KEY": secret_key,
        "PREFERRED_URL_SCHEME": "http",
        "OAUTH2_TOKEN_EXPIRES_IN": {
            grant: TOKEN_LIFETIME
            for grant in ("authorization_code", "implicit", "password", "client_credentials",
                          "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer")
        },
        "CANAILLE": {
            "NAME": seed.get("realm", "innover"),
            "LOGIN_ATTRIBUTES": ["user_name", "emails"],
            "ENABLE_PASSWORD_RECOVERY": False,
            "ENABLE_INTRUDER_LOCKOUT": False,
            "ACL": {
                "DEFAULT": {
                    "PERMISSIONS": ["edit_self", "use_oidc"],
                    "READ": ["user_name", "groups", "lock_date"],
                    "WRITE": ["given_name", "family_name", "display_name", "password",
                              "emails", "phone_numbers", "preferred_language"],
                },
                # Users of these groups may use SCIM with their own (password-grant)
                # token and manage everything in the web UI.
                "ADMIN": {
                    "FILTER": [{"groups": g} for g in admin_groups],
                    "PERMISSIONS": ["manage_users", "manage_all_groups", "manage_oidc",
                                    "delete_account", "impersonate_users"],
                    "WRITE": ["groups", "lock_date"],
                },
            },
        },
        "CANAILLE_SQL": {
            "DATABASE_URI": "sqlite:///" + database_path(data_dir or DATA_DIR),
            "AUTO_MIGRATE": True,
            "POOL_SIZE": 2,
        },
        "CANAILLE_OIDC": {
            "ACTIVE_JWKS": jwks,
            "DYNAMIC_CLIENT_REGISTRATION_OPEN": DCR_OPEN,
            "REQUIRE_NONCE": False,
        },
        "CANAILLE_SCIM": {"ENABLE_SERVER": True, "ENABLE_CLIENT": False},
    }


def fix_issuer():
    """Canaille takes the issuer from SERVER_NAME or the request's URL root.
    SERVER_NAME cannot be used: Canaille then redirects (GET) or rejects with
    400 (POST) every request whose Host differs, e.g. 127.0.0.1:PORT from the
    host. So replace its get_issuer() with the configured constant."""
    import canaille.oidc.metadata
    import canaille.oidc.provider

    def get_issuer():
        return ISSUER

    canaille.oidc.provider.get_issuer = get_issuer
    canaille.oidc.metadata.get_issuer = get_issuer


def add_token_ids():
    """Canaille's JWT access tokens have no `jti`, so two password-grant tokens for one user
    in the same second are byte-identical, and the second fails with a 500 (tokens are
    stored with a unique access_token): `finctl token` twice in a row would break. Give every
    JWT a random `jti`, as Keycloak does."""
    import canaille.oidc.provider as provider

    original = provider.generate_id_token

    def generate_id_token(*args, **kwargs):
        if "user_info" in kwargs:
            info = dict(kwargs["user_info"] or {})
            info.setdefault("jti", secrets.token_urlsafe(16))
            kwargs["user_info"] = info
        return original(*args, **kwargs)

    provider.generate_id_token = generate_id_token


def add_conflict_handler(app):
    """Canaille answers a SCIM create of an existing userName / group with a
    500 HTML page (uncaught IntegrityError). Answer 409 with a SCIM error, as
    RFC 7644 3.3 asks, and roll the session back."""
    from flask import jsonify, request
    from sqlalchemy.exc import IntegrityError

    from canaille.backends import Backend

    def conflict(err):
        try:
            Backend.instance.db_session.rollback()
        except Exception:  # pragma: no cover
            pass
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "409", "scimType": "uniqueness",
                "detail": "resource already exists: " + str(err.orig)}
        resp = jsonify(body)
        resp.status_code = 409
        if request.path.startswith("/scim/"):
            resp.headers["Content-Type"] = "application/scim+json"
        return resp

    app.register_error_handler(IntegrityError, conflict)


# Keycloak's endpoint paths, answered by the matching Canaille endpoint, so a
# client written for Keycloak's layout also works here (any realm name).
KEYCLOAK_PATHS = {
    ".well-known/openid-configuration": "/.well-known/openid-configuration",
    "protocol/openid-connect/token": "/oauth/token",
    "protocol/openid-connect/certs": "/oauth/jwks.json",
    "protocol/openid-connect/userinfo": "/oauth/userinfo",
    "protocol/openid-connect/token/introspect": "/oauth/introspect",
    "protocol/openid-connect/revoke": "/oauth/revoke",
    "protocol/openid-connect/auth": "/oauth/authorize",
    "protocol/openid-connect/logout": "/oauth/end_session",
    "clients-registrations/openid-connect": "/oauth/register",
}


def keycloak_paths(wsgi_app):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/realms/"):
            parts = path.split("/", 3)  # "", "realms", realm, rest
            if len(parts) == 4 and parts[3].rstrip("/") in KEYCLOAK_PATHS:
                environ["PATH_INFO"] = KEYCLOAK_PATHS[parts[3].rstrip("/")]
        return wsgi_app(environ, start_response)

    return app


def add_admin_api(app):
    """`/admin/clients/<client_id>` (GET, PUT): read and converge one OAuth
    client, for `finctl bootstrap identity`. Canaille has no client API but
    RFC 7591 registration, which cannot choose the client_id or secret that
    the declarations name. Authorised by HTTP Basic of the admin client
    (IDP_ADMIN_CLIENT_ID, from the seed), the way Keycloak's admin API is
    reached with KEYCLOAK_ADMIN: the one credential the image starts with."""
    import datetime
    import hmac

    from flask import jsonify, request

    from canaille.app import models
    from canaille.backends import Backend

    def error(status, code, detail):
        resp = jsonify({"error": code, "error_description": detail})
        resp.status_code = status
        return resp

    def authorised():
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username != ADMIN_CLIENT_ID:
            return False
        client = Backend.instance.get(models.Client, client_id=ADMIN_CLIENT_ID)
        return client is not None and hmac.compare_digest(
            (client.client_secret or "").encode(), (auth.password or "").encode())

    def view(client):
        return {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "grant_types": list(client.grant_types or []),
            "redirect_uris": list(client.redirect_uris or []),
            "scope": list(client.scope or []),
            "audience": [c.client_id for c in (client.audience or [])],
            "managed_by": client.software_id,
        }

    def clients(client_id):
        if not authorised():
            resp = error(401, "invalid_client", "HTTP Basic credentials of the admin client expected")
            resp.headers["WWW-Authenticate"] = 'Basic realm="idp-admin"'
            return resp
        b = Backend.instance
        client = b.get(models.Client, client_id=client_id)
        if request.method == "GET":
            if client is None:
                return error(404, "not_found", f"no client {client_id}")
            return jsonify(view(client))
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "invalid_request", "expected a JSON object")
        unknown = set(body) - {"client_secret", "grant_types", "redirect_uris", "scope", "audience"}
        if unknown:
            return error(400, "invalid_request", "unknown fields: " + ", ".join(sorted(unknown)))
        if not body.get("client_secret"):
            return error(400, "invalid_request", "client_secret is required")
        wanted = dict(
            client_name=client_id,
            client_secret=body["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            grant_types=list(body.get("grant_types") or ["client_credentials"]),
            response_types=["code"],
            scope=list(body.get("scope") or ["openid"]),
            redirect_uris=list(body.get("redirect_uris") or []),
            software_id="finctl",
        )
        created = client is None
        if created:
            client = models.Client(
                client_id=client_id,
                client_id_issued_at=datetime.datetime.now(datetime.timezone.utc),
                **wanted,
            )
            b.save(client)
        else:
            for k, v in wanted.items():
                setattr(client, k, v)
        audience = []
        for aid in body.get("audience") or [client_id]:
            other = client if aid == client_id else b.get(models.Client, client_id=aid)
            if other is None:
                return error(400, "invalid_request", f"audience {aid} is not a client")
            audience.append(other)
        client.audience = audience
        b.save(client)
        log.info("admin API: client %s %s", client_id, "created" if created else "updated")
        resp = jsonify(view(client))
        resp.status_code = 201 if created else 200
        return resp

    # An API authorised per request, not a browser form: no CSRF token (as Canaille's own
    # OAuth endpoints).
    from canaille.app.flask import csrf

    app.add_url_rule("/admin/clients/<client_id>", "idp_admin_clients", csrf.exempt(clients),
                     methods=["GET", "PUT"])


def create_app(config):
    import canaille

    fix_issuer()
    add_token_ids()
    app = canaille.create_app(config=config)
    add_conflict_handler(app)
    add_admin_api(app)
    app.wsgi_app = keycloak_paths(app.wsgi_app)
    return app


def apply_seed(app, seed):
    from canaille.app import models
    from canaille.backends import Backend

    domain = seed.get("email_domain", "innover.example")
    created = []
    with app.app_context(), Backend.instance.session():
        b = Backend.instance

        groups = {}
        for name in seed.get("groups", []):
            group = b.get(models.Group, display_name=name)
            if group is None:
                group = models.Group(display_name=name, description=f"{name} role")
                b.save(group)
                created.append(f"group {name}")
            groups[name] = group

        for spec in seed.get("users", []):
            name = spec["name"]
            email = spec.get("email", f"{name}@{domain}")
            user = b.get(models.User, user_name=name)
            if user is None:
                user = models.User(
                    user_name=name,
                    formatted_name=spec.get("display_name", name),
                    display_name=name,
                    given_name=spec.get("given_name", name),
                    family_name=spec.get("family_name", seed.get("realm", "innover")),
                    emails=[email],
                )
                b.save(user)
                b.set_user_password(user, spec.get("password", name))
                created.append(f"user {name}")
            for gname in spec.get("groups", []):
                group = groups.get(gname) or b.get(models.Group, display_name=gname)
                if group is None:
                    group = models.Group(display_name=gname)
                    b.save(group)
                    groups[gname] = group
                    created.append(f"group {gname}")
                b.reload(group)
                if user not in group.members:
                    group.members = group.members + [user]
                    b.save(group)

        for spec in seed.get("clients", []):
            cid = spec["client_id"]
            secret = os.environ.get(spec.get("secret_env", ""), "") or spec.get("secret")
            wanted = dict(
                client_name=spec.get("client_name", cid),
                client_secret=secret,
                token_endpoint_auth_method="client_secret_basic",
                grant_types=spec.get("grant_types", ["client_credentials"]),
                response_types=spec.get("response_types", ["code"]),
                scope=spec.get("scope", ["openid"]),
                redirect_uris=spec.get("redirect_uris", []),
                client_uri=spec.get("client_uri"),
            )
            client = b.get(models.Client, client_id=cid)
            if client is None:
                import datetime

                client = models.Client(
                    client_id=cid,
                    client_id_issued_at=datetime.datetime.now(datetime.timezone.utc),
                    **wanted,
                )
                b.save(client)
                created.append(f"client {cid}")
            else:
                changed = [k for k, v in wanted.items() if getattr(client, k) != v]
                for k in changed:
                    setattr(client, k, wanted[k])
                if changed:
                    created.append(f"client {cid} updated ({', '.join(changed)})")
            # The access token's "aud" is the client's audience list.
            if client not in (client.audience or []):
                client.audience = [client]
            b.save(client)

    log.info("seed %s applied: %s", SEED_FILE, ", ".join(created) or "nothing new")


def self_test(app, seed):
    """Issue (and delete) one client_credentials token through the real HTTP
    stack, in-process, before the port is bound."""
    from canaille.app import models
    from canaille.backends import Backend

    clients = seed.get("clients", [])
    c = app.test_client()
    r = c.get("/.well-known/openid-configuration")
    assert r.status_code == 200 and r.json["issuer"] == ISSUER, r.data
    r = c.get("/oauth/jwks.json")
    assert r.status_code == 200 and any(k.get("alg") == "RS256" for k in r.json["keys"]), r.data
    if not clients:
        return
    spec = clients[0]
    secret = os.environ.get(spec.get("secret_env", ""), "") or spec.get("secret")
    basic = base64.b64encode(f"{spec['client_id']}:{secret}".encode()).decode()
    r = c.post("/oauth/token", data={"grant_type": "client_credentials"},
               headers={"Authorization": "Basic " + basic})
    assert r.status_code == 200 and "access_token" in r.json, r.data
    with app.app_context(), Backend.instance.session():
        for t in Backend.instance.query(models.Token, access_token=r.json["access_token"]):
            Backend.instance.delete(t)
    log.info("self-test passed: discovery, JWKS (RS256), client_credentials token")


def serve(app):
    from hypercorn.asyncio import serve as hserve
    from hypercorn.config import Config

    config = Config()
    config.bind = [BIND]
    config.accesslog = "-" if LOG_LEVEL == "DEBUG" else None
    config.errorlog = "-"
    config.graceful_timeout = 2

    stop = asyncio.Event()

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("listening on %s, issuer %s", BIND, ISSUER)
        await hserve(app, config, mode="wsgi", shutdown_trigger=stop.wait)

    asyncio.run(main())


def prepare_template():
    """Image build: migrate a new database and apply the seed to it, with a
    throwaway signing key and secret (neither is stored in the database)."""
    data_dir = os.path.dirname(TEMPLATE_DB)
    os.makedirs(data_dir, exist_ok=True)
    if os.path.exists(database_path(data_dir)):
        os.remove(database_path(data_dir))
    seed = load_seed()
    config = make_config(seed, [new_signing_key()], secrets.token_urlsafe(48), data_dir)
    apply_seed(create_app(config), seed)
    if database_path(data_dir) != TEMPLATE_DB:
        os.replace(database_path(data_dir), TEMPLATE_DB)
    log.info("template database written to %s", TEMPLATE_DB)


def main():
    # Own handler: Canaille's logging setup raises the root logger to WARNING.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(LOG_LEVEL)
    log.propagate = False
    skip_attribute_docstrings()
    if "--prepare-template" in sys.argv:
        prepare_template()
        return
    os.makedirs(DATA_DIR, exist_ok=True)
    phases = []
    clock = time.monotonic()

    def phase(name):
        nonlocal clock
        now = time.monotonic()
        phases.append(f"{name} {now - clock:.2f}s")
        clock = now

    seed = load_seed()
    config = make_config(seed, load_or_create_jwks(), load_or_create_secret_key())
    phase("keys")
    if start_from_template():
        phase("database from template")
    app = create_app(config)
    phase("app")
    apply_seed(app, seed)
    phase("seed")
    self_test(app, seed)
    phase("self-test")
    log.info("ready after %.2fs (%s)", time.monotonic() - STARTED, ", ".join(phases))
    if "--check-only" in sys.argv:
        return
    serve(app)


if __name__ == "__main__":
    main()
