//! Authentication, authorization and rate limits of the HTTP API (issue 22), and the
//! telnet allow-list.
//!
//! One axum middleware ([`middleware`], installed in `http::router` outside the
//! `server_type` gate) does, for every request:
//!
//! 1. **Classify** ([`required_scope`]): open (health probes, `/metrics`, CORS pre-flight,
//!    the web UI's static files, any path in `[auth] open_paths`) or one of the scopes
//!    `read`, `write`, `delete`, `admin`. Open requests pass untouched: never asked for
//!    credentials, never rate-limited.
//! 2. **Authenticate** the `Authorization` header: HTTP Basic against `[[auth.users]]`
//!    (what KairosDB's Jetty basic-auth users have) or `Bearer <token>` against
//!    `[[auth.tokens]]` (`credentials.rs`). No header is the anonymous client, who has the
//!    `[auth.anonymous]` scopes (all four while `auth_enabled` is off). Wrong credentials
//!    answer 401 whether or not the user exists, in the same time.
//! 3. **Authorize**: the principal must hold the route's scope: 403 otherwise (401 for an
//!    anonymous client, so that a browser asks for a password).
//! 4. **Rate-limit** (`limit.rs`): a token bucket per principal (per peer address when
//!    anonymous) and route class: 429 with `Retry-After` when it is empty.
//!
//! A worker's `/internal/v1/*` calls are never rate-limited: they are its control nodes'
//! traffic (every write and read of the cluster), which a per-client bucket would throttle.
//! On the analytics plan's routes (`crate::plan`) the refusals are written in the plan's
//! error shape (`AUTH_ERROR`, `RATE_LIMIT_EXCEEDED`); elsewhere in KairosDB's.
//!
//! Every answer of a limited request carries `X-RateLimit-Limit` (the bucket size, `burst`),
//! `X-RateLimit-Remaining` (requests that may be sent at once now) and `X-RateLimit-Reset`
//! (seconds until the bucket is full again).
//!
//! The policy (users, tokens, scopes, limits) sits behind a lock as an `Arc` ([`Auth::replace`]),
//! so a configuration reload can swap it without touching the buckets. Deviation from
//! KairosDB: it has only one Basic-auth user with every right and no rate limits.
//!
//! Not here: password and token hashing (`credentials.rs`), the buckets (`limit.rs`).

pub mod credentials;
pub mod hash_secret;
pub mod limit;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::http::{ApiError, State};
use crate::metrics::ServerMetrics;
use credentials::{Hashed, Presented};
use limit::{Client, Decision, Limit, Limiter};

/// A right a principal holds; each API route needs one (see [`required_scope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Delete,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Delete, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Delete => "delete",
            Scope::Admin => "admin",
        }
    }

    fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Paths that need no credentials and are never rate-limited unless `open_paths` says
/// otherwise: the load-balancer probes, KairosDB's health checks, the metrics, and the
/// OpenAPI document (it describes the API, not the data).
pub const DEFAULT_OPEN_PATHS: &[&str] = &[
    "/health",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/api/v1/health/check",
    "/api/v1/health/status",
    "/api/v1/openapi.json",
];

