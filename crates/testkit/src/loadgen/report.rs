//! What a load run measured, and the JSON report written for `--report`.
//!
//! Every job keeps its own [`JobStats`]; they are merged once at the end, so the hot path takes
//! no lock. Latencies are kept as raw microsecond samples (one per request and one per attempt)
//! and summarised into percentiles, overall and per second of the run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One acknowledged request: when it was acknowledged and how long it took from first send.
#[derive(Clone, Copy, Debug)]
pub struct AckSample {
    /// Milliseconds since the start of the run.
    pub at_ms: u64,
    /// Records in the request.
    pub records: u32,
    /// Microseconds from the first send of the request to its acknowledgement.
    pub latency_us: u64,
}

/// Counters and samples of one job (or of the whole run, after [`JobStats::merge`]).
#[derive(Clone, Debug, Default)]
pub struct JobStats {
    /// Records in requests sent at least once.
    pub sent_records: u64,
    /// Records in acknowledged requests.
    pub acked_records: u64,
    /// Requests sent at least once.
    pub requests: u64,
    /// Requests acknowledged.
    pub acked_requests: u64,
    /// Requests given up on: a permanent error or `--max-attempts` reached.
    pub failed_requests: u64,
    /// Records in failed requests.
    pub failed_records: u64,
    /// Requests still unacknowledged when the deadline stopped the run.
    pub abandoned_requests: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Items reported rejected in `partial_success`.
    pub partial_rejected: u64,
    /// Failed attempts by reason.
    pub errors: BTreeMap<String, u64>,
    /// One sample per acknowledged request.
    pub acks: Vec<AckSample>,
    /// Microseconds of every attempt that got an answer (any answer).
    pub attempt_latencies_us: Vec<u64>,
}

impl JobStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: JobStats) {
        self.sent_records += other.sent_records;
        self.acked_records += other.acked_records;
        self.requests += other.requests;
        self.acked_requests += other.acked_requests;
        self.failed_requests += other.failed_requests;
        self.failed_records += other.failed_records;
        self.abandoned_requests += other.abandoned_requests;
        self.retries += other.retries;
        self.partial_rejected += other.partial_rejected;
        for (reason, n) in other.errors {
            *self.errors.entry(reason).or_default() += n;
        }
        self.acks.extend(other.acks);
        self.attempt_latencies_us.extend(other.attempt_latencies_us);
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples summarised.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises microsecond samples (sorted in place).
    pub fn of(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let pick = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Latency {
            count: samples.len(),
            p50_ms: pick(0.50),
            p90_ms: pick(0.90),
            p99_ms: pick(0.99),
            max_ms: samples.last().map_or(0.0, |&m| m as f64 / 1000.0),
        }
    }
}

/// One second of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Second {
    /// Seconds since the start (this bucket covers `[t, t+1)`).
    pub t: u64,
    /// Records acknowledged in this second.
    pub acked: u64,
    /// Requests acknowledged in this second.
    pub requests: u64,
    /// 99th percentile of request latency (first send to OK) of those requests, in ms.
    pub p99_ms: f64,
}

/// The `--report` JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The run id in every record id.
    pub run_id: String,
    /// `grpc` or `http`.
    pub protocol: String,
    /// The endpoint sent to.
    pub endpoint: String,
    /// Concurrent jobs.
    pub jobs: u32,
    /// Records per request.
    pub batch: usize,
    /// Records in requests sent at least once.
    pub sent: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Requests sent at least once.
    pub requests: u64,
    /// Requests acknowledged.
    pub acked_requests: u64,
    /// Requests given up on (permanent error or attempts exhausted).
    pub failed_requests: u64,
    /// Records in failed requests.
    pub failed_records: u64,
    /// Requests still unacknowledged at the deadline.
    pub abandoned_requests: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Items reported rejected in `partial_success`.
    pub partial_rejected: u64,
    /// Failed attempts by reason.
    pub errors: BTreeMap<String, u64>,
    /// Seconds from start to the end of the run.
    pub duration_s: f64,
    /// Acknowledged records per second over the run.
    pub throughput: f64,
    /// Per request, from first send to OK.
    pub request_latency: Latency,
    /// Per attempt, from send to any answer.
    pub attempt_latency: Latency,
    /// Per-second series for plots.
    pub series: Vec<Second>,
}

