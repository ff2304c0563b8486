//! `POST /api/v1/rollups`: the input is a roll-up task body for
//! `protocol::rollup::parse_rollup_task` (which embeds queries, parsed by the query
//! parser). Beyond "nothing panics", what the server relies on later: a task that was
//! accepted has a roll-up period for every query metric (`Rollup::period`, which
//! panics with "BUG" otherwise), and its stored form (`stored_json`, what a restart
//! reads back) parses again into the same task.
#![no_main]

use kairosdb_protocol::rollup::parse_rollup_task;
use libfuzzer_sys::fuzz_target;

const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(task) = parse_rollup_task(data, NOW_MS) else {
        return;
    };
    for r in &task.rollups {
        for k in 0..r.query.metrics.len() {
            let _ = r.period(k);
        }
    }
    let stored = task.stored_json("00000000-0000-0000-0000-000000000000");
    let again = parse_rollup_task(stored.as_bytes(), NOW_MS)
        .unwrap_or_else(|e| panic!("stored task does not parse again: {e:?}\n{stored}"));
    assert_eq!(again.name, task.name);
    assert_eq!(again.rollups.len(), task.rollups.len());
    assert_eq!(again.json, task.json);
});
