//! The eBPF source against the real kernel: a child does an exactly known workload and the
//! counters the probes recorded for it are compared with the workload and with /proc/PID/io.

use profiler::sample::{Counters, TaskSample};
use profiler::source::ebpf::EbpfSource;
use profiler::source::{IoSource, Scope};
use profiler_tests::{require_root, ProcIo, Scratch, Workload};

fn open(pid: u32) -> EbpfSource {
    EbpfSource::open(Scope {
        pids: vec![pid],
        ..Scope::default()
    })
    .expect("loading and attaching the eBPF probes")
}

/// The child's counters as the probes have them now (zero before its first I/O).
fn counters(source: &mut EbpfSource, tid: u32) -> Counters {
    let sample = source.sample().expect("sampling the eBPF source");
    let task: Option<&TaskSample> = sample.tasks.iter().find(|t| t.tid == tid);
    task.map_or(
        Counters {
            rchar: Some(0),
            wchar: Some(0),
            syscr: Some(0),
            syscw: Some(0),
            read_bytes: Some(0),
            write_bytes: Some(0),
            ..Counters::default()
        },
        |t| t.counters,
    )
}

fn delta(after: Counters, before: Counters) -> Counters {
    after.zip_with(&before, |a, b| Some(a? - b?))
}

/// Runs `ops` in a stopped-and-resumed child; returns the probes' delta and /proc's delta.
fn measure(ops: &[String]) -> (Counters, ProcIo) {
    let mut child = Workload::start(ops);
    let mut source = open(child.pid());
    let (ebpf_before, proc_before) = (
        counters(&mut source, child.pid()),
        ProcIo::read(child.pid()),
    );
    child.run_ops();
    let (ebpf_after, proc_after) = (
        counters(&mut source, child.pid()),
        ProcIo::read(child.pid()),
    );
    child.finish();
    (
        delta(ebpf_after, ebpf_before),
        proc_after.minus(&proc_before),
    )
}

fn assert_chars_match(ops: &[String]) -> (Counters, ProcIo) {
    let (ebpf, proc) = measure(ops);
    assert_eq!(ebpf.rchar, Some(proc.rchar), "rchar for {ops:?}");
    assert_eq!(ebpf.wchar, Some(proc.wchar), "wchar for {ops:?}");
    assert_eq!(ebpf.syscr, Some(proc.syscr), "syscr for {ops:?}");
    assert_eq!(ebpf.syscw, Some(proc.syscw), "syscw for {ops:?}");
    (ebpf, proc)
}

#[test]
fn exact_count_of_writes_from_a_fresh_child() {
    require_root();
    const N: u64 = 777;
    const B: u64 = 1000;
    let scratch = Scratch::new("ebpf-exact");
    let out = scratch.path("out");
    let mut child = Workload::start(&[format!("write:{out}:{N}:{B}")]);
    let mut source = open(child.pid());
    child.run_ops();
    let c = counters(&mut source, child.pid());
    child.finish();
    // The child made no write() before its ops, so the probes' totals are exactly the workload.
    assert_eq!(c.syscw, Some(N));
    assert_eq!(c.wchar, Some(N * B));
}

#[test]
fn read_and_write_match_proc() {
    require_root();
    let s = Scratch::new("ebpf-rw");
    let input = s.file("in", 64 * 4096);
    let (ebpf, _) = assert_chars_match(&[
        format!("write:{}:500:333", s.path("out")),
        format!("read:{input}:64:4096"),
    ]);
    assert_eq!(ebpf.syscw, Some(500));
    assert_eq!(ebpf.wchar, Some(500 * 333));
    // 64 full reads; the workload's reads stop before EOF, so no extra call.
    assert_eq!(ebpf.syscr, Some(64));
    assert_eq!(ebpf.rchar, Some(64 * 4096));
}

#[test]
fn pread_pwrite_match_proc() {
    require_root();
    let s = Scratch::new("ebpf-p");
    let input = s.file("in", 32 * 1000);
    let (ebpf, _) = assert_chars_match(&[
        format!("pwrite:{}:40:1000", s.path("out")),
        format!("pread:{input}:32:1000"),
    ]);
    assert_eq!((ebpf.syscw, ebpf.syscr), (Some(40), Some(32)));
}

