//! Unit tests of the scope map, the policy's validation and checks, and the middleware
//! through the router (over `NullStorage`). The black-box tests are `tests/it/auth.rs`.

use axum::body::Body;
use axum::http::Request as HttpRequest;
use kairosdb_model::NullStorage;
use tower::ServiceExt;

use super::*;
use crate::config::Settings;
use crate::http::{router, AppState};

fn config(toml: &str) -> Result<Config, String> {
    let settings = Settings::from_toml_str(toml).map_err(|e| format!("{e:#}"))?;
    Config::resolve(settings).map_err(|e| format!("{e:#}"))
}

fn token_config(extra: &str) -> String {
    format!(
        "auth_enabled = true\n{extra}\n[[auth.tokens]]\nname = \"w\"\ntoken_hash = \"{}\"\nscopes = [\"write\"]\n",
        credentials::hash_token("tok")
    )
}

#[test]
fn the_scope_map_covers_every_route_class() {
    let m = |method: Method, path: &str| required_scope(&method, path);
    assert_eq!(m(Method::POST, "/api/v1/datapoints"), Some(Scope::Write));
    assert_eq!(
        m(Method::PUT, "/api/v1/datapoints/gzip"),
        Some(Scope::Write)
    );
    assert_eq!(
        m(Method::POST, "/api/v1/datapoints/query"),
        Some(Scope::Read)
    );
    assert_eq!(m(Method::GET, "/api/v1/metricnames"), Some(Scope::Read));
    assert_eq!(m(Method::GET, "/api/v1/metadata/s/k/x"), Some(Scope::Read));
    assert_eq!(m(Method::GET, "/api/v1/no/such/thing"), Some(Scope::Read));
    assert_eq!(
        m(Method::DELETE, "/api/v1/datapoints/query"),
        Some(Scope::Delete)
    );
    assert_eq!(
        m(Method::POST, "/api/v1/datapoints/delete"),
        Some(Scope::Delete)
    );
    assert_eq!(m(Method::DELETE, "/api/v1/metric/cpu"), Some(Scope::Delete));
    assert_eq!(
        m(Method::POST, "/api/v1/metadata/s/k/x"),
        Some(Scope::Admin)
    );
    assert_eq!(m(Method::GET, "/api/v1/rollups/"), Some(Scope::Admin));
    assert_eq!(m(Method::POST, "/internal/v1/write"), Some(Scope::Admin));
    assert_eq!(m(Method::GET, "/internal/v1/health"), Some(Scope::Admin));
    assert_eq!(
        m(Method::DELETE, "/api/v1/cluster/members/7"),
        Some(Scope::Admin)
    );
    assert_eq!(
        m(Method::GET, "/api/v1/rollups/status/1"),
        Some(Scope::Admin)
    );
    assert_eq!(
        m(Method::GET, "/api/v1/admin/runningqueries"),
        Some(Scope::Admin)
    );
    assert_eq!(m(Method::OPTIONS, "/api/v1/datapoints"), None);
    assert_eq!(m(Method::GET, "/"), None);
    assert_eq!(m(Method::GET, "/query.js"), None);
    assert_eq!(m(Method::GET, "/metrics"), Some(Scope::Read), "unless open");
    assert_eq!(m(Method::GET, "/health/live/"), Some(Scope::Read));
    // A path that merely starts like one of the classes is read.
    assert_eq!(m(Method::GET, "/api/v1/rollupsx"), Some(Scope::Read));
}

