//! Cost of the eBPF source, both ways it counts (task iterator, classic syscall tracepoints),
//! in two parts.
//! (a) What the probes add to every syscall: 1,000,000 one-byte write()s to /dev/null, CPU time
//!     with no probes, with the task iterator and with the syscall hook attached, alternating
//!     rounds in one run, medians compared.
//! (c) What the I/O wait probes (on sched_switch and sched_waking) add to context switches: two
//!     threads on one CPU passing a byte back and forth over pipes 1,000,000 times, wall time
//!     with no probes and with the task iterator's probes attached, alternating rounds.
//! (b) One refresh (EbpfSource::sample) when 1,000 and 10,000 threads of this process have each
//!     done I/O: CPU time per refresh, the heap a refresh allocates, and the memory the source
//!     holds in userspace and in the kernel.
//! Needs root (CAP_BPF, CAP_PERFMON). Run: `cargo bench -p profiler --bench ebpf`, or with
//! `-- overhead`, `-- switches` or `-- refresh` for one part.

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use profiler::source::ebpf::{EbpfSource, Probes};
use profiler::source::{IoSource, Scope};

mod measure;
use measure::{median, rusage, status_mb, thread_cpu, time_refreshes};

const CALLS: u32 = 1_000_000;
const ROUNDS: usize = 7;
const PATHS: [Probes; 2] = [Probes::TaskIterator, Probes::SyscallHook];

/// Probes on / probes off, per write(). The iterator hooks no syscall; a hook costs at least
/// what an empty program on a syscall tracepoint does (~1.5x).
fn target_ratio(probes: Probes) -> f64 {
    match probes {
        Probes::TaskIterator => 1.03,
        Probes::SyscallHook => 1.7,
    }
}

const REFRESHES: usize = 11;

/// CPU time one refresh may take at 10,000 threads.
fn target_cpu_s(probes: Probes) -> f64 {
    match probes {
        Probes::TaskIterator => 0.005,
        Probes::SyscallHook => 0.010,
    }
}

/// The system allocator, counting the bytes in use and their peak: RSS cannot show what a
/// refresh allocates, since the heap reuses memory that start-up (BTF parsing) freed.
struct Counting;

static HEAP_BYTES: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to System unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HEAP_BYTES.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap_mb() -> f64 {
    HEAP_BYTES.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
}