#[test]
fn readv_writev_match_proc() {
    require_root();
    let s = Scratch::new("ebpf-v");
    let input = s.file("in", 50 * 2000);
    let (ebpf, _) = assert_chars_match(&[
        format!("writev:{}:30:2000", s.path("out")),
        format!("readv:{input}:50:2000"),
    ]);
    assert_eq!((ebpf.wchar, ebpf.rchar), (Some(30 * 2000), Some(50 * 2000)));
}

#[test]
fn sendfile_matches_proc() {
    require_root();
    let s = Scratch::new("ebpf-sendfile");
    let input = s.file("in", 20 * 8192);
    let (ebpf, _) = assert_chars_match(&[format!("sendfile:{input}:{}:20:8192", s.path("out"))]);
    assert_eq!(
        (ebpf.syscr, ebpf.syscw, ebpf.rchar),
        (Some(20), Some(20), Some(20 * 8192))
    );
}

#[test]
fn copy_file_range_matches_proc() {
    require_root();
    let s = Scratch::new("ebpf-cfr");
    let input = s.file("in", 10 * 4096);
    let (ebpf, proc) =
        assert_chars_match(&[format!("copy_file_range:{input}:{}:10:4096", s.path("out"))]);
    assert_eq!(
        proc.syscr, 10,
        "the kernel counts one read and one write per copy_file_range"
    );
    assert_eq!(ebpf.wchar, Some(10 * 4096));
}

#[test]
fn uncached_read_bytes_match_proc() {
    require_root();
    let s = Scratch::new("ebpf-direct");
    let input = s.file("in", 256 * 4096);
    let (ebpf, proc) = measure(&[format!("fadvise-read:{input}:256:4096")]);
    assert!(
        proc.read_bytes >= 256 * 4096,
        "the read reached the disk (/proc read_bytes {})",
        proc.read_bytes
    );
    assert_eq!(ebpf.read_bytes, Some(proc.read_bytes));
    let (ebpf, proc) = measure(&[format!("direct-read:{input}:64:4096")]);
    assert_eq!(
        proc.read_bytes,
        64 * 4096,
        "O_DIRECT reads exactly what was asked"
    );
    assert_eq!(ebpf.read_bytes, Some(proc.read_bytes));
}

#[test]
fn buffered_write_bytes_within_one_percent_of_proc() {
    require_root();
    let s = Scratch::new("ebpf-dirty");
    let (ebpf, proc) = measure(&[format!("write:{}:256:65536", s.path("out"))]);
    assert!(
        proc.write_bytes >= 16 << 20,
        "16 MiB dirtied (/proc says {})",
        proc.write_bytes
    );
    let got = ebpf.write_bytes.expect("write_bytes measured") as f64;
    let want = proc.write_bytes as f64;
    assert!(
        (got - want).abs() <= want * 0.01,
        "ebpf write_bytes {got} vs /proc {want}"
    );
}

#[test]
fn a_task_living_between_two_refreshes_keeps_its_io() {
    require_root();
    let s = Scratch::new("ebpf-short");
    let mut source = EbpfSource::open(Scope::default()).expect("attaching");
    let before = source.sample().expect("sample");
    let mut child =
        Workload::start(&[format!("write:{}:10:100", s.path("out")), "sleep:10".into()]);
    let pid = child.pid();
    child.run_ops();
    child.finish();
    let after = source.sample().expect("sample");
    assert!(
        !before.tasks.iter().any(|t| t.tid == pid),
        "the child did not exist at the first refresh"
    );
    let task = after
        .tasks
        .iter()
        .find(|t| t.tid == pid)
        .expect("the exited child is reported once");
    assert!(task.exited);
    assert_eq!(
        (task.counters.syscw, task.counters.wchar),
        (Some(10), Some(1000))
    );
    assert_eq!(task.command, "workload");
    let again = source.sample().expect("sample");
    assert!(
        !again.tasks.iter().any(|t| t.tid == pid),
        "an exited task is reported once, then forgotten"
    );
}