/// The scope a request needs, or `None` when it is open. The scope map (issue 22):
///
/// | routes | scope |
/// |---|---|
/// | `POST/PUT /datapoints`, `/datapoints/gzip`, `GET /datapoints/index` | `write` |
/// | queries, `/query/tags`, name listings, `GET /metadata/...`, version, features, `/api/v1/metrics`, any other `/api/` path (`/api/v1/openapi.json` when taken out of `open_paths`) | `read` |
/// | `POST /datapoints/delete`, `DELETE /datapoints/query`, `DELETE /metric/{name}` | `delete` |
/// | `/rollups...`, `/admin/...`, `POST`/`DELETE /metadata/...`, `PUT`/`DELETE /cluster/...`, a worker's `/internal/v1/...` | `admin` |
/// | `/health...` and `/metrics` when taken out of `open_paths` | `read` |
/// | `OPTIONS` (CORS pre-flight), other paths outside `/api/` (the web UI) | open |
///
/// `open_paths` (exact paths, a trailing `/` ignored) are checked before this, and the
/// analytics plan's routes before those (`crate::plan::required_scope`: `write` for a
/// control node's `POST /metrics` and `/insert`, `read` for its `/analytics` and
/// `/aggregate`, `admin` for a worker's `/insert` and `/compute`).
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    let path = trim_slash(path);
    if method == Method::OPTIONS {
        return None;
    }
    if path.starts_with(crate::cluster::INTERNAL) {
        // A worker's internal API writes, reads and deletes everything.
        return Some(Scope::Admin);
    }
    if !path.starts_with("/api/") {
        // The probes and /metrics are open by default through `open_paths`; taken out of
        // it they need `read`. Everything else outside the API is the web UI.
        return DEFAULT_OPEN_PATHS.contains(&path).then_some(Scope::Read);
    }
    let scope = match path {
        "/api/v1/datapoints" | "/api/v1/datapoints/gzip" | "/api/v1/datapoints/index" => {
            Scope::Write
        }
        "/api/v1/datapoints/query" if method == Method::DELETE => Scope::Delete,
        "/api/v1/datapoints/delete" => Scope::Delete,
        p if p.starts_with("/api/v1/metric/") => Scope::Delete,
        p if p.starts_with("/api/v1/metadata/") && method != Method::GET => Scope::Admin,
        p if p.starts_with("/api/v1/cluster") && method != Method::GET => Scope::Admin,
        p if p == "/api/v1/rollups"
            || p.starts_with("/api/v1/rollups/")
            || p.starts_with("/api/v1/admin/") =>
        {
            Scope::Admin
        }
        _ => Scope::Read,
    };
    Some(scope)
}

// --- Configuration (the `[auth]` table of the TOML file) -------------------------------

/// The `[auth]` table: who may do what, and how often. Only in the TOML file; the simple
/// switches (`auth_enabled`, `rate_limit_*`, `telnet_allow`) are ordinary keys.
#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Paths served without credentials or limits [default: [`DEFAULT_OPEN_PATHS`]].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_paths: Option<Vec<String>>,
    /// What a request without credentials may do [default: nothing while `auth_enabled`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<AnonymousSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenSettings>,
}

impl AuthSettings {
    pub fn is_empty(&self) -> bool {
        *self == AuthSettings::default()
    }
}

/// A rate for one route class: `limits.<class> = { rate_per_minute = N, burst = B }`.
#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassLimit {
    pub rate_per_minute: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// `[auth.anonymous]`.
#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnonymousSettings {
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, ClassLimit>,
}

/// One `[[auth.users]]` entry: HTTP Basic.
#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub name: String,
    /// `kairosdb hash-secret` output: `$argon2id$...` (or `sha256:<hex>` for a random one).
    pub password_hash: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, ClassLimit>,
}

/// One `[[auth.tokens]]` entry: `Authorization: Bearer <token>`.
#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Shown in logs and 403 answers, never the token.
    pub name: String,
    /// `kairosdb hash-secret --token` output: `sha256:<hex>`.
    pub token_hash: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, ClassLimit>,
}

/// The burst of a rate that names none: ten seconds' worth, at least 1.
pub fn default_burst(per_minute: u32) -> u32 {
    per_minute.div_ceil(6).max(1)
}

// --- The resolved policy -----------------------------------------------------------------

/// What one principal (or the anonymous client) may do, and how often.
#[derive(Debug)]
struct Grant {
    name: Arc<str>,
    scopes: [bool; 4],
    /// Per route class; `None` = unlimited.
    limits: [Option<Limit>; 4],
}

