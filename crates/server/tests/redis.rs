//! The Redis cache (issue 20, docs/telemetry.md "The Redis cache") against **real** Redis
//! servers: repeated telemetry listings and prompts answered from Redis, every write path
//! (telemetry, KairosDB HTTP, telnet, deletes) ending exactly the answers it changes, Redis
//! stopped and started in the middle of a load (answers stay right, `/health/ready` says
//! so), and `query_cache = "redis"` shared by two servers.
//!
//! `scripts/test.sh` installs Debian's redis-server (`scripts/redis.sh install`) and names
//! it in `KAIROSDB_TEST_REDIS`; each case starts Redis servers of its own from it, on free
//! loopback ports, and stops them. Without it every case is listed as ignored and the
//! binary prints how to run them.

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use serde_json::{json, Value};

use harness::{client, get, post, send, Server};

const ENV: &str = "KAIROSDB_TEST_REDIS";

fn main() {
    let args = Arguments::from_args();
    let cases: [(&str, fn()); 4] = [
        (
            "repeated_listings_and_prompts_are_answered_from_redis_until_a_write_changes_them",
            repeated_listings_and_prompts_are_answered_from_redis_until_a_write_changes_them,
        ),
        (
            "a_write_through_any_api_ends_exactly_the_answers_over_its_metric",
            a_write_through_any_api_ends_exactly_the_answers_over_its_metric,
        ),
        (
            "redis_stopped_and_started_mid_load_keeps_every_answer_right",
            redis_stopped_and_started_mid_load_keeps_every_answer_right,
        ),
        (
            "query_cache_redis_is_shared_by_two_servers_until_a_delete",
            query_cache_redis_is_shared_by_two_servers_until_a_delete,
        ),
    ];
    let skip = std::env::var_os(ENV).is_none();
    if skip {
        println!(
            "redis: {} Redis cache tests skipped: {ENV} is not set. Run scripts/test.sh.",
            cases.len()
        );
    }
    let trials = cases
        .into_iter()
        .map(|(name, case)| {
            Trial::test(name, move || {
                case();
                Ok(())
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A Redis server of one case, on a port of its own; killed when dropped.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis { port, child: None };
        redis.resume();
        redis
    }

    fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again) on its port, empty, and waits until it answers.
    fn resume(&mut self) {
        let binary = std::env::var(ENV).expect("KAIROSDB_TEST_REDIS");
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ping().is_none() {
            assert!(Instant::now() < deadline, "Redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn ping(&self) -> Option<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(b"PING\r\n").ok()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).ok()?;
        (&buf == b"+PONG\r\n").then_some(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server with the telemetry listener and the Redis cache of `redis`.
fn server(redis: &Redis, extra: &[(&str, &str)]) -> Server {
    let uri = redis.uri();
    let mut env = vec![
        ("KAIROSDB_TELEMETRY_BIND_ADDRESS", "127.0.0.1:0"),
        ("KAIROSDB_REDIS_URI", uri.as_str()),
    ];
    env.extend_from_slice(extra);
    Server::fresh(&env)
}

fn telemetry(server: &Server, path: &str) -> String {
    format!(
        "http://{}{path}",
        server.telemetry.expect("telemetry listener")
    )
}

async fn create(server: &Server, name: &str, tags: &[&str], value: f64, ts: i64) -> Value {
    let body = json!({"name": name, "tags": tags, "value": value, "timestamp": ts});
    let a = send(
        client()
            .post(telemetry(server, "/metrics"))
            .body(body.to_string()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
    a.json()
}

async fn list(server: &Server, query: &str) -> Value {
    let a = send(client().get(telemetry(server, &format!("/metrics?{query}")))).await;
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

/// (hits, misses, errors) of the Redis cache so far.
async fn counters(server: &Server) -> (u64, u64, u64) {
    let v = get(server, "/api/v1/metrics").await.json();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"));
    (
        n("kairosdb_redis_cache_hits_total"),
        n("kairosdb_redis_cache_misses_total"),
        n("kairosdb_redis_cache_errors_total"),
    )
}

fn values(listing: &Value) -> Vec<f64> {
    listing["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_f64().unwrap())
        .collect()
}

/// Waits until the bump thread has sent what it holds (a cached answer is served again
/// only then), at most 5 s.
async fn settled(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = get(server, "/api/v1/metrics").await.json();
        if v["kairosdb_redis_cache_pending_bumps"] == 0 && v["kairosdb_redis_cache_up"] == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "bumps never settled: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn repeated_listings_and_prompts_are_answered_from_redis_until_a_write_changes_them() {
    let redis = Redis::start();
    let server = server(&redis, &[]);
    // Recent records, so that the prompt's default range (the last 24 hours) has them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    block_on(async {
        for i in 0..20 {
            let ts = now - 60_000 + i64::from(i);
            create(&server, "requests", &["host:web-1"], f64::from(i), ts).await;
        }
        settled(&server).await;
        let first = list(&server, "name=requests&limit=5").await;
        let (hits0, misses0, _) = counters(&server).await;
        for _ in 0..100 {
            assert_eq!(list(&server, "name=requests&limit=5").await, first);
        }
        let (hits, misses, errors) = counters(&server).await;
        let rate = (hits - hits0) as f64 / ((hits - hits0) + (misses - misses0)) as f64;
        assert!(rate >= 0.9, "hit rate {rate} of 100 repeated listings");
        assert_eq!(errors, 0);

        // Tags in another order are the same listing.
        list(&server, "name=requests&tag=host:web-1&limit=5").await;
        let (h1, _, _) = counters(&server).await;
        list(&server, "tag=host:web-1&name=requests&limit=5").await;
        assert_eq!(counters(&server).await.0, h1 + 1, "the same listing, a hit");

        // A prompt asked twice in one second is answered once.
        let prompt = "/query?prompt=max%20requests%20on%20host%20web-1";
        let url = telemetry(&server, prompt);
        let one = send(client().get(&url)).await;
        assert_eq!(one.status, 200, "{}", one.text());
        let (h2, _, _) = counters(&server).await;
        let two = send(client().get(&url)).await;
        assert_eq!(two.json()["results"], one.json()["results"]);
        let (h3, _, _) = counters(&server).await;
        // Unless the second crossed into the next second (then a miss: allowed once).
        if h3 == h2 {
            let three = send(client().get(&url)).await;
            assert_eq!(three.json()["results"], one.json()["results"]);
            assert_eq!(counters(&server).await.0, h3 + 1);
        }

        // A write to the metric ends the listing: the next one has the new record.
        create(&server, "requests", &["host:web-1"], 99.0, now - 1_000).await;
        let after = list(&server, "name=requests&limit=5").await;
        assert_eq!(values(&after)[0], 99.0, "nothing stale after a write");
        let one = send(client().get(&url)).await.json();
        assert_eq!(
            one["results"][0]["value"], 99.0,
            "the prompt's answer too: {one}"
        );
    });
}

fn a_write_through_any_api_ends_exactly_the_answers_over_its_metric() {
    let redis = Redis::start();
    let server = server(&redis, &[]);
    block_on(async {
        create(&server, "a", &["host:x"], 1.0, 1_000).await;
        create(&server, "b", &["host:x"], 1.0, 1_000).await;
        settled(&server).await;
        list(&server, "name=a").await;
        list(&server, "name=b").await;
        let hits = |c: (u64, u64, u64)| c.0;

        // KairosDB HTTP ingest into b: a's listing stays cached, b's is read again.
        let ingest = json!([{"name": "b", "tags": {"host": "x"}, "datapoints": [[2000, 2]]}]);
        assert_eq!(
            post(&server, "/api/v1/datapoints", ingest.to_string())
                .await
                .status,
            204
        );
        let before = hits(counters(&server).await);
        list(&server, "name=a").await;
        assert_eq!(
            hits(counters(&server).await),
            before + 1,
            "a's listing is still valid"
        );
        assert_eq!(values(&list(&server, "name=b").await), vec![2.0, 1.0]);

        // telnet into a.
        let mut telnet = server.telnet();
        telnet.send(b"put a 3 3 host=x\n");
        drop(telnet);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = values(&list(&server, "name=a").await);
            if v == vec![3.0, 1.0] {
                break;
            }
            assert_eq!(v, vec![1.0], "only the old answer or the new one");
            assert!(Instant::now() < deadline, "the telnet point never showed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // A KairosDB delete of a: the listing no longer has it.
        let delete = json!({"start_absolute": 0, "metrics": [{"name": "a"}]});
        let d = post(&server, "/api/v1/datapoints/delete", delete.to_string()).await;
        assert_eq!(d.status, 204, "{}", d.text());
        assert!(values(&list(&server, "name=a").await).is_empty());

        // A listing over every metric is ended by a write to any.
        let everything = list(&server, "limit=10").await;
        create(&server, "c", &["host:x"], 7.0, 9_000).await;
        let now = list(&server, "limit=10").await;
        assert_ne!(now, everything);
        assert_eq!(values(&now)[0], 7.0);
        assert_eq!(counters(&server).await.2, 0, "no Redis errors");
    });
}

fn redis_stopped_and_started_mid_load_keeps_every_answer_right() {
    let mut redis = Redis::start();
    let server = server(&redis, &[("KAIROSDB_REDIS_TIMEOUT_MS", "50")]);
    block_on(async {
        let mut ts = 10_000i64;
        // Each step writes one record and lists newest first: the listing must start with
        // it, whatever Redis is doing.
        let mut step = |phase: &'static str| {
            ts += 1;
            let server = &server;
            async move {
                create(server, "load", &["phase:x"], ts as f64, ts).await;
                let top = list(server, "name=load&limit=3").await;
                assert_eq!(values(&top)[0], ts as f64, "stale answer while {phase}");
                let again = list(server, "name=load&limit=3").await;
                assert_eq!(values(&again)[0], ts as f64, "stale repeat while {phase}");
            }
        };
        for _ in 0..50 {
            step("Redis up").await;
        }
        let (hits_up, _, _) = counters(&server).await;
        assert!(hits_up > 0, "repeats were served from Redis");

        redis.stop();
        let stopped = Instant::now();
        for _ in 0..50 {
            step("Redis down").await;
        }
        let ready = get(&server, "/health/ready").await;
        assert_eq!(
            ready.status, 200,
            "Redis down does not take the server out of rotation"
        );
        let body = ready.json();
        assert_eq!(body["cache"], "degraded", "{body}");
        assert!(body["detail"].as_str().unwrap().contains("Redis"), "{body}");
        assert!(counters(&server).await.2 > 0, "the failures are counted");
        let took = stopped.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "50 steps without Redis took {took:?}"
        );

        redis.resume();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            step("Redis back").await;
            let body = get(&server, "/health/ready").await.json();
            if body.get("cache").is_none() {
                break;
            }
            assert!(Instant::now() < deadline, "never recovered: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (hits_back, _, _) = counters(&server).await;
        for _ in 0..20 {
            step("Redis back").await;
        }
        assert!(
            counters(&server).await.0 > hits_back,
            "served from Redis again"
        );
        // Every record written is listed once.
        let all = list(&server, "name=load&limit=10000").await;
        assert_eq!(values(&all).len() as i64, ts - 10_000);
    });
}

fn query_cache_redis_is_shared_by_two_servers_until_a_delete() {
    let redis = Redis::start();
    let shared = [("KAIROSDB_QUERY_CACHE", "redis")];
    let one = server(&redis, &shared);
    let two = server(&redis, &shared);
    block_on(async {
        let ingest = json!([{"name": "m", "tags": {"h": "a"}, "datapoints": [[1000, 5]]}]);
        assert_eq!(
            post(&one, "/api/v1/datapoints", ingest.to_string())
                .await
                .status,
            204
        );
        settled(&one).await;
        let query = json!({"start_absolute": 0, "cache_time": 60, "metrics": [{"name": "m"}]});
        let first = post(&one, "/api/v1/datapoints/query", query.to_string()).await;
        assert_eq!(first.json()["queries"][0]["sample_size"], 1);
        // The second server stores nothing of m: its answer can only come from the read
        // the first one kept in Redis.
        let borrowed = post(&two, "/api/v1/datapoints/query", query.to_string()).await;
        assert_eq!(
            borrowed.json()["queries"][0]["results"],
            first.json()["queries"][0]["results"]
        );
        let v = get(&two, "/api/v1/metrics").await.json();
        assert_eq!(v["kairosdb_query_cache_hits_total"], 1, "{v}");
        // Without cache_time each reads its own store.
        let plain = json!({"start_absolute": 0, "metrics": [{"name": "m"}]});
        let own = post(&two, "/api/v1/datapoints/query", plain.to_string()).await;
        assert_eq!(own.json()["queries"][0]["sample_size"], 0);

        // A delete of m on the first server ends m's cached reads everywhere.
        let delete = json!({"start_absolute": 0, "metrics": [{"name": "m"}]});
        let d = post(&one, "/api/v1/datapoints/delete", delete.to_string()).await;
        assert_eq!(d.status, 204);
        settled(&one).await;
        let after = post(&two, "/api/v1/datapoints/query", query.to_string()).await;
        assert_eq!(
            after.json()["queries"][0]["sample_size"],
            0,
            "{}",
            after.text()
        );
    });
}
