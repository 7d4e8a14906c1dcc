//! What the small benches share: `--name VALUE` options and a one-line
//! summary of a sample. Included with `#[path = "common/stats.rs"] mod
//! stats;` (a file directly under benches/ would be a bench of its own).
#![allow(dead_code)] // each bench uses its part

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// `arg` parsed, or `default` when absent or unparsable.
pub fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The nearest-rank `p`th percentile of a sorted sample (NaN if empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Prints `label: n= min= median= p90= p99= max=` with `decimals` digits.
pub fn summary(label: &str, mut xs: Vec<f64>, unit: &str, decimals: usize) {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let d = decimals;
    println!(
        "  {label}: n={} min={:.d$}{unit} median={:.d$}{unit} p90={:.d$}{unit} p99={:.d$}{unit} max={:.d$}{unit}",
        xs.len(),
        xs.first().copied().unwrap_or(f64::NAN),
        percentile(&xs, 50.0),
        percentile(&xs, 90.0),
        percentile(&xs, 99.0),
        xs.last().copied().unwrap_or(f64::NAN)
    );
}