impl Grant {
    fn new(
        what: &str,
        name: &str,
        scopes: &[String],
        rate: Option<u32>,
        burst: Option<u32>,
        limits: &BTreeMap<String, ClassLimit>,
        config: &Config,
    ) -> Result<Grant, String> {
        let mut granted = [false; 4];
        for s in scopes {
            let scope = Scope::from_name(s).ok_or_else(|| {
                format!("{what}: unknown scope {s:?}; expected read, write, delete or admin")
            })?;
            granted[scope.index()] = true;
        }
        let limit = |rate: u32, burst: Option<u32>| {
            (rate > 0).then(|| Limit {
                per_minute: rate,
                burst: burst.filter(|b| *b > 0).unwrap_or(default_burst(rate)),
            })
        };
        // Own rate, else the server-wide default (`rate_limit_per_minute`).
        let base = match rate {
            Some(r) => limit(r, burst),
            None => limit(
                config.rate_limit_per_minute,
                Some(burst.unwrap_or(config.rate_limit_burst)),
            ),
        };
        let mut per_class = [base; 4];
        for (class, l) in limits {
            let scope = Scope::from_name(class).ok_or_else(|| {
                format!(
                    "{what}: unknown route class {class:?} in limits; expected read, write, delete or admin"
                )
            })?;
            per_class[scope.index()] = limit(l.rate_per_minute, l.burst);
        }
        Ok(Grant {
            name: name.into(),
            scopes: granted,
            limits: per_class,
        })
    }

    fn has(&self, scope: Scope) -> bool {
        self.scopes[scope.index()]
    }
}

struct User {
    grant: Grant,
    hash: Hashed,
}

struct Token {
    grant: Grant,
    hash: [u8; 32],
}

/// Who made a request.
enum Principal<'a> {
    Anonymous,
    Known(&'a Grant),
}

/// Why a request was answered 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// No credentials where some are needed.
    Missing,
    /// Credentials that match nobody (or a malformed header).
    Invalid { bearer: bool },
}

/// Successful slow (Argon2) checks remembered, so Basic auth costs one hash per request
/// after the first. Keyed by a keyed SHA-256 of user and password (never the password).
const VERIFIED_CACHE_ENTRIES: u64 = 1_024;
const VERIFIED_CACHE_TTL: Duration = Duration::from_secs(600);

/// The resolved `[auth]` configuration of one generation of the settings.
pub struct Policy {
    enabled: bool,
    /// Which of the analytics plan's routes this node serves (`crate::plan`).
    role: crate::config::NodeRole,
    open_paths: Vec<String>,
    anonymous: Grant,
    users: Vec<User>,
    tokens: Vec<Token>,
    /// True when no request can ever be refused or limited: the middleware steps aside.
    inactive: bool,
    /// Checked for an unknown user name, so it takes as long as a wrong password.
    dummy: OnceLock<Hashed>,
    verified: moka::sync::Cache<[u8; 32], usize>,
    cache_key: [u8; 32],
}

