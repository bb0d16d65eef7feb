//! The taskstats source against the real kernel: a child does an exactly known workload, and its
//! thread's counters must equal /proc/PID/io rounded down to a multiple of 1024, which is how
//! taskstats rounds every I/O field (KB_MASK in kernel/tsacct.c).

use std::process::Command;

use profiler::counter::Counter;
use profiler::sample::{Counters, TaskSample};
use profiler::source::procfs::DELAYACCT_OFF;
use profiler::source::taskstats::{decode, TaskstatsError, TaskstatsSource};
use profiler::source::{IoSource, Scope};
use profiler_tests::{require_root, ProcIo, Scratch, Workload};

/// Enough calls to cross two 1024 boundaries of the syscall counts.
const K: u64 = 3000;
const B: u64 = 4096;

fn open(pid: u32) -> TaskstatsSource {
    TaskstatsSource::open(Scope {
        pids: [pid].into(),
        ..Scope::default()
    })
    .expect("opening the taskstats source")
}

/// The live (not exited) thread `tid` in a fresh sample.
fn thread(source: &mut TaskstatsSource, tid: u32) -> TaskSample {
    let sample = source.sample().expect("sampling the taskstats source");
    sample
        .tasks
        .into_iter()
        .find(|t| t.tid == tid && !t.exited)
        .unwrap_or_else(|| panic!("thread {tid} is missing from the sample"))
}

fn kb(x: u64) -> u64 {
    x & !1023
}

/// /proc/PID/io as taskstats reports it: every field rounded down to a multiple of 1024.
fn rounded(io: &ProcIo) -> Counters {
    Counters {
        rchar: Some(kb(io.rchar)),
        wchar: Some(kb(io.wchar)),
        syscr: Some(kb(io.syscr)),
        syscw: Some(kb(io.syscw)),
        read_bytes: Some(kb(io.read_bytes)),
        write_bytes: Some(kb(io.write_bytes)),
        cancelled_write_bytes: Some(kb(io.cancelled_write_bytes)),
        ..Counters::default()
    }
}

fn io_only(c: Counters) -> Counters {
    Counters {
        blkio_delay_ns: None,
        swapin_delay_ns: None,
        ..c
    }
}

fn delta(after: Counters, before: Counters) -> Counters {
    after.zip_with(&before, |a, b| Some(a? - b?))
}

/// Runs `ops` in a child stopped before and after them; returns taskstats' and /proc's
/// totals for the child's only thread, before and after.
fn measure(ops: &[String]) -> [(Counters, ProcIo); 2] {
    let mut child = Workload::start(ops);
    let pid = child.pid();
    let mut source = open(pid);
    let before = (
        io_only(thread(&mut source, pid).counters),
        ProcIo::read(pid),
    );
    child.run_ops();
    let after = (
        io_only(thread(&mut source, pid).counters),
        ProcIo::read(pid),
    );
    child.finish();
    [before, after]
}

#[test]
fn read_and_write_counts_match_proc_rounded_like_the_kernel() {
    require_root();
    let scratch = Scratch::new("taskstats-rw");
    let path = scratch.path("data");
    let [(ts0, io0), (ts1, io1)] = measure(&[
        format!("write:{path}:{K}:{B}"),
        format!("read:{path}:{K}:{B}"),
    ]);
    // The workload did exactly this, and nothing else.
    let io = io1.minus(&io0);
    assert_eq!(
        (io.syscw, io.wchar),
        (K, K * B),
        "/proc/PID/io delta: {io:?}"
    );
    assert_eq!(
        (io.syscr, io.rchar),
        (K, K * B),
        "/proc/PID/io delta: {io:?}"
    );
    // The child is stopped while both are read, and has one thread: equal totals, once rounded.
    assert_eq!(ts0, rounded(&io0), "totals before the workload");
    assert_eq!(ts1, rounded(&io1), "totals after the workload");
    let ts = delta(ts1, ts0);
    let expected = delta(rounded(&io1), rounded(&io0));
    assert_eq!(
        ts, expected,
        "taskstats delta against /proc's, both rounded"
    );
    // 3000 calls from a count below 1024 land on 3072 or 2048 more, never on 3000.
    assert_ne!(ts.syscw, Some(K));
}

