//! Processors from their config: the memory limiter's limits (otelcol's rules) and the
//! attribute actions of `resource` and `attributes`. `batch` builds nothing here: its settings
//! shape the batches the delivery consumers read from the queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use otelspool_config as cfg;

use crate::processors::{
    ActionKind, AttributeAction, MemoryLimiter, MemoryLimits, Processor, ValueSource,
    any_value_from_json,
};
use crate::telemetry::Metrics;
use crate::telemetry::process::total_memory_bytes;

/// Builds each processor; a memory limiter's soft limit is exposed in `metrics`.
pub(super) fn build_processors(
    config: &cfg::Config,
    metrics: &Metrics,
) -> BTreeMap<cfg::ComponentId, Processor> {
    let mut out = BTreeMap::new();
    for (id, p) in &config.processors {
        let processor = match p {
            cfg::ProcessorConfig::Batch(_) => continue, // applied by the queue consumers
            cfg::ProcessorConfig::MemoryLimiter(m) => {
                let limits = memory_limits(m);
                metrics.memory_limiter_soft_limit(&id.to_string(), limits.soft_limit());
                Processor::MemoryLimiter(MemoryLimiter::start(limits))
            }
            cfg::ProcessorConfig::Resource(r) => {
                Processor::Resource(Arc::new(actions(&r.attributes)))
            }
            cfg::ProcessorConfig::Attributes(a) => {
                Processor::Attributes(Arc::new(actions(&a.actions)))
            }
        };
        out.insert(id.clone(), processor);
    }
    out
}

/// otelcol's rules: `limit_mib` or `limit_percentage` of total memory (the smaller of physical
/// memory and the cgroup limit); spike defaults to 20%.
fn memory_limits(m: &cfg::MemoryLimiterConfig) -> MemoryLimits {
    let total = total_memory_bytes().unwrap_or(u64::MAX);
    let pct = |p: u32| total / 100 * u64::from(p);
    let limit = m
        .limit_mib
        .map(|mib| mib << 20)
        .or(m.limit_percentage.map(pct))
        .unwrap_or(total);
    let spike = m
        .spike_limit_mib
        .map(|mib| mib << 20)
        .or(m.spike_limit_percentage.map(pct))
        .unwrap_or(limit / 5);
    MemoryLimits {
        limit,
        spike,
        check_interval: m.check_interval,
    }
}

fn actions(list: &[cfg::AttributeAction]) -> Vec<AttributeAction> {
    list.iter()
        .map(|a| AttributeAction {
            key: a.key.clone(),
            kind: match a.action {
                cfg::ActionKind::Insert => ActionKind::Insert,
                cfg::ActionKind::Update => ActionKind::Update,
                cfg::ActionKind::Upsert => ActionKind::Upsert,
                cfg::ActionKind::Delete => ActionKind::Delete,
            },
            value: match (&a.value, &a.from_attribute) {
                (Some(v), _) => {
                    any_value_from_json(v).map_or(ValueSource::None, ValueSource::Literal)
                }
                (None, Some(from)) => ValueSource::FromAttribute(from.clone()),
                (None, None) => ValueSource::None,
            },
        })
        .collect()
}