impl Policy {
    /// Validates and resolves the auth part of `config`.
    pub fn new(config: &Config) -> Result<Policy, String> {
        let a = &config.auth;
        let anon = a.anonymous.clone().unwrap_or_default();
        let mut anonymous = Grant::new(
            "auth.anonymous",
            "anonymous",
            &anon.scopes,
            anon.rate_per_minute,
            anon.burst,
            &anon.limits,
            config,
        )?;
        if !config.auth_enabled {
            anonymous.scopes = [true; 4];
        }
        let mut names = std::collections::HashSet::new();
        let mut unique = |what: &str, name: &str| {
            if name.is_empty() || !names.insert(name.to_string()) {
                return Err(format!(
                    "{what}: name {name:?} is empty or used twice (users and tokens share names)"
                ));
            }
            Ok(())
        };
        let mut users = Vec::with_capacity(a.users.len());
        for u in &a.users {
            let what = format!("auth.users {:?}", u.name);
            unique(&what, &u.name)?;
            if u.name.contains(':') {
                return Err(format!("{what}: a Basic-auth user name cannot contain ':'"));
            }
            let hash = Hashed::parse(&u.password_hash).map_err(|e| format!("{what}: {e}"))?;
            let grant = Grant::new(
                &what,
                &u.name,
                &u.scopes,
                u.rate_per_minute,
                u.burst,
                &u.limits,
                config,
            )?;
            users.push(User { grant, hash });
        }
        let mut tokens = Vec::with_capacity(a.tokens.len());
        for t in &a.tokens {
            let what = format!("auth.tokens {:?}", t.name);
            unique(&what, &t.name)?;
            let hash = match Hashed::parse(&t.token_hash).map_err(|e| format!("{what}: {e}"))? {
                Hashed::Sha256(h) => h,
                Hashed::Argon2(_) => {
                    return Err(format!(
                        "{what}: token_hash must be sha256:<hex> (`kairosdb hash-secret --token`); \
                         tokens are random, a slow hash only costs time on every request"
                    ))
                }
            };
            let grant = Grant::new(
                &what,
                &t.name,
                &t.scopes,
                t.rate_per_minute,
                t.burst,
                &t.limits,
                config,
            )?;
            tokens.push(Token { grant, hash });
        }
        let open_paths: Vec<String> = match &a.open_paths {
            Some(p) => p.clone(),
            None => DEFAULT_OPEN_PATHS.iter().map(|p| p.to_string()).collect(),
        };
        if let Some(p) = open_paths.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("auth.open_paths: {p:?} does not start with '/'"));
        }
        let unlimited = |g: &Grant| g.limits.iter().all(Option::is_none);
        let inactive = !config.auth_enabled && unlimited(&anonymous);
        Ok(Policy {
            enabled: config.auth_enabled,
            role: config.role,
            open_paths: open_paths
                .into_iter()
                .map(|p| trim_slash(&p).to_string())
                .collect(),
            anonymous,
            users,
            tokens,
            inactive,
            dummy: OnceLock::new(),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CACHE_ENTRIES)
                .time_to_live(VERIFIED_CACHE_TTL)
                .build(),
            cache_key: credentials::random_key(),
        })
    }

    /// The scope `method path` needs here, `None` when open.
    fn scope_of(&self, method: &Method, path: &str) -> Option<Scope> {
        if let Some(scope) = crate::plan::required_scope(self.role, method, path) {
            return Some(scope);
        }
        if self.open_paths.iter().any(|p| p == trim_slash(path)) {
            return None;
        }
        required_scope(method, path)
    }

    fn bearer(&self, token: &str) -> Option<&Grant> {
        let digest = credentials::sha256(token.as_bytes());
        // Every hash is compared, in constant time, whichever matches.
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.hash.ct_eq(&digest)) {
                found = Some(&t.grant);
            }
        }
        found
    }

    /// Checks a Basic user and password (slow: call off the async workers unless cached).
    fn basic(&self, user: &str, password: &str) -> Option<usize> {
        let key = self.cache_entry(user, password);
        if let Some(i) = self.verified.get(&key) {
            return Some(i);
        }
        let found = self
            .users
            .iter()
            .position(|u| u.grant.name.as_ref() == user);
        let hash = match found {
            Some(i) => &self.users[i].hash,
            None => self.dummy(),
        };
        let ok = hash.verify(password.as_bytes());
        let i = found.filter(|_| ok)?;
        if hash.is_slow() {
            self.verified.insert(key, i);
        }
        Some(i)
    }

    /// Whether checking `user` is fast (a cached success or a SHA-256 hash).
    fn basic_is_fast(&self, user: &str, password: &str) -> bool {
        if self
            .verified
            .contains_key(&self.cache_entry(user, password))
        {
            return true;
        }
        match self.users.iter().find(|u| u.grant.name.as_ref() == user) {
            Some(u) => !u.hash.is_slow(),
            None => !self.dummy().is_slow(),
        }
    }

    fn cache_entry(&self, user: &str, password: &str) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(40 + user.len() + password.len());
        bytes.extend_from_slice(&self.cache_key);
        bytes.extend_from_slice(&(user.len() as u64).to_le_bytes());
        bytes.extend_from_slice(user.as_bytes());
        bytes.extend_from_slice(password.as_bytes());
        credentials::sha256(&bytes)
    }

    /// A hash of the same kind as the users' (Argon2 if any user has one), of nothing
    /// anybody knows.
    fn dummy(&self) -> &Hashed {
        self.dummy.get_or_init(|| {
            let slow = self.users.iter().any(|u| u.hash.is_slow());
            let secret = credentials::random_key();
            let text = if slow {
                credentials::hash_password(&String::from_utf8_lossy(&secret))
                    .unwrap_or_else(|e| panic!("BUG: hashing a dummy password failed: {e}"))
            } else {
                credentials::hash_token(&String::from_utf8_lossy(&secret))
            };
            Hashed::parse(&text).unwrap_or_else(|e| panic!("BUG: dummy hash: {e}"))
        })
    }
}

