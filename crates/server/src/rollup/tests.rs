//! Roll-up executions against the real embedded engine with an injected clock: catch-up,
//! resuming after an interrupted run, late data, and failure isolation.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use kairosdb_engine::{Engine, EngineConfig};
use kairosdb_model::{BatchBuilder, OutColumn, Storage, Tags, Value};
use kairosdb_protocol::rollup::{parse_rollup_task, RollupTask};

use super::run::{Execution, Limits, Outcome};
use super::store::Progress;

const MIN: i64 = 60_000;
/// A minute boundary.
const T0: i64 = 1_700_000_040_000;

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    (dir, engine)
}

/// `cpu{host=a}` = 1 every 10 s in `[from, to)`.
fn write_cpu(storage: &dyn Storage, from: i64, to: i64) {
    let mut b = BatchBuilder::new();
    let tags = Tags::from_pairs([("host", "a")]);
    let mut t = from;
    while t < to {
        b.push("cpu", &tags, 0, t, Value::Long(1));
        t += 10_000;
    }
    storage.write(&b.finish()).unwrap();
}

fn task(aggregator: &str) -> RollupTask {
    let body = format!(
        r#"{{"name":"t","execution_interval":{{"value":1,"unit":"minutes"}},"rollups":[
            {{"save_as":"cpu.1m","query":{{"start_relative":{{"value":1,"unit":"hours"}},
              "metrics":[{{"name":"cpu","aggregators":[{aggregator}]}}]}}}}]}}"#
    );
    parse_rollup_task(body.as_bytes(), T0).unwrap()
}

const SUM: &str = r#"{"name":"sum","sampling":{"value":1,"unit":"minutes"}}"#;

/// Runs `task` at `now` from `progress`; the progress saved after each period is kept.
fn run(
    storage: &dyn Storage,
    task: &RollupTask,
    now: i64,
    progress: Progress,
    max: usize,
) -> (Outcome, Vec<Progress>) {
    let saved = Mutex::new(Vec::new());
    let save = |p: &Progress| {
        saved.lock().unwrap().push(p.clone());
        Ok(())
    };
    let stop = AtomicBool::new(false);
    let execution = Execution {
        storage,
        task,
        now,
        limits: Limits {
            max_periods: max,
            late_window_ms: 30 * MIN,
        },
        stop: &stop,
        save: &save,
    };
    let outcome = execution.run(progress);
    (outcome, saved.into_inner().unwrap())
}

