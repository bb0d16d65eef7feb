//! Size and cost of recording history (`profiler::record`), on synthetic samples: bytes per
//! record for ~100 mostly idle processes and for 10,000 idle threads, a day at -d 10, the
//! encoding cost per refresh, and reading one hour out of a day, with no kernel involved;
//! then, on this machine (root: `cargo xtask bench`), what recording adds to each real
//! source's refresh, and the file of `profiler record -d 1` against `atop -w` over the same
//! 30 seconds. `cargo bench -p profiler --bench record`.

use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use profiler::counter::{Counter, Counters};
use profiler::record::format::{Codec, Header};
use profiler::record::{Recorder, RecordingReader};
use profiler::sample::{Monotonic, Sample, TaskSample};

#[expect(
    dead_code,
    reason = "this bench needs only the thread's CPU clock of the shared helpers"
)]
mod measure;
use measure::thread_cpu;

const DELAY_S: u64 = 10;
const DAY: u64 = 86_400 / DELAY_S;
const T0_S: u64 = 1_760_000_000;

fn header() -> Header {
    Header {
        host_name: "bench".into(),
        kernel_release: "6.1.0".into(),
        source: "ebpf".into(),
        method: Some("task iterator".into()),
        totals_since: "task start".into(),
        created_wall_ns: T0_S * 1_000_000_000,
        counters: Counter::ALL.iter().map(|c| c.key().to_string()).collect(),
        unavailable: Vec::new(),
    }
}

/// Seeded, so every run measures the same workload.
struct Rng(profiler::fuzz::Rng);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }
}

/// A machine of `processes` processes of 1 to 4 threads each, mostly idle: each refresh a
/// few threads do I/O (a logger, a database, a backup), and now and then a process ends and
/// another starts. `counters` are cumulative; `tick` steps `DELAY_S`.
struct Machine {
    tasks: Vec<TaskSample>,
    next_pid: u32,
    rng: Rng,
    busy_share_per_mille: u64,
}

impl Machine {
    fn new(processes: u32, threads: u32, busy_share_per_mille: u64) -> Machine {
        let mut m = Machine {
            tasks: Vec::new(),
            next_pid: 1000,
            rng: Rng(profiler::fuzz::Rng::from_seed(0x9e37_79b9_7f4a_7c15)),
            busy_share_per_mille,
        };
        for _ in 0..processes {
            let n = if threads == 0 {
                1 + m.rng.below(4) as u32
            } else {
                threads
            };
            m.spawn(n);
        }
        m
    }

    fn spawn(&mut self, threads: u32) {
        let pid = self.next_pid;
        self.next_pid += threads;
        let command = format!(
            "{}{}",
            [
                "sshd",
                "postgres",
                "nginx",
                "java",
                "bash",
                "systemd-journal"
            ][pid as usize % 6],
            pid % 3
        );
        for t in 0..threads {
            let v = u64::from(pid) * 977;
            self.tasks.push(TaskSample {
                tid: pid + t,
                pid,
                uid: Some(pid % 5 * 1000),
                command: command.as_str().into(),
                start_time: Some(u64::from(pid) * 1_000_003),
                cgroup_id: Some(4000 + u64::from(pid % 20)),
                counters: Counters {
                    rchar: Some(v * 31),
                    wchar: Some(v * 17),
                    syscr: Some(v / 3),
                    syscw: Some(v / 5),
                    read_bytes: Some(v * 4096),
                    write_bytes: Some(v * 8192),
                    cancelled_write_bytes: Some(0),
                    blkio_delay_ns: Some(v * 1000),
                    ..Counters::default()
                },
                exited: false,
            });
        }
    }

    fn step(&mut self, tick: u64, anchor: Monotonic) -> Sample {
        self.tasks.retain(|t| !t.exited);
        for i in 0..self.tasks.len() {
            if self.rng.below(1000) < self.busy_share_per_mille {
                let c = &mut self.tasks[i].counters;
                let bytes = 512 + self.rng.below(1 << 20);
                let calls = 1 + bytes / 4096;
                c.rchar = c.rchar.map(|v| v + bytes);
                c.syscr = c.syscr.map(|v| v + calls);
                if self.rng.below(2) == 0 {
                    c.wchar = c.wchar.map(|v| v + bytes / 2);
                    c.syscw = c.syscw.map(|v| v + calls);
                    c.write_bytes = c.write_bytes.map(|v| v + ((bytes / 2) & !4095));
                }
                c.blkio_delay_ns = c.blkio_delay_ns.map(|v| v + self.rng.below(5_000_000));
            }
        }
        // About one process a minute ends (reported once, exited) and another starts.
        if self.busy_share_per_mille > 0 && self.rng.below(6) == 0 && !self.tasks.is_empty() {
            let pid = self.tasks[self.rng.below(self.tasks.len() as u64) as usize].pid;
            for t in self.tasks.iter_mut().filter(|t| t.pid == pid) {
                t.exited = true;
            }
            let threads = 1 + self.rng.below(4) as u32;
            self.spawn(threads);
        }
        Sample {
            taken_at: anchor + Duration::from_secs(tick * DELAY_S),
            wall_time: UNIX_EPOCH
                + Duration::from_secs(T0_S + tick * DELAY_S)
                + Duration::from_micros(self.rng.below(3000)),
            tasks: self.tasks.clone(),
            lost_events: Some(0),
            skipped_tasks: 0,
            denied_tasks: 0,
            // The recorder labels every cgroup of the sample; 20 containers, as their engines
            // name them.
            container_labels: (0..20u64)
                .map(|i| {
                    (
                        4000 + i,
                        format!("docker:{:012x}", 0x5eed_0000_0000 + i * 7919),
                    )
                })
                .collect(),
        }
    }
}

