//! CPU time in nanoseconds from `/proc`, for the benches that charge CPU per copy: this
//! one and `tapwire-receive`'s `receive_e2e`, which includes this file.

/// Whole-system busy CPU (user, nice, system, irq, softirq, steal; guest time is inside
/// user) from `/proc/stat`. The kernel keeps it in nanoseconds but shows USER_HZ ticks
/// (100 on every Linux architecture, an ABI constant unlike CONFIG_HZ): 10 ms steps,
/// over a 2-second case on 2 CPUs 1 part in 400.
pub fn system_busy_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let f: Vec<u64> =
        stat.lines().next().expect("cpu line").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (f[0] + f[1] + f[2] + f[5] + f[6] + f.get(7).copied().unwrap_or(0)) * 10_000_000
}

/// Nanoseconds a task has run on a CPU, from its `schedstat` file; 0 once it is gone.
fn schedstat_ns(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path).ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// Nanoseconds the calling thread has run.
#[allow(dead_code, reason = "receive_e2e counts processes only")]
pub fn thread_cpu_ns() -> u64 {
    schedstat_ns(std::path::Path::new("/proc/thread-self/schedstat"))
}

/// Nanoseconds every thread of process `pid` has run.
#[allow(dead_code, reason = "the mirror bench counts threads only")]
pub fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks.filter_map(Result::ok).map(|t| schedstat_ns(&t.path().join("schedstat"))).sum()
}