fn trim_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// The server's auth state: the current [`Policy`] and the rate-limit buckets.
pub struct Auth {
    policy: RwLock<Arc<Policy>>,
    limiter: Limiter,
    /// Argon2 checks running at once: each takes ~19 MiB and a core for tens of ms, so a
    /// flood of wrong passwords queues here instead of exhausting the blocking pool.
    slow_checks: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(config: &Config) -> Result<Auth, String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Auth {
            policy: RwLock::new(Arc::new(Policy::new(config)?)),
            limiter: Limiter::new(config.rate_limit_max_keys),
            slow_checks: tokio::sync::Semaphore::new(cpus),
        })
    }

    /// Installs a new policy (a configuration reload); the buckets are kept.
    #[allow(dead_code)] // The SIGHUP reload (issue 22, later item) calls it.
    pub fn replace(&self, config: &Config) -> Result<(), String> {
        let policy = Arc::new(Policy::new(config)?);
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
        Ok(())
    }

    fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Authenticates, authorizes and rate-limits one request (see the module comment).
/// Does the request carry `secret` in the cluster-secret header? (Constant time.)
fn cluster_secret_matches(request: &Request, secret: &str) -> bool {
    use subtle::ConstantTimeEq;
    let sent = request
        .headers()
        .get(kairosdb_cluster::client::SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    use sha2::Digest;
    let (a, b) = (
        sha2::Sha256::digest(sent),
        sha2::Sha256::digest(secret.as_bytes()),
    );
    a.ct_eq(&b).into()
}

pub async fn middleware(
    axum::extract::State(state): State,
    request: Request,
    next: Next,
) -> Response {
    let auth = &state.auth;
    // Node-to-node calls carry the cluster's secret, not a user's credentials.
    if request.uri().path().starts_with(crate::cluster::INTERNAL)
        && !state.config.cluster_secret.is_empty()
    {
        return match cluster_secret_matches(&request, &state.config.cluster_secret) {
            true => next.run(request).await,
            false => unauthorized(&state.metrics, Refusal::Missing, false),
        };
    }
    let policy = auth.policy();
    if policy.inactive {
        return next.run(request).await;
    }
    // The telemetry API's listener: its own paths, no open ones, the plan's error shape.
    let telemetry = request
        .extensions()
        .get::<crate::telemetry::Listener>()
        .is_some();
    let scope = match telemetry {
        true => crate::telemetry::required_scope(request.method(), request.uri().path()),
        false => policy.scope_of(request.method(), request.uri().path()),
    };
    let Some(scope) = scope else {
        return next.run(request).await;
    };
    let metrics = &state.metrics;
    let path = request.uri().path();
    let plan = telemetry || crate::plan::speaks_plan(state.config.role, request.method(), path);
    let internal = path.starts_with(crate::cluster::INTERNAL);
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let principal = match authenticate(auth, &policy, authorization).await {
        Ok(p) => p,
        Err(refusal) => return unauthorized(metrics, refusal, plan),
    };
    let grant = match principal {
        Principal::Known(g) => g,
        Principal::Anonymous => &policy.anonymous,
    };
    if !grant.has(scope) {
        if let Principal::Anonymous = principal {
            return unauthorized(metrics, Refusal::Missing, plan);
        }
        ServerMetrics::add(&metrics.http_forbidden, 1);
        let forbidden = ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden: {:?} does not have the {} scope needed for {} {}",
                grant.name,
                scope.name(),
                request.method(),
                request.uri().path()
            ),
        );
        return refusal(forbidden, plan, crate::plan::Code::AuthError);
    }
    let limit = grant.limits[scope.index()].filter(|_| !internal);
    let Some(limit) = limit else {
        return next.run(request).await;
    };
    let client = match principal {
        Principal::Known(g) => Client::Principal(g.name.clone()),
        Principal::Anonymous => Client::Address(peer(&request)),
    };
    let decision = auth.limiter.check(&client, scope, limit, Instant::now());
    if !decision.allowed {
        ServerMetrics::add(&metrics.http_rate_limited, 1);
        let limited = ApiError {
            retry_after: Some(ceil_secs(decision.retry_after).max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too Many Requests: the limit for {} requests is {} a minute (burst {}); retry in {} s",
                    scope.name(),
                    limit.per_minute,
                    limit.burst,
                    ceil_secs(decision.retry_after).max(1)
                ),
            )
        };
        let mut response = refusal(limited, plan, crate::plan::Code::RateLimitExceeded);
        rate_headers(&mut response, &decision);
        return response;
    }
    let mut response = next.run(request).await;
    rate_headers(&mut response, &decision);
    response
}