#[test]
fn bad_auth_settings_are_explained() {
    let hash = credentials::hash_token("x");
    for (toml, want) in [
        (
            format!("[[auth.tokens]]\nname = \"a\"\ntoken_hash = \"{hash}\"\nscopes = [\"root\"]"),
            "unknown scope \"root\"",
        ),
        (
            format!("[[auth.tokens]]\nname = \"a\"\ntoken_hash = \"{hash}\"\nscopes = []\n[[auth.users]]\nname = \"a\"\npassword_hash = \"{hash}\"\nscopes = []"),
            "used twice",
        ),
        (
            "[[auth.tokens]]\nname = \"a\"\ntoken_hash = \"plain\"\nscopes = []".to_string(),
            "unknown secret hash",
        ),
        (
            format!("[[auth.tokens]]\nname = \"a\"\ntoken_hash = \"{hash}\"\nscopes = []\nlimits = {{ query = {{ rate_per_minute = 1 }} }}"),
            "unknown route class \"query\"",
        ),
        (
            "[auth]\nopen_paths = [\"health\"]".to_string(),
            "does not start with '/'",
        ),
        ("telnet_allow = \"10.0.0.0/33\"".to_string(), "telnet_allow"),
        (
            "[auth]\nno_such_key = 1".to_string(),
            "unknown field",
        ),
    ] {
        let e = config(&toml).err().unwrap_or_else(|| panic!("accepted: {toml}"));
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    let e = config(&format!(
        "[[auth.tokens]]\nname = \"a\"\ntoken_hash = \"{}\"\nscopes = []",
        credentials::hash_password("pw").unwrap()
    ))
    .unwrap_err();
    assert!(e.contains("token_hash must be sha256"), "{e}");
}

#[test]
fn the_auth_table_prints_and_reads_back() {
    let c = config(&token_config(
        "rate_limit_per_minute = 1000\n[auth.anonymous]\nscopes = [\"read\"]\nrate_per_minute = 60",
    ))
    .unwrap();
    let printed = c.to_toml().unwrap();
    assert!(printed.contains("[[auth.tokens]]"), "{printed}");
    let again = Config::resolve(Settings::from_toml_str(&printed).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn limits_resolve_from_class_to_principal_to_server_default() {
    let c = config(&format!(
        "rate_limit_per_minute = 600\nrate_limit_burst = 5\n\
         [[auth.tokens]]\nname = \"a\"\ntoken_hash = \"{h}\"\nscopes = []\n\
         [[auth.tokens]]\nname = \"b\"\ntoken_hash = \"{h2}\"\nscopes = []\nrate_per_minute = 60\n\
         limits = {{ admin = {{ rate_per_minute = 0 }}, read = {{ rate_per_minute = 6, burst = 2 }} }}",
        h = credentials::hash_token("1"),
        h2 = credentials::hash_token("2"),
    ))
    .unwrap();
    let p = Policy::new(&c).unwrap();
    let l = |per_minute, burst| Some(Limit { per_minute, burst });
    assert_eq!(p.tokens[0].grant.limits, [l(600, 5); 4]);
    let b = &p.tokens[1].grant.limits;
    assert_eq!(b[Scope::Write.index()], l(60, 10));
    assert_eq!(b[Scope::Read.index()], l(6, 2));
    assert_eq!(b[Scope::Admin.index()], None);
    // Anonymous gets the server default too, and every scope while auth is off.
    assert_eq!(p.anonymous.limits, [l(600, 5); 4]);
    assert!(Scope::ALL.iter().all(|s| p.anonymous.has(*s)));
    assert!(!p.inactive);
    assert!(Policy::new(&config("").unwrap()).unwrap().inactive);
}

#[test]
fn basic_checks_are_cached_and_unknown_users_take_the_same_path() {
    let c = config(&format!(
        "auth_enabled = true\n[[auth.users]]\nname = \"u\"\npassword_hash = \"{}\"\nscopes = [\"read\"]",
        credentials::hash_password("pw").unwrap()
    ))
    .unwrap();
    let p = Policy::new(&c).unwrap();
    assert!(!p.basic_is_fast("u", "pw"));
    assert!(
        !p.basic_is_fast("nobody", "pw"),
        "unknown users are slow too"
    );
    assert_eq!(p.basic("u", "wrong"), None);
    assert_eq!(p.basic("nobody", "pw"), None);
    assert!(p.dummy().is_slow());
    assert_eq!(p.basic("u", "pw"), Some(0));
    assert!(p.basic_is_fast("u", "pw"), "a success is remembered");
    assert!(!p.basic_is_fast("u", "pw2"));
    assert_eq!(p.basic("u", "pw"), Some(0));
}

#[test]
fn telnet_networks_parse_and_match() {
    let nets = parse_networks(" 10.0.0.0/8, 192.0.2.7 ,::1").unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(allowed(&nets, ip("10.1.2.3")));
    assert!(allowed(&nets, ip("192.0.2.7")));
    assert!(allowed(&nets, ip("::ffff:10.0.0.1")), "IPv4-mapped");
    assert!(allowed(&nets, ip("::1")));
    assert!(!allowed(&nets, ip("192.0.2.8")));
    assert!(!allowed(&nets, ip("127.0.0.1")));
    assert!(allowed(&[], ip("127.0.0.1")));
    assert!(parse_networks("10.0.0.0/8, nonsense").is_err());
}

fn app(c: Config) -> axum::Router {
    router(Arc::new(AppState::new(
        Arc::new(NullStorage::new()),
        Arc::new(c),
        Arc::new(ServerMetrics::default()),
        None,
    )))
}

fn from(addr: &str, path: &str) -> HttpRequest<Body> {
    let mut r = HttpRequest::get(path).body(Body::empty()).unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
    r
}

#[tokio::test]
async fn anonymous_clients_are_limited_per_address_without_auth() {
    let app = app(config("rate_limit_per_minute = 60\nrate_limit_burst = 2").unwrap());
    let status = |r| {
        let app = app.clone();
        async move { app.oneshot(r).await.unwrap() }
    };
    for _ in 0..2 {
        let r = status(from("192.0.2.1:5", "/api/v1/version")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = status(from("192.0.2.1:6", "/api/v1/version")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    // Another address has its own bucket; probes are never limited.
    let r = status(from("192.0.2.2:5", "/api/v1/version")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-ratelimit-limit"], "2");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "1");
    for _ in 0..5 {
        let r = status(from("192.0.2.1:5", "/health/live")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(!r.headers().contains_key("x-ratelimit-limit"));
    }
}

#[tokio::test]
async fn a_replaced_policy_applies_to_the_next_request() {
    let first = config(&token_config("")).unwrap();
    let state = Arc::new(AppState::new(
        Arc::new(NullStorage::new()),
        Arc::new(first),
        Arc::new(ServerMetrics::default()),
        None,
    ));
    let app = router(state.clone());
    let get = || {
        HttpRequest::get("/api/v1/version")
            .body(Body::empty())
            .unwrap()
    };
    let r = app.clone().oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    state.auth.replace(&config("").unwrap()).unwrap();
    let r = app.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_is_open_unless_open_paths_says_otherwise() {
    let get = || {
        HttpRequest::get("/api/v1/openapi.json")
            .body(Body::empty())
            .unwrap()
    };
    let open = app(config(&token_config("")).unwrap());
    let r = open.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let closed = app(config(&token_config("[auth]\nopen_paths = [\"/health\"]")).unwrap());
    let r = closed.oneshot(get()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
