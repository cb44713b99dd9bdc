//! Processors a pipeline runs before its data is queued: `memory_limiter` (admission),
//! `resource` and `attributes` (transforms). `batch` is not here: batching happens when the
//! exporter reads its durable queue, so data waiting for a batch is already on disk (otelcol's
//! batch processor acknowledges before export and loses what it holds on a crash).

mod attributes;
mod memory_limiter;

use std::sync::Arc;

pub use attributes::{
    ActionKind, AttributeAction, ValueSource, any_value_from_json, apply_actions,
};
pub use memory_limiter::{MemoryLimiter, MemoryLimits};

use crate::pipeline::{Payload, Refusal};

/// One processor as it runs before the queue.
#[derive(Debug, Clone)]
pub enum Processor {
    /// Refuse while memory is over the limit.
    MemoryLimiter(Arc<MemoryLimiter>),
    /// Change resource attributes.
    Resource(Arc<Vec<AttributeAction>>),
    /// Change item attributes.
    Attributes(Arc<Vec<AttributeAction>>),
}

/// A pipeline's processors in order.
#[derive(Debug, Clone, Default)]
pub struct ProcessorChain {
    processors: Vec<Processor>,
}

impl ProcessorChain {
    /// A chain of `processors`.
    pub fn new(processors: Vec<Processor>) -> Self {
        ProcessorChain { processors }
    }

    /// Checks admission before any decoding: `Err` while a memory limiter refuses.
    pub fn admit(&self) -> Result<(), Refusal> {
        for p in &self.processors {
            if let Processor::MemoryLimiter(l) = p {
                l.admit()?;
            }
        }
        Ok(())
    }

    /// The lowest soft memory limit of the chain's memory limiters, if it has any.
    pub fn memory_soft_limit(&self) -> Option<u64> {
        self.processors
            .iter()
            .filter_map(|p| match p {
                Processor::MemoryLimiter(l) => Some(l.limits().soft_limit()),
                _ => None,
            })
            .min()
    }

    /// Runs the chain. Data is decoded once and re-encoded once, and only when some
    /// processor changes it; otherwise the client's bytes go to the queue untouched.
    pub fn apply(&self, payload: Payload) -> Result<Payload, Refusal> {
        self.admit()?;
        let transforms = self
            .processors
            .iter()
            .any(|p| !matches!(p, Processor::MemoryLimiter(_)));
        if !transforms {
            return Ok(payload);
        }
        let mut data = payload
            .decode()
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
        for p in &self.processors {
            match p {
                Processor::MemoryLimiter(_) => {}
                Processor::Resource(actions) => attributes::apply_to_resources(actions, &mut data),
                Processor::Attributes(actions) => attributes::apply_to_items(actions, &mut data),
            }
        }
        Ok(data.into_payload())
    }
}
