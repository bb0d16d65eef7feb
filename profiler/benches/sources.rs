//! Cost of one refresh of each source as the number of threads grows: the bench spawns idle
//! threads, 100 per child process (1,000, 10,000, then 100,000 threads, raising kernel.pid_max
//! for the last and restoring it), opens each source on every task of the machine and times
//! refreshes. Reports CPU time per refresh (median) and per thread, and the memory the source
//! adds (peak RSS above the bench's own). It also times the floor: opening, reading and closing
//! every thread's `io` file in /proc and nothing else.
//! Needs root. Run: `cargo bench -p profiler --bench sources`, or `-- 10000` for one size.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};

use profiler::source::{self, Scope, SourceKind};

mod measure;
use measure::{median, rusage, status_mb, thread_cpu, time_refreshes};

/// Threads per child process, as on a machine of many small services.
const THREADS_PER_CHILD: usize = 100;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// CPU seconds one refresh may take at 10,000 threads.
fn target_cpu_s(kind: SourceKind) -> f64 {
    match kind {
        SourceKind::Taskstats | SourceKind::Procfs => 0.10,
        SourceKind::Ebpf => 0.005,
    }
}

fn refreshes(n: usize) -> usize {
    if n >= 100_000 {
        3
    } else {
        7
    }
}

/// Sets VmHWM back to the current RSS, so the next reading is the peak from here on.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("resetting VmHWM through /proc/self/clear_refs");
}

/// A child of this bench that holds idle threads until its stdin closes.
fn idle_child_main(threads: usize) {
    let mut held = Vec::with_capacity(threads);
    for _ in 1..threads {
        held.push(
            std::thread::Builder::new()
                .stack_size(16 * 1024)
                .spawn(|| loop {
                    std::thread::park();
                })
                .expect("spawning an idle thread (kernel.threads-max?)"),
        );
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    std::process::exit(0);
}

/// Children holding idle threads; they exit when dropped (their stdin closes).
struct Idle {
    children: Vec<Child>,
}

impl Idle {
    fn grow_to(&mut self, threads: usize) {
        let exe = std::env::current_exe().expect("this bench's path");
        while self.children.len() * THREADS_PER_CHILD < threads {
            let mut child = Command::new(&exe)
                .args(["--idle-child", &THREADS_PER_CHILD.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawning an idle child");
            let mut ready = [0u8; 6];
            child
                .stdout
                .as_mut()
                .expect("child stdout")
                .read_exact(&mut ready)
                .expect("the idle child started its threads");
            self.children.push(child);
        }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
    }
}

/// kernel.pid_max raised for as long as it lives, then put back.
struct PidMax {
    before: String,
}

const PID_MAX: &str = "/proc/sys/kernel/pid_max";

impl PidMax {
    fn at_least(n: u64) -> PidMax {
        let before = std::fs::read_to_string(PID_MAX).expect("reading kernel.pid_max");
        if before.trim().parse::<u64>().is_ok_and(|v| v < n) {
            std::fs::write(PID_MAX, n.to_string()).expect("raising kernel.pid_max");
        }
        PidMax { before }
    }
}

impl Drop for PidMax {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(PID_MAX, self.before.trim()) {
            eprintln!(
                "could not restore kernel.pid_max to {}: {e}",
                self.before.trim()
            );
        }
    }
}

/// CPU seconds to open, read and close every thread's io file in /proc: what any reader of
/// /proc pays at least.
fn procfs_floor() -> f64 {
    let mut buf = Vec::with_capacity(512);
    let start = thread_cpu();
    for process in std::fs::read_dir("/proc").expect("listing /proc").flatten() {
        let Ok(threads) = std::fs::read_dir(process.path().join("task")) else {
            continue;
        };
        for thread in threads.flatten() {
            if let Ok(mut f) = std::fs::File::open(thread.path().join("io")) {
                buf.clear();
                let _ = f.read_to_end(&mut buf);
            }
        }
    }
    (thread_cpu() - start).as_secs_f64()
}

fn main() {
    // Exits only after `run` has dropped its guards: kernel.pid_max restored, children ended.
    if !run() {
        std::process::exit(1);
    }
}

/// The whole bench; whether every target was met.
fn run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--idle-child") {
        let threads = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .expect("--idle-child N");
        idle_child_main(threads);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("sources bench: needs root (taskstats, eBPF, and raising kernel.pid_max)");
        std::process::exit(1);
    }
    let only: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let scope = Scope::default();
    let _pid_max = PidMax::at_least(4 * SIZES[SIZES.len() - 1] as u64);
    let mut idle = Idle {
        children: Vec::new(),
    };
    let mut verdict = true;
    for n in SIZES {
        if !only.is_empty() && !only.contains(&n) {
            continue;
        }
        idle.grow_to(n);
        println!("{n} threads:");
        let floor = median((0..5).map(|_| procfs_floor()).collect());
        println!(
            "  floor  open+read+close of every io file: {:.4} CPU-s ({:.1} us per thread)",
            floor,
            floor * 1e6 / n as f64
        );
        for kind in SourceKind::ALL {
            reset_peak_rss();
            let idle_mb = status_mb("VmRSS:");
            let (mut source, _) =
                source::open_probed(kind, &scope).unwrap_or_else(|e| panic!("opening {kind}: {e}"));
            let rounds = refreshes(n);
            let process_cpu = rusage(libc::RUSAGE_SELF);
            let (_, cpu) = time_refreshes(source.as_mut(), rounds, n);
            let process_cpu =
                (rusage(libc::RUSAGE_SELF) - process_cpu).as_secs_f64() / rounds as f64;
            let peak_mb = status_mb("VmHWM:");
            drop(source);
            let cpu = median(cpu);
            println!(
                "  {:<10} {cpu:.4} CPU-s per refresh (median of {rounds}; whole process \
                 {process_cpu:.4}), {:.2} us per thread, {:.1}x the floor; the source adds \
                 {:.1} MB at peak",
                kind.name(),
                cpu * 1e6 / n as f64,
                cpu / floor,
                peak_mb - idle_mb
            );
            if n == 10_000 {
                let target = target_cpu_s(kind);
                let ok = cpu <= target;
                verdict &= ok;
                println!(
                    "             target at 10,000 threads: <= {target} CPU-s per refresh: {}",
                    if ok { "met" } else { "MISSED" }
                );
            }
        }
    }
    drop(idle);
    verdict
}
