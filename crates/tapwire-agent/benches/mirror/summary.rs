//! Per-case figures from each round's samples, shown as median [slowest, fastest] over
//! the rounds; ratios are taken within a round (the peers ran back to back) and then
//! summarised the same way. The medians are saved, and a saved run given as the baseline
//! is shown beside them.

use std::collections::BTreeMap;

use crate::load::Traffic;

/// What one case measured in one round.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Datagrams (UDP) or bytes (TCP) sent.
    pub sent: u64,
    pub seconds: f64,
    /// The sending thread's CPU.
    pub sender_ns: u64,
    /// tapwire's capture threads' CPU, summed.
    pub agent_ns: u64,
    /// Whole-system busy CPU over the case.
    pub system_ns: u64,
    /// Copies that reached the sensor.
    pub copies: u64,
    /// Copies tapwire sent through the kernel's IP output.
    pub routed: u64,
    pub ring_drops: u64,
}

/// A sample's figures against the round's no-mirroring sample.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    pub rate: f64,
    pub slowdown_pct: f64,
    pub sender_ns_per_unit: f64,
    /// Per copy: the sender's extra, tapwire's threads, everything else the system spent
    /// beyond no mirroring, and the total of those.
    pub sender_extra: f64,
    pub agent: f64,
    pub other: f64,
    pub system_extra: f64,
}

impl Sample {
    pub fn figures(&self, base: &Sample) -> Figures {
        let rate = self.sent as f64 / self.seconds;
        let base_rate = base.sent as f64 / base.seconds;
        let copies = self.copies.max(1) as f64;
        let per_unit = |ns: u64, sent: u64| ns as f64 / sent.max(1) as f64;
        let sender_extra =
            (per_unit(self.sender_ns, self.sent) - per_unit(base.sender_ns, base.sent)) * self.sent as f64 / copies;
        let system_extra = (self.system_ns as f64 - per_unit(base.system_ns, base.sent) * self.sent as f64) / copies;
        let agent = self.agent_ns as f64 / copies;
        Figures {
            rate,
            slowdown_pct: 100.0 * (1.0 - rate / base_rate),
            sender_ns_per_unit: per_unit(self.sender_ns, self.sent),
            sender_extra,
            agent,
            other: system_extra - sender_extra - agent,
            system_extra,
        }
    }
}

/// "median [slowest, fastest]" of `values` with `decimals`.
pub fn spread(values: &[f64], decimals: usize) -> String {
    let (median, low, high) = median_range(values);
    format!("{median:.decimals$} [{low:.decimals$}, {high:.decimals$}]")
}

pub fn median_range(values: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The saved medians: traffic → case → figure → value.
pub type Saved = BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>;

/// Prints one traffic's table and goal lines; adds its medians to `saved`.
pub fn print(traffic: Traffic, labels: &[&str], rounds: &[Vec<Sample>], baseline: Option<&Saved>, saved: &mut Saved) {
    let tcp = matches!(traffic, Traffic::Tcp);
    let unit = if tcp { "MB/s" } else { "pps" };
    println!("\n== {}: {} rounds, median [min, max] ==", traffic.name(), rounds.len());
    println!(
        "{:<44} {:>28} {:>22} {:>22} | per copy, ns: {:>20} {:>20} {:>20} {:>20} | {:>8} {:>8} {:>8}",
        format!("case ({unit})"),
        "sender rate",
        "sender slowdown %",
        if tcp { "sender ns/KB" } else { "sender ns/datagram" },
        "whole system extra",
        "= sender extra",
        "+ tapwire threads",
        "+ other",
        "lost",
        "routed",
        "ring drop"
    );
    let figures: Vec<Vec<_>> =
        rounds.iter().map(|round| round.iter().map(|s| s.figures(&round[0])).collect()).collect();
    let column =
        |case: usize, f: &dyn Fn(&Figures) -> f64| -> Vec<f64> { figures.iter().map(|r| f(&r[case])).collect() };
    let traffic_saved = saved.entry(traffic.name()).or_default();
    for (case, label) in labels.iter().enumerate() {
        let scale = if tcp { 1e-6 } else { 1.0 };
        let rate = column(case, &|f| f.rate * scale);
        let per_unit = column(case, &|f| f.sender_ns_per_unit * if tcp { 1000.0 } else { 1.0 });
        let samples = rounds.iter().map(|r| r[case]);
        let lost: u64 = samples.clone().map(|s| s.sent.saturating_sub(s.copies)).sum();
        let routed: u64 = samples.clone().map(|s| s.routed).sum();
        let ring_drops: u64 = samples.map(|s| s.ring_drops).sum();
        let mirrored = case > 0;
        let dash = || "-".to_owned();
        let per_copy = |f: &dyn Fn(&Figures) -> f64| if mirrored { spread(&column(case, f), 0) } else { dash() };
        println!(
            "{:<44} {:>28} {:>22} {:>22} |               {:>20} {:>20} {:>20} {:>20} | {:>8} {:>8} {:>8}",
            label,
            spread(&rate, 0),
            if mirrored { spread(&column(case, &|f| f.slowdown_pct), 1) } else { dash() },
            spread(&per_unit, 0),
            per_copy(&|f| f.system_extra),
            per_copy(&|f| f.sender_extra),
            per_copy(&|f| f.agent),
            per_copy(&|f| f.other),
            if !mirrored || tcp { dash() } else { lost.to_string() },
            if mirrored { routed.to_string() } else { dash() },
            if mirrored { ring_drops.to_string() } else { dash() },
        );
        if mirrored {
            let entry = traffic_saved.entry((*label).to_owned()).or_default();
            entry.insert("system_extra_ns_per_copy".into(), median_range(&column(case, &|f| f.system_extra)).0);
            entry.insert("agent_ns_per_copy".into(), median_range(&column(case, &|f| f.agent)).0);
            entry.insert("slowdown_pct".into(), median_range(&column(case, &|f| f.slowdown_pct)).0);
        }
        if tcp && mirrored {
            let per_mib: Vec<f64> =
                rounds.iter().map(|r| r[case].copies as f64 / (r[case].sent as f64 / 1048576.0)).collect();
            println!("{:<44} copies per MiB sent: {}", "", spread(&per_mib, 0));
        }
    }
    if let Some(previous) = baseline.and_then(|b| b.get(&traffic.name())) {
        for label in labels.iter().skip(1) {
            let (Some(then), Some(now)) = (previous.get(*label), traffic_saved.get(*label)) else { continue };
            let ratio = |k: &str| now.get(k).zip(then.get(k)).map_or(f64::NAN, |(n, t)| n / t);
            println!(
                "  vs the saved run, {label}: whole-system CPU per copy {:.2}x, tapwire threads per copy {:.2}x",
                ratio("system_extra_ns_per_copy"),
                ratio("agent_ns_per_copy")
            );
        }
    }
}

/// Within each round, `f(case a's figures, case b's figures)`: median [min, max].
pub fn paired(rounds: &[Vec<Sample>], a: usize, b: usize, f: impl Fn(&Figures, &Figures) -> f64) -> (f64, f64, f64) {
    let ratios: Vec<f64> = rounds.iter().map(|r| f(&r[a].figures(&r[0]), &r[b].figures(&r[0]))).collect();
    median_range(&ratios)
}
