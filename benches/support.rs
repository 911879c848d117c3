//! Shared by the load benchmarks: latency percentiles and the report line.

use std::time::Duration;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[allow(dead_code)]
pub fn report(
    label: &str,
    concurrency: usize,
    count: usize,
    elapsed: Duration,
    mut latencies: Vec<Duration>,
) {
    latencies.sort();
    println!("{label}, {concurrency} concurrent clients:");
    println!(
        "  {:>8.0} per second   p50 {:.2} ms   p99 {:.2} ms   ({count} in {:.1} s)",
        count as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        elapsed.as_secs_f64(),
    );
}
