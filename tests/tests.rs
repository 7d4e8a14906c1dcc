//! drover's integration tests: one binary (style.md §7), every test
//! against a real `drover daemon` in its own temp dir (see `harness`).
//!
//! Modules live in tests/tests/ so cargo does not build each one as a
//! test binary of its own.

mod harness;

#[path = "tests/cgroups.rs"]
mod cgroups;
#[path = "tests/cli.rs"]
mod cli;
#[path = "tests/cluster.rs"]
mod cluster;
#[path = "tests/cluster_tasks.rs"]
mod cluster_tasks;
#[path = "tests/daemonsets.rs"]
mod daemonsets;
#[path = "tests/durability.rs"]
mod durability;
#[path = "tests/etcd_store.rs"]
mod etcd_store;
#[path = "tests/exhaustion.rs"]
mod exhaustion;
#[path = "tests/forking.rs"]
mod forking;
#[path = "tests/import.rs"]
mod import;
#[path = "tests/init_processes.rs"]
mod init_processes;
#[path = "tests/jobs.rs"]
mod jobs;
#[path = "tests/keeper.rs"]
mod keeper;
#[path = "tests/logs.rs"]
mod logs;
#[path = "tests/notify_security.rs"]
mod notify_security;
#[path = "tests/pods.rs"]
mod pods;
#[path = "tests/privileges.rs"]
mod privileges;
#[path = "tests/probes.rs"]
mod probes;
#[path = "tests/process_setup.rs"]
mod process_setup;
#[path = "tests/readoption.rs"]
mod readoption;
#[path = "tests/reexec.rs"]
mod reexec;
#[path = "tests/replicasets.rs"]
mod replicasets;
#[path = "tests/scale.rs"]
mod scale;
#[path = "tests/socket_discovery.rs"]
mod socket_discovery;
#[path = "tests/supervision.rs"]
mod supervision;
#[path = "tests/units.rs"]
mod units;
