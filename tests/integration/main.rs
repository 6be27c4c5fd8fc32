//! Integration tests against a local moto server (one per test, started by the harness).
//! Build into one test binary; run with `make test`, which installs moto first.

mod alarms;
mod backtest;
mod cli;
mod demo;
mod infra;
mod least_privilege;
mod log_formats;
mod log_processor;
mod make;
mod metric_poller;
mod runtime_loop;
mod status;
mod store;
mod terraform;