/// Records `records` refreshes of `machine` to `path`; returns the file size and the time
/// spent in `append` (encoding, and writing the blocks that closed).
fn record(path: &Path, machine: &mut Machine, records: u64, codec: Codec) -> (u64, Duration) {
    let anchor = Monotonic::now();
    let samples: Vec<Sample> = (0..records).map(|t| machine.step(t, anchor)).collect();
    let mut w = Recorder::create(path, &header())
        .expect("create")
        .with_codec(codec);
    let t = Instant::now();
    for s in samples {
        w.append(s).expect("append");
    }
    w.finish().expect("finish");
    let spent = t.elapsed();
    (std::fs::metadata(path).expect("stat").len(), spent)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("profiler-bench-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("day.rec");
    let header_len = header().encode().len() as u64;

    // ~100 mostly idle processes (1-4 threads each), 3% of threads busy per refresh, a day.
    let mut m = Machine::new(100, 0, 30);
    let tasks = m.tasks.len();
    let (stored, _) = record(&path, &mut Machine::new(100, 0, 30), DAY, Codec::Stored);
    let (day, spent) = record(&path, &mut m, DAY, Codec::Lz4);
    let per_record = (day - header_len) as f64 / DAY as f64;
    let encode_us = spent.as_secs_f64() * 1e6 / DAY as f64;
    println!("~100 mostly idle processes ({tasks} threads, 3% busy per refresh), -d {DELAY_S}:");
    println!("  bytes per record            {per_record:10.1}");
    println!(
        "  a day ({DAY} records)       {:10.2} MiB (goal <= 10 MiB; uncompressed {:.2} MiB)",
        day as f64 / (1 << 20) as f64,
        stored as f64 / (1 << 20) as f64
    );
    println!(
        "  encode per refresh          {encode_us:10.1} us ({:.5}% of a {DELAY_S} s refresh; includes writing each block and one fsync at the end)",
        encode_us / (DELAY_S as f64 * 1e6) * 100.0
    );

    // Reading a day back, and one hour out of it.
    let t = Instant::now();
    let all = RecordingReader::open(&path).expect("open").fold(0, |n, s| {
        n + usize::from(!s.expect("sample").tasks.is_empty())
    });
    let read_day = t.elapsed();
    let begin = UNIX_EPOCH + Duration::from_secs(T0_S + 12 * 3600);
    let end = begin + Duration::from_secs(3600);
    let t = Instant::now();
    let hour = RecordingReader::open(&path)
        .expect("open")
        .range(Some(begin), Some(end))
        .fold(0, |n, s| {
            n + usize::from(!s.expect("sample").tasks.is_empty())
        });
    let read_hour = t.elapsed();
    println!(
        "  replay: a whole day ({all} samples) {:8.1} ms; one hour of it ({hour} samples) {:.1} ms (goal <= 1 s)",
        read_day.as_secs_f64() * 1e3,
        read_hour.as_secs_f64() * 1e3
    );

    // 10,000 idle threads against none: the marginal cost of an idle task.
    const RECORDS: u64 = 600;
    let (empty, _) = record(&path, &mut Machine::new(0, 1, 0), RECORDS, Codec::Lz4);
    let (idle, spent) = record(&path, &mut Machine::new(100, 100, 0), RECORDS, Codec::Lz4);
    let per_record = |size: u64| (size - header_len) as f64 / RECORDS as f64;
    let marginal = (per_record(idle) - per_record(empty)) / 10_000.0;
    println!("10,000 idle threads (100 processes of 100), {RECORDS} records:");
    println!(
        "  bytes per record            {:10.1} (one task that never changes: {:.1})",
        per_record(idle),
        per_record(empty)
    );
    println!("  bytes per idle task per record {marginal:7.3} (goal <= 1)");
    println!(
        "  encode per refresh          {:10.1} us",
        spent.as_secs_f64() * 1e6 / RECORDS as f64
    );
    let t = Instant::now();
    let n = RecordingReader::open(&path).expect("open").fold(0, |n, s| {
        n + usize::from(!s.expect("sample").tasks.is_empty())
    });
    println!(
        "  replay: {n} samples of 10,000 tasks {:8.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    live_cost(&dir);
    against_atop(&dir);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Each source that opens here, on every task of this machine: the time of a refresh
/// (`sample()`) against the time of recording it (`append`, the write of each closed block
/// included, and `finish`, which fsyncs), over 120 refreshes 100 ms apart (two blocks). The
/// recorder leaves a closed block to the kernel's writeback (see "Durability" in
/// `record::format`); what an fsync of each would add is measured apart, on a file
/// descriptor of the bench's own.
fn live_cost(dir: &Path) {
    use profiler::history::Recording;
    use profiler::record::header_for;
    use profiler::source::{self, Scope, SourceKind};
    println!(
        "recording cost on this machine, 120 refreshes 100 ms apart (CPU time of this thread):"
    );
    for kind in SourceKind::ALL {
        let scope = Scope::default();
        let mut source = match source::open(kind, &scope) {
            Ok(s) => s,
            Err(e) => {
                println!("  {kind:<9}  not measured: {e}");
                continue;
            }
        };
        let path = dir.join(format!("{kind}.rec"));
        let recorder = Recorder::create(&path, &header_for(source.as_ref(), &scope.proc_root))
            .expect("create");
        // What `profiler record` does with each sample: the filters (none here), the cgroup
        // ids and container labels, then the recorder.
        let mut w = Recording::new(recorder, &scope.proc_root, Vec::new(), Vec::new());
        let (mut sampling, mut recording, mut tasks) = (Duration::ZERO, Duration::ZERO, 0);
        let (mut closing_wall, mut closing_cpu, mut len) = (Duration::ZERO, Duration::ZERO, 0);
        let mut fsync_cpu = Duration::ZERO;
        let probe = std::fs::File::open(&path).expect("open the recording");
        for _ in 0..120 {
            std::thread::sleep(Duration::from_millis(100));
            let cpu = thread_cpu();
            let sample = source.sample().expect("sample");
            let cpu1 = thread_cpu();
            let wall = Instant::now();
            tasks = sample.tasks.len();
            w.append(sample).expect("append");
            let spent = thread_cpu() - cpu1;
            recording += spent;
            sampling += cpu1 - cpu;
            // An append that wrote a block: compressing and writing it.
            let now_len = std::fs::metadata(&path).map_or(0, |m| m.len());
            if now_len != len {
                closing_wall += wall.elapsed();
                closing_cpu += spent;
                len = now_len;
                let cpu = thread_cpu();
                probe.sync_data().expect("fsync");
                fsync_cpu += thread_cpu() - cpu;
            }
        }
        let (cpu, wall) = (thread_cpu(), Instant::now());
        w.finish().expect("finish");
        recording += thread_cpu() - cpu;
        closing_cpu += thread_cpu() - cpu;
        closing_wall += wall.elapsed();
        let size = std::fs::metadata(&path).expect("stat").len();
        let us = |d: Duration| d.as_secs_f64() * 1e6 / 120.0;
        let share = |d: Duration| d.as_secs_f64() / sampling.as_secs_f64() * 100.0;
        println!(
            "  {kind:<9}  {tasks} tasks: refresh {:7.0} us CPU, recording it {:6.0} us CPU: +{:.1}% \
             (goal <= +10%); of which closing blocks (compress, write; the final fsync) {:.0} us \
             CPU and {:.0} us wall per refresh; {:.0} bytes per record; an fsync of every \
             closed block (not made) would add {:.1} us CPU: +{:.1}% in all",
            us(sampling),
            us(recording),
            share(recording),
            us(closing_cpu),
            us(closing_wall),
            size as f64 / 120.0,
            us(fsync_cpu),
            share(recording + fsync_cpu)
        );
    }
}

/// `profiler record -d 1` and `atop -w FILE 1` side by side for the same 30 seconds.
fn against_atop(dir: &Path) {
    use std::process::{Command, Stdio};
    const SECONDS: u32 = 30;
    let has_atop = Command::new("atop")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !has_atop {
        println!("atop comparison: skipped, atop is not installed (apt-get install atop)");
        return;
    }
    let ours = dir.join("ours.rec");
    let theirs = dir.join("atop.raw");
    let n = SECONDS.to_string();
    let mut profiler = Command::new(env!("CARGO_BIN_EXE_profiler"))
        .args(["record", "-d", "1", "-n", &n, "-o"])
        .arg(&ours)
        .stderr(Stdio::null())
        .spawn()
        .expect("profiler record");
    let mut atop = Command::new("atop")
        .arg("-w")
        .arg(&theirs)
        .args(["1", &n])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("atop -w");
    let ok = profiler.wait().expect("profiler").success() && atop.wait().expect("atop").success();
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let (a, b) = (size(&ours), size(&theirs));
    println!(
        "{SECONDS} s at -d 1 on this machine: profiler record {a} bytes, atop -w {b} bytes: \
         {:.2}x atop's size{}",
        a as f64 / b as f64,
        if ok { "" } else { " (one of them failed)" }
    );
}
