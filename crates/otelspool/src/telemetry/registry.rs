//! Helpers that create a metric and register it, shared by [`super::metrics`].

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::pipeline::Signal;

pub(super) type BuildResult<T> = Result<T, prometheus::Error>;

pub(super) fn counters(
    reg: &Registry,
    prefix: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<[IntCounterVec; Signal::COUNT]> {
    let make = |noun: &str| {
        counter_vec(
            reg,
            &format!("{prefix}{noun}"),
            &format!("{help} ({noun})"),
            labels,
        )
    };
    let [a, b, c] = Signal::ALL.map(Signal::item_noun);
    Ok([make(a)?, make(b)?, make(c)?])
}

pub(super) fn counter_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

pub(super) fn gauge_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

pub(super) fn gauge(reg: &Registry, name: &str, help: &str) -> BuildResult<Gauge> {
    let g = Gauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

pub(super) fn histogram(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<HistogramVec> {
    let buckets = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    reg.register(Box::new(h.clone()))?;
    Ok(h)
}

pub(super) fn int_gauge(reg: &Registry, name: &str, help: &str) -> BuildResult<IntGauge> {
    let g = IntGauge::new(name, help)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

pub(super) fn int_gauge_vec(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> BuildResult<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}
