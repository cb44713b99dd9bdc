//! The data path's shared vocabulary: signals and the payloads that flow between components.

mod signal;

pub use signal::Signal;
