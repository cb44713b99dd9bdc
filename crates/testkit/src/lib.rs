//! Test tools for otelspool.
//!
//! - [`backend`]: a checking OTLP backend (gRPC and HTTP) that records every received log
//!   record, span and metric point to a JSON-lines file, counts duplicates and can be switched
//!   into failure modes at run time through a small control API (`otelspool-testbackend`).
//! - [`loadgen`]: concurrent ComfyUI-like jobs sending logs with SDK-like retries, writing every
//!   acknowledged record id to an ack log (`otelspool-loadgen`).
//! - [`faultproxy`]: a TCP proxy that can blackhole, slow down, reset or cut connections on
//!   command (`otelspool-faultproxy`).
//! - [`check`]: exact loss accounting from ack logs and backend record files (`otelspool-check`).
//! - [`powercut`]: a FUSE filesystem with a volatile write cache whose power can be cut, to
//!   test where the fsyncs are (`otelspool-powercutfs`, Linux).

pub mod backend;
pub mod check;
pub mod duration;
pub mod faultproxy;
pub mod loadgen;
pub mod powercut;