/// The principal presenting `authorization` (the request's header), or why it has none.
async fn authenticate<'p>(
    auth: &Auth,
    policy: &'p Arc<Policy>,
    authorization: Option<HeaderValue>,
) -> Result<Principal<'p>, Refusal> {
    let Some(value) = authorization else {
        return Ok(Principal::Anonymous);
    };
    // With authentication off the header is ignored, as KairosDB without basic auth does.
    if !policy.enabled {
        return Ok(Principal::Anonymous);
    }
    match credentials::parse_authorization(value.as_bytes()) {
        Presented::Bearer(token) => policy
            .bearer(&token)
            .map(Principal::Known)
            .ok_or(Refusal::Invalid { bearer: true }),
        Presented::Basic { user, password } => {
            let index = if policy.basic_is_fast(&user, &password) {
                policy.basic(&user, &password)
            } else {
                let _permit = auth.slow_checks.acquire().await;
                let p = policy.clone();
                tokio::task::spawn_blocking(move || p.basic(&user, &password))
                    .await
                    .ok()
                    .flatten()
            };
            index
                .map(|i| Principal::Known(&policy.users[i].grant))
                .ok_or(Refusal::Invalid { bearer: false })
        }
        Presented::Malformed => Err(Refusal::Invalid { bearer: false }),
    }
}

/// A refusal in the analytics plan's shape on its routes (`plan`), else KairosDB's.
fn refusal(e: ApiError, plan: bool, code: crate::plan::Code) -> Response {
    match plan {
        true => crate::plan::PlanError::from_api(e, code).into_response(),
        false => e.into_response(),
    }
}

/// 401 with the challenges a browser (Basic) and an API client (Bearer) understand.
fn unauthorized(metrics: &ServerMetrics, refusal: Refusal, plan: bool) -> Response {
    let message = match refusal {
        Refusal::Missing => {
            ServerMetrics::add(&metrics.http_auth_missing, 1);
            "Unauthorized: this resource needs credentials (HTTP Basic or a Bearer token)"
        }
        Refusal::Invalid { .. } => {
            ServerMetrics::add(&metrics.http_auth_failures, 1);
            "Unauthorized: invalid credentials"
        }
    };
    let e = ApiError::new(StatusCode::UNAUTHORIZED, message);
    let mut response = self::refusal(e, plan, crate::plan::Code::AuthError);
    let h = response.headers_mut();
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"kairosdb\", charset=\"UTF-8\""),
    );
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(match refusal {
            Refusal::Invalid { bearer: true } => {
                "Bearer realm=\"kairosdb\", error=\"invalid_token\""
            }
            _ => "Bearer realm=\"kairosdb\"",
        }),
    );
    response
}

fn rate_headers(response: &mut Response, d: &Decision) {
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit.burst));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(ceil_secs(d.reset)));
}

fn ceil_secs(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
}

/// The peer address the accept loop put on the request (unspecified in unit tests that
/// call the router directly).
fn peer(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip().to_canonical()
        })
}

// --- Telnet ------------------------------------------------------------------------------

/// Parses `telnet_allow`: a comma list of networks (`10.0.0.0/8`) or addresses
/// (`192.0.2.7`, taken as a /32 or /128). Empty allows every client.
pub fn parse_networks(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.parse::<ipnet::IpNet>()
                .or_else(|_| w.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    format!("invalid telnet_allow entry {w:?}; expected a CIDR such as 10.0.0.0/8")
                })
        })
        .collect()
}

/// Is `peer` in `allow` (an empty list allows everyone)? IPv4-mapped IPv6 peers are
/// matched as IPv4.
pub fn allowed(allow: &[ipnet::IpNet], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    allow.is_empty() || allow.iter().any(|n| n.contains(&peer))
}

#[cfg(test)]
mod tests;
