//! Measurements the benchmarks share: CPU time, memory from /proc/self/status, medians.

use std::time::Duration;

/// User plus system CPU time of `who` (RUSAGE_SELF, RUSAGE_THREAD).
pub fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: all-zero is a valid rusage, which getrusage overwrites.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    let r = unsafe { libc::getrusage(who, &mut ru) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A field of /proc/self/status, in MB.
pub fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kb / 1024.0
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU time of the calling thread, to the nanosecond.
pub fn thread_cpu() -> Duration {
    // SAFETY: all-zero is a valid timespec, which clock_gettime overwrites.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid, writable timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Times `rounds` refreshes of `source`, each of which must see at least `min_tasks` tasks: the
/// wall and the CPU seconds of each.
pub fn time_refreshes(
    source: &mut dyn profiler::source::IoSource,
    rounds: usize,
    min_tasks: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (mut wall, mut cpu) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let (w0, c0) = (std::time::Instant::now(), thread_cpu());
        let sample = source.sample().expect("refresh");
        cpu.push((thread_cpu() - c0).as_secs_f64());
        wall.push(w0.elapsed().as_secs_f64());
        assert!(
            sample.tasks.len() >= min_tasks,
            "{} tasks, wanted at least {min_tasks}",
            sample.tasks.len(),
        );
    }
    (wall, cpu)
}
