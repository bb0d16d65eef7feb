//! Cost of one taskstats refresh of a process with 1,000 and with 10,000 threads: the bench
//! spawns idle threads in its own process, opens the source on its own pid and times refreshes.
//! Reports wall and CPU time per refresh (median) and memory: peak RSS (VmHWM) of the whole
//! process, and how far it rose above the idle threads' own footprint while the source ran.
//! Needs root (CAP_NET_ADMIN). Run: `cargo bench -p profiler --bench taskstats`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use profiler::source::taskstats::TaskstatsSource;
use profiler::source::{IoSource, Scope};

mod measure;
use measure::{median, rusage, status_mb, time_refreshes};

const REFRESHES: usize = 11;
/// CPU time one refresh may take at 10,000 threads, and the memory the source may add.
const TARGET_CPU_S: f64 = 0.1;
const TARGET_MB: f64 = 30.0;

/// Sets VmHWM back to the current RSS, so the next reading is the peak from here on.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("resetting VmHWM through /proc/self/clear_refs");
}

struct Idle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Idle {
    fn grow_to(&mut self, n: usize) {
        while self.threads.len() < n {
            let stop = Arc::clone(&self.stop);
            let t = std::thread::Builder::new()
                .stack_size(16 * 1024)
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park();
                    }
                })
                .expect("spawning an idle thread (ulimit -u, kernel.threads-max?)");
            self.threads.push(t);
        }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.thread().unpark();
            t.join().expect("idle thread");
        }
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("taskstats bench: needs root (CAP_NET_ADMIN in the initial user namespace)");
        std::process::exit(1);
    }
    let scope = Scope {
        pids: vec![std::process::id()],
        ..Scope::default()
    };
    let mut idle = Idle {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
    };
    let mut verdict = true;
    for n in [1_000, 10_000] {
        idle.grow_to(n);
        reset_peak_rss();
        let idle_mb = status_mb("VmRSS:");
        let mut source =
            TaskstatsSource::open(scope.clone()).expect("opening the taskstats source");
        let first = source.sample().expect("first refresh");
        assert!(
            first.tasks.len() > n,
            "saw {} threads, spawned {n}",
            first.tasks.len()
        );
        let process_cpu = rusage(libc::RUSAGE_SELF);
        // The threads and the main thread.
        let (wall, cpu) = time_refreshes(&mut source, REFRESHES, n + 1);
        let process_cpu =
            (rusage(libc::RUSAGE_SELF) - process_cpu).as_secs_f64() / REFRESHES as f64;
        let peak_mb = status_mb("VmHWM:");
        drop(source);
        let (wall, cpu) = (median(wall), median(cpu));
        let added_mb = peak_mb - idle_mb;
        println!(
            "{n:>6} threads: {:.2} ms wall, {cpu:.4} CPU-s per refresh (median of {REFRESHES}; whole process {process_cpu:.4}), \
             {:.1} us CPU per thread; peak RSS {peak_mb:.1} MB, of which {idle_mb:.1} MB idle threads and {added_mb:.1} MB the source",
            wall * 1e3,
            cpu * 1e6 / n as f64,
        );
        if n == 10_000 {
            let ok = cpu <= TARGET_CPU_S && added_mb <= TARGET_MB;
            verdict &= ok;
            println!(
                "        target at 10,000 threads: <= {TARGET_CPU_S} CPU-s and <= {TARGET_MB} MB for the source: {}",
                if ok { "met" } else { "MISSED" }
            );
        }
    }
    idle.finish();
    if !verdict {
        std::process::exit(1);
    }
}
