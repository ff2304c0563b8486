//! Black-box tests of the `kairosdb` binary: each test starts the real server on
//! `127.0.0.1:0` with its own temporary data directory and talks HTTP or raw telnet bytes.
//! One test binary (modules below) keeps link time down.

mod admin;
mod auth;
mod cassandra;
mod check_config;
mod cluster;
mod compat;
mod conformance;
mod delete;
mod harness;
mod hostile;
mod http_api;
mod lifecycle;
mod metadata;
mod operations;
mod plan;
mod quickstart;
mod rollups;
mod self_metrics;
mod telemetry;
mod telnet;
mod timeouts;
mod tools;
mod traces;
mod transfer;
