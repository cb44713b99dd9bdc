//! Wiring: config to running components (`build`), and the run loop with staged shutdown
//! (`run`). The only place that knows every component kind.

pub mod build;
mod error;
mod exporters;
mod ledger;
mod processors;
mod queues;
pub mod run;
mod security;

pub use build::{Parts, build};
pub use error::BuildError;
pub use run::run;