impl Report {
    /// Builds the report from the merged stats of a run that lasted `elapsed`.
    pub fn build(head: ReportHead, mut stats: JobStats, elapsed: Duration) -> Self {
        let duration_s = elapsed.as_secs_f64();
        let mut by_second: BTreeMap<u64, (u64, u64, Vec<u64>)> = BTreeMap::new();
        for ack in &stats.acks {
            let entry = by_second.entry(ack.at_ms / 1000).or_default();
            entry.0 += u64::from(ack.records);
            entry.1 += 1;
            entry.2.push(ack.latency_us);
        }
        let last = by_second.keys().next_back().copied().unwrap_or(0);
        let series = (0..=last)
            .map(|t| match by_second.get_mut(&t) {
                Some((acked, requests, latencies)) => Second {
                    t,
                    acked: *acked,
                    requests: *requests,
                    p99_ms: Latency::of(latencies).p99_ms,
                },
                None => Second {
                    t,
                    ..Second::default()
                },
            })
            .collect();
        let mut request_latencies: Vec<u64> = stats.acks.iter().map(|a| a.latency_us).collect();
        Report {
            run_id: head.run_id,
            protocol: head.protocol,
            endpoint: head.endpoint,
            jobs: head.jobs,
            batch: head.batch,
            sent: stats.sent_records,
            acked: stats.acked_records,
            requests: stats.requests,
            acked_requests: stats.acked_requests,
            failed_requests: stats.failed_requests,
            failed_records: stats.failed_records,
            abandoned_requests: stats.abandoned_requests,
            retries: stats.retries,
            partial_rejected: stats.partial_rejected,
            errors: std::mem::take(&mut stats.errors),
            duration_s,
            throughput: if duration_s > 0.0 {
                stats.acked_records as f64 / duration_s
            } else {
                0.0
            },
            request_latency: Latency::of(&mut request_latencies),
            attempt_latency: Latency::of(&mut stats.attempt_latencies_us),
            series,
        }
    }

    /// The one-line summary printed on stdout.
    pub fn summary(&self) -> String {
        format!(
            "loadgen run={} {} jobs={} sent={} acked={} failed_requests={} abandoned_requests={} \
             retries={} duration={:.1}s throughput={:.0}/s latency_ms p50={:.1} p90={:.1} \
             p99={:.1} max={:.1}",
            self.run_id,
            self.protocol,
            self.jobs,
            self.sent,
            self.acked,
            self.failed_requests,
            self.abandoned_requests,
            self.retries,
            self.duration_s,
            self.throughput,
            self.request_latency.p50_ms,
            self.request_latency.p90_ms,
            self.request_latency.p99_ms,
            self.request_latency.max_ms,
        )
    }
}

/// The run's settings echoed in the report.
#[derive(Clone, Debug)]
pub struct ReportHead {
    /// Run id.
    pub run_id: String,
    /// Protocol name.
    pub protocol: String,
    /// Endpoint.
    pub endpoint: String,
    /// Jobs.
    pub jobs: u32,
    /// Batch size.
    pub batch: usize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        let latency = Latency::of(&mut samples);
        assert_eq!(
            (
                latency.p50_ms,
                latency.p90_ms,
                latency.p99_ms,
                latency.max_ms
            ),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&mut []).count, 0);
    }

    #[test]
    fn series_has_a_bucket_per_second() {
        let stats = JobStats {
            acked_records: 30,
            acks: vec![
                AckSample {
                    at_ms: 100,
                    records: 10,
                    latency_us: 1000,
                },
                AckSample {
                    at_ms: 2500,
                    records: 20,
                    latency_us: 3000,
                },
            ],
            ..JobStats::default()
        };
        let head = ReportHead {
            run_id: "r".into(),
            protocol: "grpc".into(),
            endpoint: "e".into(),
            jobs: 1,
            batch: 10,
        };
        let report = Report::build(head, stats, Duration::from_secs(3));
        let acked: Vec<u64> = report.series.iter().map(|s| s.acked).collect();
        assert_eq!(acked, vec![10, 0, 20]);
        assert_eq!(report.throughput, 10.0);
    }
}
