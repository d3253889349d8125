//! The integration tests, in one binary: `cargo test --test suite` runs
//! them all in parallel (libtest threads; `make test` picks how many), and
//! `cargo test --test suite abr::` one module. Each module is one area of
//! the server; `common` starts servers (in this process, or as a child
//! process where a test needs one) and makes the shared fixtures once per
//! run.

mod common;

mod abr;
mod attacks;
mod bad_input;
mod browser;
mod chunks;
mod clips;
mod codecs;
mod colour;
mod crash_points;
mod crash_takeover;
mod credentials;
mod edge;
mod embeds;
mod form_fields;
mod hardening;
mod images;
mod imports;
mod library;
mod lifecycle;
mod live;
mod low_latency;
mod model;
mod odd_files;
mod ops;
mod playback;
mod recovery;
mod resources;
mod resumable;
mod s3_direct;
mod s3_nodes;
mod s3_objects;
mod security;
mod security_defaults;
mod slow_bucket;
mod structure;
mod tracks;
mod transcode;
mod webhooks;
