//! Roll-ups end to end on the embedded engine (spec §1.14, §13.1): the API's bodies and
//! texts, a task rolling up on its schedule with its status and metrics, and a `kill -9`
//! in the middle of rolling up that neither skips nor repeats a period.

use std::time::{Duration, Instant};

use crate::harness::{client, get, post, read_back, send, Answer, Server};

/// `cpu{host=a}` = 1 four times a second over `[from, to)` (whole seconds).
async fn write_cpu(server: &Server, from: i64, to: i64) {
    let points: Vec<serde_json::Value> = (from..to)
        .step_by(250)
        .map(|t| serde_json::json!([t, 1]))
        .collect();
    let body =
        serde_json::json!([{ "name": "cpu", "tags": { "host": "a" }, "datapoints": points }]);
    let a = post(server, "/api/v1/datapoints", body.to_string()).await;
    assert_eq!(a.status, 204, "{}", a.text());
}

/// A task rolling `cpu` up into `save_as` by `sum` per `period_secs`, every second.
fn task(name: &str, save_as: &str, period_secs: u32) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "execution_interval": { "value": 1, "unit": "seconds" },
        "rollups": [{
            "save_as": save_as,
            "query": {
                "start_relative": { "value": 1, "unit": "hours" },
                "metrics": [{
                    "name": "cpu",
                    "tags": { "host": ["a"] },
                    "aggregators": [{ "name": "sum", "sampling": { "value": period_secs, "unit": "seconds" } }]
                }]
            }
        }]
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn put(server: &Server, path: &str, body: String) -> Answer {
    send(client().put(server.url(path)).body(body)).await
}

async fn delete(server: &Server, path: &str) -> Answer {
    send(client().delete(server.url(path))).await
}