#[test]
fn read_bytes_of_reads_that_bypass_the_page_cache_match_proc() {
    require_root();
    const N: u64 = 64;
    const SIZE: u64 = 64 * 1024;
    let scratch = Scratch::new("taskstats-disk");
    let direct = scratch.file("direct", (N * SIZE) as usize);
    let dropped = scratch.file("dropped", (N * SIZE) as usize);
    let [(ts0, io0), (ts1, io1)] = measure(&[
        format!("direct-read:{direct}:{N}:{SIZE}"),
        format!("fadvise-read:{dropped}:{N}:{SIZE}"),
    ]);
    let from_disk = io1.read_bytes - io0.read_bytes;
    assert!(
        from_disk >= N * SIZE,
        "the reads did not reach the disk ({from_disk} bytes): is the scratch dir on tmpfs?"
    );
    assert_eq!(
        ts1.read_bytes.expect("read_bytes") - ts0.read_bytes.expect("read_bytes"),
        kb(io1.read_bytes) - kb(io0.read_bytes),
        "read_bytes: taskstats {ts0:?} -> {ts1:?}, /proc {io0:?} -> {io1:?}"
    );
    assert_eq!(ts1, rounded(&io1));
}

#[test]
fn a_thread_that_exits_between_refreshes_is_reported_with_its_last_counters() {
    require_root();
    let scratch = Scratch::new("taskstats-exit");
    let path = scratch.path("data");
    let mut child = Workload::start(&[format!("write:{path}:{K}:{B}")]);
    let pid = child.pid();
    let mut source = open(pid);
    assert!(
        source.listens_for_exits(),
        "the tests run in the initial user and pid namespaces, where the exit listener registers"
    );
    let alive = thread(&mut source, pid);
    child.run_ops();
    let last = ProcIo::read(pid);
    child.finish();
    let sample = source.sample().expect("sampling after the exit");
    let gone: Vec<&TaskSample> = sample.tasks.iter().filter(|t| t.tid == pid).collect();
    assert_eq!(gone.len(), 1, "one record for the exited thread: {gone:?}");
    let gone = gone[0];
    assert!(gone.exited, "{gone:?}");
    assert_eq!(gone.pid, pid);
    assert_eq!(
        gone.start_time, alive.start_time,
        "an exit record must carry the start time the thread had alive, or the model takes it for a new task"
    );
    assert_eq!(io_only(gone.counters), rounded(&last));
    assert_eq!(sample.lost_events, Some(0));
}

#[test]
fn a_process_exited_but_not_reaped_is_reported_once_as_exited() {
    require_root();
    let mut child = Workload::start(&[]);
    let pid = child.pid();
    let mut source = open(pid);
    let alive = thread(&mut source, pid);
    child.run_ops();
    // Let it exit, and leave it a zombie: still listed in /proc, still answering taskstats.
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGCONT) }, 0);
    // SAFETY: all-zero is a valid siginfo_t, which waitid overwrites.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child with a valid siginfo pointer; WNOWAIT leaves it unreaped.
    let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
    assert_eq!(r, 0, "waitid: {}", std::io::Error::last_os_error());

    let first = source.sample().expect("sampling after the exit");
    let records: Vec<&TaskSample> = first.tasks.iter().filter(|t| t.tid == pid).collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].exited, "{:?}", records[0]);
    assert_eq!(records[0].start_time, alive.start_time);
    let second = source.sample().expect("sampling the zombie again");
    let records: Vec<&TaskSample> = second.tasks.iter().filter(|t| t.tid == pid).collect();
    assert!(
        records.is_empty(),
        "an exited process must not come back as a live one: {records:?}"
    );
    drop(child);
}