/// Every point of `metric`, any tags (sums of longs come back as doubles, as KairosDB's
/// do; the tests use whole numbers).
fn points(storage: &dyn Storage, metric: &str) -> Vec<(i64, i64)> {
    let body = format!(r#"{{"start_absolute":0,"metrics":[{{"name":"{metric}"}}]}}"#);
    let request = kairosdb_protocol::query::parse_query(body.as_bytes(), T0).unwrap();
    let budget = kairosdb_query::Budget::default();
    let ctx = kairosdb_query::Context {
        range: request.range,
        time_zone: None,
        now_ms: T0,
        budget: &budget,
    };
    let result = kairosdb_query::execute(storage, &ctx, &request.metrics[0])
        .unwrap()
        .expect_complete();
    let mut out = Vec::new();
    for g in result.results {
        let values: Vec<i64> = match g.values {
            OutColumn::Long(v) => v,
            OutColumn::Double(v) => v.into_iter().map(|d| d as i64).collect(),
            other => panic!("not numbers: {other:?}"),
        };
        out.extend(g.ts.into_iter().zip(values));
    }
    out.sort();
    out
}

#[test]
fn after_downtime_every_missed_period_is_rolled_up_once_in_order() {
    let (_dir, engine) = engine();
    write_cpu(&engine, T0 - 10 * MIN, T0 + 20 * MIN);
    let t = task(SUM);
    // First run 2½ minutes after T0: starts one interval + one period back, at T0.
    let (first, _) = run(&engine, &t, T0 + 2 * MIN + 30_000, Progress::default(), 500);
    assert!(
        first.statuses[0].error_message.is_none(),
        "{:?}",
        first.statuses
    );
    assert_eq!(first.periods, 2, "T0 and T0+1m are complete");
    // Down for 15 minutes; the next run catches up with everything in between.
    let (second, saved) = run(&engine, &t, T0 + 17 * MIN + 5_000, first.progress, 500);
    assert_eq!(second.periods, 15);
    assert_eq!(
        saved.len(),
        15 + 1,
        "progress recorded after every period, then once more"
    );
    let want: Vec<(i64, i64)> = (0..17).map(|i| (T0 + i * MIN, 6)).collect();
    assert_eq!(
        points(&engine, "cpu.1m"),
        want,
        "one point per period at its start, no gaps"
    );
}

#[test]
fn an_interrupted_catch_up_resumes_where_its_progress_says() {
    let (_dir, engine) = engine();
    write_cpu(&engine, T0, T0 + 20 * MIN);
    let t = task(SUM);
    let (first, _) = run(&engine, &t, T0 + 2 * MIN, Progress::default(), 500);
    let now = T0 + 12 * MIN;
    // A run cut short after 4 periods (as a kill -9 would, after recording the 4th).
    let (cut, saved) = run(&engine, &t, now, first.progress.clone(), 4);
    assert!(cut.backlog);
    assert_eq!(cut.periods, 4);
    let last_saved = saved.last().unwrap().clone();
    let (rest, _) = run(&engine, &t, now, last_saved, 500);
    assert!(!rest.backlog);
    assert_eq!(
        first.periods + cut.periods + rest.periods,
        12,
        "no period run twice or skipped"
    );
    let want: Vec<(i64, i64)> = (0..12).map(|i| (T0 + i * MIN, 6)).collect();
    assert_eq!(points(&engine, "cpu.1m"), want);
}

#[test]
fn late_data_re_runs_exactly_the_periods_it_landed_in() {
    let (_dir, engine) = engine();
    write_cpu(&engine, T0, T0 + 10 * MIN);
    let t = task(SUM);
    let now = T0 + 10 * MIN;
    let (first, _) = run(&engine, &t, T0 + 2 * MIN, Progress::default(), 500);
    let (caught_up, _) = run(&engine, &t, now, first.progress, 500);
    assert_eq!(caught_up.reruns, 0);
    // Three late points land in the period T0+4m.
    let mut b = BatchBuilder::new();
    let tags = Tags::from_pairs([("host", "b")]);
    for s in [1, 2, 3] {
        b.push("cpu", &tags, 0, T0 + 4 * MIN + s * 1000, Value::Long(1));
    }
    engine.write(&b.finish()).unwrap();
    let (late, _) = run(&engine, &t, now, caught_up.progress, 500);
    assert_eq!((late.periods, late.reruns), (0, 1));
    let rolled = points(&engine, "cpu.1m");
    assert_eq!(rolled[4], (T0 + 4 * MIN, 9));
    assert_eq!(rolled[3], (T0 + 3 * MIN, 6));
    let (quiet, _) = run(&engine, &t, now, late.progress, 500);
    assert_eq!(quiet.reruns, 0, "a period re-runs once per change");
}

#[test]
fn a_failing_rollup_records_its_error_and_the_others_still_run() {
    let (_dir, engine) = engine();
    write_cpu(&engine, T0, T0 + 5 * MIN);
    let body = format!(
        r#"{{"name":"t","execution_interval":{{"value":1,"unit":"minutes"}},"rollups":[
            {{"save_as":"bad","query":{{"start_absolute":0,"metrics":[{{"name":"cpu","aggregators":[
                {{"name":"percentile","percentile":2,"sampling":{{"value":1,"unit":"minutes"}}}}]}}]}}}},
            {{"save_as":"cpu.1m","query":{{"start_absolute":0,"metrics":[{{"name":"cpu","aggregators":[{SUM}]}}]}}}}]}}"#
    );
    let t = parse_rollup_task(body.as_bytes(), T0).unwrap();
    let (out, _) = run(&engine, &t, T0 + 3 * MIN, Progress::default(), 500);
    assert!(
        out.statuses[0].error_message.is_some(),
        "{:?}",
        out.statuses[0]
    );
    assert!(out.statuses[1].error_message.is_none());
    assert!(out.statuses[1].data_point_count > 0);
    assert_eq!(out.failures, 1);
    let bad = out.progress.find(0, 0).unwrap();
    assert_eq!(
        bad.done_through, bad.origin,
        "the failed period is not skipped"
    );
    assert!(points(&engine, "bad").is_empty());
    assert!(!points(&engine, "cpu.1m").is_empty());
}