#[tokio::test]
async fn the_api_creates_lists_reads_replaces_and_deletes_tasks_with_kairosdbs_bodies() {
    let server = Server::fresh(&[("KAIROSDB_ROLLUPS", "false")]);
    let created = post(
        &server,
        "/api/v1/rollups",
        task("Daily", "cpu.daily", 60).to_string(),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(body["name"], "Daily");
    assert_eq!(body["attributes"]["url"], format!("/api/v1/rollups/{id}"));

    // Read: the submitted JSON (serde_json sent its keys sorted) with the id first.
    let one = get(&server, &format!("/api/v1/rollups/{id}")).await;
    assert_eq!(one.status, 200);
    assert!(
        one.text()
            .starts_with(&format!(r#"{{"id":"{id}","execution_interval""#)),
        "{}",
        one.text()
    );
    assert_eq!(one.json()["rollups"][0]["save_as"], "cpu.daily");

    let list = get(&server, "/api/v1/rollups").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    assert_eq!(list.json()[0]["id"], id.as_str());

    // Replace: same id, new content, the short answer.
    let replaced = put(
        &server,
        &format!("/api/v1/rollups/{id}"),
        task("Hourly", "cpu.hourly", 60).to_string(),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(replaced.json()["id"], id.as_str());
    assert_eq!(replaced.json()["name"], "Hourly");
    let one = get(&server, &format!("/api/v1/rollups/{id}")).await;
    assert_eq!(one.json()["rollups"][0]["save_as"], "cpu.hourly");

    // The task is in the metadata store where KairosDB keeps it; the service is reserved.
    let hidden = get(&server, "/api/v1/metadata/_Rollups/Config").await;
    assert_eq!(hidden.status, 401);

    let missing = get(&server, "/api/v1/rollups/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.errors(), ["Resource not found for id nope"]);
    let status = get(&server, &format!("/api/v1/rollups/status/{id}")).await;
    assert_eq!(status.status, 404);
    assert_eq!(status.errors(), [format!("Status not found for id {id}")]);
    let put_missing = put(
        &server,
        "/api/v1/rollups/nope",
        task("x", "y", 1).to_string(),
    )
    .await;
    assert_eq!(put_missing.status, 404);
    assert_eq!(put_missing.errors(), ["Resource not found for id nope"]);

    let deleted = delete(&server, &format!("/api/v1/rollups/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        delete(&server, &format!("/api/v1/rollups/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(get(&server, "/api/v1/rollups").await.text(), "[]");
}

#[tokio::test]
async fn invalid_tasks_are_refused_with_kairosdbs_messages() {
    let server = Server::fresh(&[("KAIROSDB_ROLLUPS", "false")]);
    let mut no_save_as = task("t", "", 60);
    let cases = [
        (
            serde_json::json!({"name": "", "execution_interval": {"value": 1, "unit": "hours"}}),
            "name may not be empty",
        ),
        (
            serde_json::json!({"name": "t"}),
            "executionInterval may not be null",
        ),
        (no_save_as.take(), "rollup[0].saveAs may not be empty"),
    ];
    for (body, message) in cases {
        let a = post(&server, "/api/v1/rollups", body.to_string()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text());
        assert_eq!(a.errors(), [message]);
    }
    let mut no_range = task("t", "s", 60);
    no_range["rollups"][0]["query"]["metrics"][0]["aggregators"] =
        serde_json::json!([{"name": "div", "divisor": 2}]);
    let a = post(&server, "/api/v1/rollups", no_range.to_string()).await;
    assert_eq!(
        a.errors(),
        ["rollup[0].query[0].aggregator At least one aggregator must be a range aggregator"]
    );
    // KairosDB: a server error; the client's mistake here.
    let a = post(&server, "/api/v1/rollups", "").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        get(&server, "/api/v1/rollups").await.text(),
        "[]",
        "nothing stored"
    );
}

/// Polls the task's status until `done` holds for it (20 s at most).
async fn wait_status(
    server: &Server,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = get(server, &format!("/api/v1/rollups/status/{id}")).await;
        if a.status == 200 && done(&a.json()) {
            return a.json();
        }
        assert!(
            Instant::now() < deadline,
            "status never came: {} {}",
            a.status,
            a.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the 1-second `cpu.1s` task and waits until it has written points; its id and
/// status.
async fn start_rolling_up(server: &Server) -> (String, serde_json::Value) {
    let body = task("t", "cpu.1s", 1).to_string();
    let created = post(server, "/api/v1/rollups", body).await;
    let id = created.json()["id"].as_str().unwrap().to_string();
    let status = wait_status(server, &id, |s| {
        s["statuses"][0]["data_point_count"].as_u64() > Some(0)
    })
    .await;
    (id, status)
}

#[tokio::test]
async fn a_task_rolls_up_on_its_schedule_and_reports_status_and_metrics() {
    let server = Server::fresh(&[("KAIROSDB_ROLLUP_LATE_WINDOW_SECS", "5")]);
    let base = now_ms() / 1000 * 1000;
    write_cpu(&server, base - 10_000, base + 20_000).await;
    let (id, status) = start_rolling_up(&server).await;
    assert_eq!(status["statuses"][0]["metric_name"], "cpu");
    assert!(status["executing_host"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert!(status["statuses"][0].get("error_message").is_none());
    let last_executed = status["statuses"][0]["last_executed"].as_str().unwrap();
    assert!(
        last_executed.ends_with(" AM") || last_executed.ends_with(" PM"),
        "{last_executed}"
    );

    let rolled = read_back(&server, "cpu.1s").await;
    assert!(!rolled.is_empty());
    for (t, v) in &rolled {
        assert_eq!(t % 1000, 0, "stamped at the period start");
        assert_eq!(v.as_f64(), Some(4.0), "four points a second at {t}");
    }
    let names = get(&server, "/api/v1/metricnames").await.json();
    assert!(names["results"]
        .as_array()
        .unwrap()
        .contains(&"cpu.1s".into()));
    let metrics = get(&server, "/api/v1/metrics").await.json();
    assert!(
        metrics["kairosdb_rollup_periods_total"].as_u64() > Some(0),
        "{metrics}"
    );
    assert_eq!(metrics["kairosdb_rollup_tasks"], 1);
    // KairosDB lists its roll-up jobs by task id.
    let jobs = get(&server, "/api/v1/admin/scheduledjobs").await.json();
    assert!(
        jobs.as_array().unwrap().contains(&id.as_str().into()),
        "{jobs}"
    );
}

#[tokio::test]
async fn kill_9_while_rolling_up_neither_skips_nor_repeats_a_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("KAIROSDB_ROLLUP_LATE_WINDOW_SECS", "0")];
    let server = Server::start(&data, &env);
    let base = now_ms() / 1000 * 1000;
    write_cpu(&server, base - 5_000, base + 30_000).await;
    let (id, _) = start_rolling_up(&server).await;
    server.kill9();

    // Down for 4 s: the periods that ended meanwhile are caught up after the restart.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let server = Server::start(&data, &env);
    let restarted = now_ms();
    let deadline = Instant::now() + Duration::from_secs(20);
    let rolled = loop {
        let rolled = read_back(&server, "cpu.1s").await;
        if rolled.last().is_some_and(|(t, _)| *t >= restarted - 1000) {
            break rolled;
        }
        assert!(Instant::now() < deadline, "no catch-up: {rolled:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for pair in rolled.windows(2) {
        assert_eq!(
            pair[1].0 - pair[0].0,
            1000,
            "a period missing after {}",
            pair[0].0
        );
    }
    for (t, v) in &rolled {
        assert_eq!(
            v.as_f64(),
            Some(4.0),
            "period {t} rolled up from all its points, once"
        );
    }
    let status = get(&server, &format!("/api/v1/rollups/status/{id}")).await;
    assert_eq!(status.status, 200);
}

/// `yyyy-MM-dd-HH-mm-ss-SSS` in UTC.
fn backfill_time(ms: i64) -> String {
    let t = jiff::Timestamp::from_millisecond(ms).unwrap();
    t.strftime("%Y-%m-%d-%H-%M-%S-%3f").to_string()
}

#[tokio::test]
async fn backfill_rolls_up_the_span_it_is_given_and_nothing_else() {
    let server = Server::fresh(&[("KAIROSDB_ROLLUPS", "false")]);
    let base = 1_700_000_000_000;
    write_cpu(&server, base, base + 10_000).await;
    let created = post(
        &server,
        "/api/v1/rollups",
        task("t", "cpu.1s", 1).to_string(),
    )
    .await;
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!(
        "/api/v1/rollups/backfill/{id}?startTime={}&endTime={}",
        backfill_time(base + 2_000),
        backfill_time(base + 5_000)
    );
    let a = get(&server, &path).await;
    assert_eq!(a.status, 204, "{}", a.text());
    let rolled = read_back(&server, "cpu.1s").await;
    let times: Vec<i64> = rolled.iter().map(|p| p.0 - base).collect();
    assert_eq!(times, [2_000, 3_000, 4_000]);
    assert!(
        rolled.iter().all(|p| p.1.as_f64() == Some(4.0)),
        "{rolled:?}"
    );

    let unknown = get(
        &server,
        "/api/v1/rollups/backfill/nope?startTime=2020-01-01-00-00-00-000",
    )
    .await;
    assert_eq!(unknown.status, 404);
    let no_start = get(&server, &format!("/api/v1/rollups/backfill/{id}")).await;
    assert_eq!(no_start.status, 400);
    assert_eq!(no_start.errors(), ["startTime must be specified"]);
    let bad = get(
        &server,
        &format!("/api/v1/rollups/backfill/{id}?startTime=yesterday"),
    )
    .await;
    assert_eq!(bad.status, 400);
}
