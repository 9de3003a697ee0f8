//! kmirror's integration tests, one module per area (see README, "Tests"), in one test binary:
//! the harness then runs tests of every area side by side on its threads. As a binary per area
//! (cargo runs one after the other), each area's longest test ran with the others' threads
//! idle, and CI waited for the sum of the areas' longest tests. Run one area with
//! `cargo test --test suite faults::`.
mod common;

mod acls;
mod architecture;
mod failover;
mod faults;
mod java_clients;
mod kafka_versions;
mod mirror_content;
mod mirror_crash;
mod mirror_input;
mod mirror_topics;
mod mm2_config;
mod operate;
mod position_loss;
mod rename;
mod scale;
mod security;
mod tls;
mod transforms;
mod translate;
mod verify;
