//! A throw-away Cassandra node for a live test that needs one of its own (password
//! auth, a restart in the middle of an ingest): `scripts/cassandra.sh` on free loopback
//! ports with a run directory of its own, stopped and deleted when dropped, so the node
//! the other live tests share is never disturbed. Feature `test-node`; tests only.

use std::path::PathBuf;
use std::process::Command;

/// A node started by `scripts/cassandra.sh`; dropping it stops it and deletes its data.
pub struct TestNode {
    /// `127.0.0.1:<CQL port>`.
    pub address: String,
    env: Vec<(&'static str, String)>,
    dir: PathBuf,
}

impl TestNode {
    /// Starts a node and waits for CQL; `args` go after `start` (`--auth`), `env` to the
    /// script (`CASSANDRA_BATCH_FAIL_THRESHOLD`).
    pub fn start(args: &[&str], env: &[(&'static str, &str)]) -> TestNode {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("kairosdb-test-node-{}-{port}", std::process::id()));
        let mut vars = vec![
            ("CASSANDRA_PORT", port.to_string()),
            ("CASSANDRA_STORAGE_PORT", free_port().to_string()),
            ("CASSANDRA_JMX_PORT", free_port().to_string()),
            ("CASSANDRA_RUN_DIR", dir.join("run").display().to_string()),
        ];
        vars.extend(env.iter().map(|&(k, v)| (k, v.to_string())));
        let node = TestNode {
            address: format!("127.0.0.1:{port}"),
            env: vars,
            dir,
        };
        node.script(&[&["start"], args].concat());
        node
    }

    /// Stops the node and starts it again on its data (`scripts/cassandra.sh restart`).
    pub fn restart(&self) {
        self.script(&["restart"]);
    }

    fn script(&self, args: &[&str]) {
        let status = Command::new(script())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status()
            .expect("run scripts/cassandra.sh");
        assert!(status.success(), "scripts/cassandra.sh {args:?}: {status}");
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cassandra.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