/// The peak of heap bytes in use since the last call, in MB; starts the next period.
fn take_heap_peak_mb() -> f64 {
    let peak = HEAP_PEAK.swap(HEAP_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
    peak as f64 / (1 << 20) as f64
}

/// Kernel memory charged for the BPF maps this process holds (the `memlock` of their fdinfo).
fn map_memlock_mb() -> f64 {
    let mut bytes = 0u64;
    for entry in std::fs::read_dir("/proc/self/fdinfo")
        .expect("reading /proc/self/fdinfo")
        .flatten()
    {
        let info = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if info.contains("map_type:") {
            bytes += info
                .lines()
                .filter_map(|l| l.strip_prefix("memlock:"))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    bytes as f64 / (1 << 20) as f64
}

fn open_source(probes: Probes) -> EbpfSource {
    EbpfSource::open_with(Scope::default(), Some(probes))
        .unwrap_or_else(|e| panic!("loading and attaching the eBPF probes ({probes:?}): {e}"))
}

/// CPU nanoseconds per one-byte write() to /dev/null over CALLS calls.
fn ns_per_write(fd: libc::c_int) -> f64 {
    let byte = [0u8];
    let start = thread_cpu();
    for _ in 0..CALLS {
        // SAFETY: `fd` is open for writing and `byte` is one readable byte.
        let r = unsafe { libc::write(fd, byte.as_ptr().cast(), 1) };
        assert_eq!(r, 1, "write: {}", std::io::Error::last_os_error());
    }
    (thread_cpu() - start).as_secs_f64() * 1e9 / f64::from(CALLS)
}

/// Part (a); returns whether the targets were met.
fn syscall_overhead() -> bool {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("opening /dev/null");
    let fd = null.as_raw_fd();
    // Warm up caches and the CPU's frequency before the first timed round.
    ns_per_write(fd);
    let mut off = Vec::new();
    let mut on: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=ROUNDS {
        off.push(ns_per_write(fd));
        let mut line = format!("round {round}: off {:.0} ns/call", off[off.len() - 1]);
        for (i, probes) in PATHS.into_iter().enumerate() {
            let source = open_source(probes);
            on[i].push(ns_per_write(fd));
            drop(source);
            line.push_str(&format!(
                ", {probes:?} {:.0} ns/call",
                on[i][on[i].len() - 1]
            ));
        }
        println!("{line}");
    }
    let off = median(off);
    let mut verdict = true;
    for (probes, on) in PATHS.into_iter().zip(on) {
        let on = median(on);
        let ratio = on / off;
        let target = target_ratio(probes);
        let ok = ratio <= target;
        verdict &= ok;
        println!(
            "overhead, {}: {ratio:.2}x (off {off:.0} ns/call, on {on:.0} ns/call)\n        \
             target: <= {target}x: {}",
            probes.describe(),
            if ok { "met" } else { "MISSED" }
        );
    }
    verdict
}

const ROUND_TRIPS: u32 = 1_000_000;
const SWITCH_ROUNDS: usize = 5;
/// I/O wait probes on / off, per round trip: above this they would be behind a flag.
const TARGET_SWITCH_RATIO: f64 = 1.05;

/// Keeps the calling thread on CPU 0 (both ends of the ping-pong then switch to each other
/// directly, and the time is that of the context switches, not of waking an idle CPU); returns
/// the CPUs it could run on before.
fn pin_to_cpu0() -> libc::cpu_set_t {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: all-zero cpu_set_t values are empty sets; the calls get valid pointers and sizes.
    unsafe {
        let mut before: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, size, &mut before),
            0,
            "sched_getaffinity"
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size, &set),
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
        before
    }
}

/// Wall seconds for ROUND_TRIPS round trips of one byte between two threads over two pipes,
/// both on one CPU.
fn ping_pong() -> f64 {
    let pipe = || {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        fds
    };
    let (there, back) = (pipe(), pipe());
    let echo = std::thread::spawn(move || {
        pin_to_cpu0();
        let mut byte = [0u8];
        for _ in 0..ROUND_TRIPS {
            // SAFETY: valid pipe ends and a one-byte buffer.
            unsafe {
                assert_eq!(libc::read(there[0], byte.as_mut_ptr().cast(), 1), 1);
                assert_eq!(libc::write(back[1], byte.as_ptr().cast(), 1), 1);
            }
        }
    });
    let cpus = pin_to_cpu0();
    let start = std::time::Instant::now();
    let mut byte = [7u8];
    for _ in 0..ROUND_TRIPS {
        // SAFETY: valid pipe ends and a one-byte buffer.
        unsafe {
            assert_eq!(libc::write(there[1], byte.as_ptr().cast(), 1), 1);
            assert_eq!(libc::read(back[0], byte.as_mut_ptr().cast(), 1), 1);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    echo.join().expect("echo thread");
    // SAFETY: `cpus` is the set sched_getaffinity filled in, with its size.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &cpus) };
    for fd in there.into_iter().chain(back) {
        // SAFETY: closing the pipe ends made above, once each.
        unsafe { libc::close(fd) };
    }
    wall
}

/// Part (c); returns whether the target was met.
fn switch_overhead() -> bool {
    ping_pong();
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 1..=SWITCH_ROUNDS {
        off.push(ping_pong());
        let source = open_source(Probes::TaskIterator);
        on.push(ping_pong());
        drop(source);
        println!(
            "round {round}: off {:.2} us/round trip, on {:.2} us/round trip",
            off[off.len() - 1] * 1e6 / f64::from(ROUND_TRIPS),
            on[on.len() - 1] * 1e6 / f64::from(ROUND_TRIPS)
        );
    }
    let (off, on) = (median(off), median(on));
    let ratio = on / off;
    let ok = ratio <= TARGET_SWITCH_RATIO;
    println!(
        "context switches with the I/O wait probes: {ratio:.3}x (off {:.2} us, on {:.2} us per \
         round trip)\n        target: <= {TARGET_SWITCH_RATIO}x: {}",
        off * 1e6 / f64::from(ROUND_TRIPS),
        on * 1e6 / f64::from(ROUND_TRIPS),
        if ok { "met" } else { "MISSED" }
    );
    ok
}

/// Threads that each made one write() and now wait to be told to end.
struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    fn grow_to(&mut self, n: usize, fd: libc::c_int) {
        let (tx, rx) = std::sync::mpsc::channel();
        let before = self.threads.len();
        while self.threads.len() < n {
            let stop = Arc::clone(&self.stop);
            let tx = tx.clone();
            let t = std::thread::Builder::new()
                .stack_size(16 * 1024)
                .spawn(move || {
                    // SAFETY: `fd` stays open until every writer has been joined.
                    let r = unsafe { libc::write(fd, [0u8].as_ptr().cast(), 1) };
                    assert_eq!(r, 1, "write: {}", std::io::Error::last_os_error());
                    let _ = tx.send(());
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park();
                    }
                })
                .expect("spawning a thread (ulimit -u, kernel.threads-max?)");
            self.threads.push(t);
        }
        for _ in before..n {
            rx.recv().expect("a writer thread wrote");
        }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.thread().unpark();
            t.join().expect("writer thread");
        }
    }
}

