//! Samples and the statistics the report uses: medians and p99, never
//! single times, and ratios taken round by round so that machine noise in
//! one round hits every configuration of that round alike.

use std::time::Duration;

/// Latencies of one configuration, in seconds, with the round each came
/// from.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    values: Vec<f64>,
    rounds: Vec<usize>,
}

impl Samples {
    /// Record one latency measured in `round`.
    pub fn push(&mut self, round: usize, d: Duration) {
        self.values.push(d.as_secs_f64());
        self.rounds.push(round);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The median, in seconds (0 without samples).
    pub fn median(&self) -> f64 {
        quantile(&self.values, 0.5)
    }

    /// The 99th percentile (nearest rank), in seconds.
    pub fn p99(&self) -> f64 {
        quantile(&self.values, 0.99)
    }

    /// Commits per second over all samples: samples / time spent in them.
    pub fn per_second(&self) -> f64 {
        let total: f64 = self.values.iter().sum();
        if total > 0.0 {
            self.values.len() as f64 / total
        } else {
            0.0
        }
    }

    /// The median of the samples of `round`.
    fn round_median(&self, round: usize) -> Option<f64> {
        let v: Vec<f64> = self
            .values
            .iter()
            .zip(&self.rounds)
            .filter(|&(_, &r)| r == round)
            .map(|(&v, _)| v)
            .collect();
        (!v.is_empty()).then(|| quantile(&v, 0.5))
    }

    /// The median over rounds of (this round's median / `base`'s median in
    /// the same round): how many times slower than `base`, robust to
    /// rounds in which the whole machine was slow.
    pub fn ratio_to(&self, base: &Samples) -> f64 {
        let mut rounds: Vec<usize> = self.rounds.clone();
        rounds.sort_unstable();
        rounds.dedup();
        let ratios: Vec<f64> = rounds
            .into_iter()
            .filter_map(|r| Some(self.round_median(r)? / base.round_median(r)?))
            .collect();
        quantile(&ratios, 0.5)
    }
}

/// The `q` quantile of `values` by nearest rank (0 if empty).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// A latency in seconds as milliseconds with three significant digits.
pub fn ms(seconds: f64) -> String {
    let m = seconds * 1e3;
    if m >= 100.0 {
        format!("{m:.0} ms")
    } else if m >= 10.0 {
        format!("{m:.1} ms")
    } else if m >= 1.0 {
        format!("{m:.2} ms")
    } else {
        format!("{:.0} µs", m * 1e3)
    }
}

/// A count per second, rounded for a table.
pub fn rate(per_second: f64) -> String {
    if per_second >= 100.0 {
        format!("{per_second:.0}")
    } else {
        format!("{per_second:.1}")
    }
}

/// A ratio, `×` suffixed.
pub fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// A byte count, human sized.
pub fn bytes(n: f64) -> String {
    if n >= 10.0 * 1024.0 * 1024.0 {
        format!("{:.0} MiB", n / 1024.0 / 1024.0)
    } else if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else if n >= 10.0 * 1024.0 {
        format!("{:.0} KiB", n / 1024.0)
    } else {
        format!("{n:.0} B")
    }
}
