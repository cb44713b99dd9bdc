//! Wiring: config to running components (`build`), and the run loop with staged shutdown
//! (`run`). The only place that knows every component kind.

pub mod build;
mod exporters;
mod processors;
mod queues;
pub mod run;
mod security;

pub use build::{BuildError, Parts, build};
pub use run::run;