/// Part (b) for one way of counting; returns whether the target was met.
fn refresh_cost(probes: Probes) -> bool {
    println!("{}:", probes.describe());
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("opening /dev/null");
    let me = std::process::id();
    let (rss_before, heap_before) = (status_mb("VmRSS:"), heap_mb());
    let open_cpu = rusage(libc::RUSAGE_SELF);
    let mut source = open_source(probes);
    let open_cpu = (rusage(libc::RUSAGE_SELF) - open_cpu).as_secs_f64();
    let open_peak = take_heap_peak_mb() - heap_before;
    source.sample().expect("first refresh");
    println!(
        "source open: {:.0} ms CPU; holds {:.1} MB of heap (peak {open_peak:.1} MB while \
         opening), RSS +{:.1} MB; {:.1} MB of BPF maps in the kernel",
        open_cpu * 1e3,
        heap_mb() - heap_before,
        status_mb("VmRSS:") - rss_before,
        map_memlock_mb()
    );
    let mut writers = Writers {
        stop: Arc::new(AtomicBool::new(false)),
        threads: Vec::new(),
    };
    let mut verdict = true;
    for n in [1_000, 10_000] {
        writers.grow_to(n, null.as_raw_fd());
        let first = source.sample().expect("refresh");
        let mine = first.tasks.iter().filter(|t| t.pid == me).count();
        assert!(mine >= n, "saw {mine} threads of this process, spawned {n}");
        let all = first.tasks.len();
        drop(first);
        let process_cpu = rusage(libc::RUSAGE_SELF);
        let heap_idle = heap_mb();
        take_heap_peak_mb();
        let (wall, cpu) = time_refreshes(&mut source, REFRESHES, n);
        let process_cpu =
            (rusage(libc::RUSAGE_SELF) - process_cpu).as_secs_f64() / REFRESHES as f64;
        let refresh_mb = take_heap_peak_mb() - heap_idle;
        let (wall, cpu) = (median(wall), median(cpu));
        println!(
            "{n:>6} threads ({all} tasks seen): {:.2} ms wall, {:.2} ms CPU per refresh \
             (median of {REFRESHES}; whole process {:.2} ms), {:.2} us CPU per task; \
             a refresh allocates up to {refresh_mb:.1} MB (freed after)",
            wall * 1e3,
            cpu * 1e3,
            process_cpu * 1e3,
            cpu * 1e6 / all as f64,
        );
        if n == 10_000 {
            let target = target_cpu_s(probes);
            let ok = cpu <= target;
            verdict &= ok;
            println!(
                "        target at 10,000 threads: <= {} ms CPU per refresh: {}",
                target * 1e3,
                if ok { "met" } else { "MISSED" }
            );
        }
    }
    drop(source);
    writers.finish();
    verdict
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("ebpf bench: needs root (CAP_BPF and CAP_PERFMON)");
        std::process::exit(1);
    }
    // `cargo bench --bench ebpf -- overhead` (or `refresh`) runs one part.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let overhead_ok = !wanted("overhead") || syscall_overhead();
    let switches_ok = !wanted("switches") || switch_overhead();
    let mut refresh_ok = true;
    if wanted("refresh") {
        for probes in PATHS {
            refresh_ok &= refresh_cost(probes);
        }
    }
    if !(overhead_ok && switches_ok && refresh_ok) {
        std::process::exit(1);
    }
}
