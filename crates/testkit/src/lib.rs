//! Test tools for otelspool.
//!
//! [`backend`] is a checking OTLP backend (gRPC and HTTP) that records every received log
//! record, span and metric point to a JSON-lines file, counts duplicates and can be switched
//! into failure modes at run time through a small control API. The binary
//! `otelspool-testbackend` wraps it for the end-to-end tests in `tests/e2e`.

pub mod backend;