#[test]
fn delay_counters_follow_kernel_task_delayacct() {
    require_root();
    let me = std::process::id();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u32;
    for (setting, measured) in [("1", true), ("0", false)] {
        // A /proc fixture listing only this thread, with the sysctl as given.
        let scratch = Scratch::new(&format!("taskstats-delayacct-{setting}"));
        let root = scratch.dir.join("proc");
        std::fs::create_dir_all(root.join(format!("{me}/task/{tid}"))).expect("fixture");
        std::fs::create_dir_all(root.join("sys/kernel")).expect("fixture");
        std::fs::write(
            root.join("sys/kernel/task_delayacct"),
            format!("{setting}\n"),
        )
        .expect("fixture");
        let mut source = TaskstatsSource::open(Scope {
            pids: [me].into(),
            proc_root: root,
        })
        .expect("opening the taskstats source on a fixture /proc");
        let sample = source.sample().expect("sampling");
        // The fixture lists this thread alone; exit records of this process's other threads
        // (the previous round's exit reader, say) may come with it.
        let live: Vec<_> = sample.tasks.iter().filter(|t| !t.exited).collect();
        assert_eq!(live.len(), 1, "{:?}", sample.tasks);
        assert_eq!(live[0].tid, tid, "{:?}", sample.tasks);
        let counters = live[0].counters;
        assert_eq!(counters.blkio_delay_ns.is_some(), measured, "{counters:?}");
        assert_eq!(counters.swapin_delay_ns.is_some(), measured, "{counters:?}");
        let unavailable = source.unavailable();
        if measured {
            assert!(unavailable.is_empty(), "{unavailable:?}");
        } else {
            assert_eq!(unavailable.len(), 1, "{unavailable:?}");
            assert_eq!(
                unavailable[0].counters,
                &[Counter::BlkioDelay, Counter::SwapinDelay]
            );
            assert_eq!(unavailable[0].reason, DELAYACCT_OFF);
            assert!(unavailable[0].reason.contains("kernel.task_delayacct=1"));
        }
    }
}

#[test]
fn start_time_stays_put_across_refreshes() {
    require_root();
    let me = std::process::id();
    let mut source = open(me);
    let first = thread(&mut source, me).start_time;
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(thread(&mut source, me).start_time, first);
    }
}

#[test]
fn a_thread_gone_between_listing_and_query_is_skipped_and_counted() {
    require_root();
    // A /proc fixture listing one thread that cannot exist: its id is above any pid_max.
    let scratch = Scratch::new("taskstats-gone");
    let fake = scratch.dir.join("proc");
    std::fs::create_dir_all(fake.join("99999999/task/99999999")).expect("fixture /proc tree");
    let mut source = TaskstatsSource::open(Scope {
        pids: [99999999].into(),
        proc_root: fake,
    })
    .expect("opening the taskstats source on a fixture /proc");
    let sample = source.sample().expect("a vanished thread is no error");
    assert!(sample.tasks.is_empty(), "{:?}", sample.tasks);
    assert_eq!(sample.skipped_tasks, 1);
}

#[test]
fn the_running_kernel_sends_a_struct_the_decoder_knows() {
    require_root();
    let source = open(std::process::id());
    let (version, len) = source.struct_version();
    match decode::known_size(version) {
        Some(size) => assert_eq!(len, size, "struct taskstats v{version}"),
        // Newer than the decoder: only appends since v16.
        None => assert!(
            version > 16 && len >= 560,
            "struct taskstats v{version}, {len} bytes"
        ),
    }
}

const USERNS_ENV: &str = "PROFILER_TASKSTATS_IN_USERNS";
const USERNS_MARKER: &str = "taskstats in a user namespace: EPERM as expected";

#[test]
fn in_a_user_namespace_open_fails_with_a_typed_eperm() {
    require_root();
    let exe = std::env::current_exe().expect("test executable path");
    let out = Command::new("unshare")
        .args(["-U", "-r"])
        .arg(&exe)
        .args(["--exact", "user_namespace_child", "--nocapture"])
        .env(USERNS_ENV, "1")
        .output()
        .expect("running `unshare -U -r` (util-linux)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the check inside the user namespace failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(USERNS_MARKER),
        "the check inside the user namespace did not run:\n{stdout}\n{stderr}"
    );
}

/// Runs only as the child of the test above, inside `unshare -U -r`.
#[test]
fn user_namespace_child() {
    if std::env::var_os(USERNS_ENV).is_none() {
        return;
    }
    match TaskstatsSource::open(Scope::default()) {
        Err(e @ TaskstatsError::PermissionDenied) => {
            let message = e.to_string();
            assert!(message.contains("CAP_NET_ADMIN"), "{message}");
            assert!(message.contains("initial user namespace"), "{message}");
            println!("{USERNS_MARKER}: {message}");
        }
        Err(e) => panic!("expected TaskstatsError::PermissionDenied, got {e:?}: {e}"),
        Ok(_) => panic!("TaskstatsSource::open succeeded inside a user namespace"),
    }
}
