//! Truth under churn and abuse: tasks that exit, ids the kernel hands out again, bursts of
//! exits, closed pipes and absurd arguments. Every churn here is bounded in count and time.

use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use profiler_tests::{profiler_bin, require_root, settle, Run, Scratch, Sysctl, Workload};
use serde_json::Value;

fn objects(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `-a` with rows per process or per container: a thread writes N×B bytes and exits while
/// the process goes on; every refresh after that must still count its bytes, and no refresh
/// may count fewer than the one before.
fn accumulated_group_keeps_an_exited_thread(source: &str, group: &str) {
    require_root();
    const N: u64 = 256;
    const B: u64 = 4096;
    let s = Scratch::new(&format!("churn-acc-{source}-{group}"));
    // The thread lingers past a refresh, so that procfs, which sees only live threads, sees
    // its writes too.
    let mut child = Workload::start(&[format!("thread-write:{}:{N}:{B}:700", s.path("out"))]);
    let pid = child.pid().to_string();
    let run = Run::start(&[
        "--source", source, "--json", "-a", "--group", group, "-n", "6", "-d", "0.4", "-p", &pid,
    ]);
    settle();
    child.run_ops();
    let (status, lines, err) = run.finish();
    assert!(status.success(), "{err}");
    let objects = objects(&lines);
    assert_eq!(objects.len(), 6, "{lines:?}");
    let mut last = 0;
    let mut seen = false;
    for o in &objects {
        let tasks = o["tasks"].as_array().expect("tasks");
        // Sources that list only tasks doing I/O have no row before the writes.
        if tasks.is_empty() && !seen {
            continue;
        }
        seen = true;
        assert_eq!(
            tasks.len(),
            1,
            "one row for the one process, to the end: {lines:?}"
        );
        let wchar = tasks[0]["delta"]["wchar"].as_u64().unwrap_or(0);
        assert!(
            wchar >= last,
            "{source} --group {group} -a went down from {last} to {wchar}: {lines:?}"
        );
        last = wchar;
    }
    assert_eq!(
        last,
        N * B,
        "{source} --group {group} -a keeps the exited thread's bytes: {lines:?}"
    );
    child.finish();
}

#[test]
fn accumulated_processes_keep_exited_threads_ebpf() {
    accumulated_group_keeps_an_exited_thread("ebpf", "process");
}

#[test]
fn accumulated_processes_keep_exited_threads_taskstats() {
    accumulated_group_keeps_an_exited_thread("taskstats", "process");
}

#[test]
fn accumulated_processes_keep_exited_threads_procfs() {
    accumulated_group_keeps_an_exited_thread("procfs", "process");
}

#[test]
fn accumulated_containers_keep_exited_threads_ebpf() {
    accumulated_group_keeps_an_exited_thread("ebpf", "container");
}

#[test]
fn accumulated_containers_keep_exited_threads_procfs() {
    accumulated_group_keeps_an_exited_thread("procfs", "container");
}

/// Runs `profiler ARGS`, reads up to `first` bytes of its stdout (or of its stderr, when
/// `from_stderr`), then closes both pipes; returns the exit status. Bounded: after `limit`
/// it is sent SIGTERM.
fn with_closed_pipes(
    args: &[&str],
    from_stderr: bool,
    first: usize,
    limit: Duration,
) -> std::process::ExitStatus {
    let mut child = Command::new(profiler_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting profiler");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut buf = vec![0u8; first];
    let read = if from_stderr {
        stderr.read(&mut buf)
    } else {
        stdout.read(&mut buf)
    };
    assert!(read.expect("reading") > 0, "{args:?} said nothing");
    drop(stdout);
    drop(stderr);
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            return status;
        }
        if Instant::now() > deadline {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            return child.wait().expect("waiting");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_closed_pipe_ends_every_mode_quietly() {
    require_root();
    for (args, from_stderr) in [
        (&["--list-sources"][..], false),
        (&["-b", "-d", "0.1", "-n", "50"], false),
        (&["--json", "-d", "0.1", "-n", "50"], false),
        (&["-b", "-d", "0.1", "-n", "50"], true),
        (&["serve", "--listen", "127.0.0.1:0", "-d", "0.2"], true),
        (&["--help"], false),
    ] {
        let status = with_closed_pipes(args, from_stderr, 10, Duration::from_secs(6));
        assert_ne!(
            status.code(),
            Some(101),
            "{args:?} panicked on a closed pipe"
        );
        assert!(status.success(), "{args:?}: {status}");
    }
}

#[test]
fn delays_out_of_range_are_refused_in_one_line() {
    for delay in [
        "1e-10", "0.001", "1e19", "9.3e18", "86401", "inf", "nan", "0",
    ] {
        for mode in [&["-b", "-n", "1"][..], &[], &["serve"]] {
            let mut args: Vec<&str> = mode.to_vec();
            args.extend(["-d", delay]);
            let out = Command::new(profiler_bin())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("running profiler");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
            assert!(
                err.contains("seconds") && err.starts_with("profiler: "),
                "{args:?}: says the range: {err}"
            );
        }
    }
}

/// Sets `kernel.pid_max` for the life of the guard, and puts the old value back when dropped,
/// a failed assertion included.
/// The tests that load the machine (thousands of threads, a lowered pid_max) take turns: a
/// burst of 10,000 threads would not fit in the pid space another test has just shrunk.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a source reported about a burst of short threads.
struct Captured {
    /// Sum of every thread row's wchar delta, over every refresh, but the main thread's.
    wchar: u64,
    lost_events: u64,
    refreshes: usize,
}

/// `threads` threads of one process (`op`: short-threads, one after another, or
/// thread-burst, all at once), each writing 4 × 4096 bytes to /dev/null and exiting, watched
/// by `source` with `-p` at 4 refreshes a second. Bounded: the workload by its count, the
/// profiler by SIGTERM once the workload is done. Callers take their turn ([`heavy`]).
fn burst_of_short_threads(source: &str, op: &str, threads: u64) -> Captured {
    let mut child = Workload::start(&[format!("{op}:{threads}:4:4096")]);
    let pid = child.pid().to_string();
    let mut profiler = Command::new(profiler_bin())
        .args([
            "--source", source, "--json", "-d", "0.25", "-n", "400", "-p", &pid,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting profiler");
    let stdout = profiler.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::BufReader::new(stdout)
            .read_to_string(&mut text)
            .expect("reading stdout");
        text
    });
    let mut stderr = std::io::BufReader::new(profiler.stderr.take().expect("stderr"));
    let mut err = String::new();
    while !err.lines().any(|l| l.starts_with("source: ")) {
        let n = stderr.read_line(&mut err).expect("reading stderr");
        assert!(
            n > 0,
            "{source}: profiler ended before opening its source: {err}"
        );
    }
    // The baseline follows at once; then the churn.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    child.run_ops();
    let took = started.elapsed();
    // Two more refreshes see the last exits.
    std::thread::sleep(Duration::from_millis(600));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(profiler.id() as i32, libc::SIGTERM) };
    stderr.read_to_string(&mut err).expect("reading stderr");
    let status = profiler.wait().expect("waiting for profiler");
    assert!(status.success(), "{source}: {status}: {err}");
    let text = reader.join().expect("reader");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let objects = objects(&lines);
    let main: u64 = child.pid().into();
    child.finish();
    let mut captured = Captured {
        wchar: 0,
        lost_events: 0,
        refreshes: objects.len(),
    };
    for o in &objects {
        captured.lost_events = captured
            .lost_events
            .max(o["lost_events"].as_u64().unwrap_or(0));
        for t in o["tasks"].as_array().expect("tasks") {
            if t["tid"].as_u64() != Some(main) {
                captured.wchar += t["delta"]["wchar"].as_u64().unwrap_or(0);
            }
        }
    }
    eprintln!(
        "{source}: {op} of {threads} threads in {:.1} s: {:.2}% of the bytes, lost_events {}, {} refreshes",
        took.as_secs_f64(),
        captured.wchar as f64 * 100.0 / (threads * 4 * 4096) as f64,
        captured.lost_events,
        captured.refreshes
    );
    captured
}

/// Thread ids handed out again while the profiler watches: with pid_max at 2,000, 6,000
/// short threads wrap the id space three times, an id coming back within one refresh. A
/// source that catches exits must count every byte once: no delta against a dead thread that
/// had the id. pid_max is low only for those one or two seconds.
fn reused_tids_are_new_tasks(source: &str) {
    require_root();
    const THREADS: u64 = 6_000;
    let _turn = heavy();
    let captured = {
        let _pid_max = Sysctl::set("kernel/pid_max", "2000");
        burst_of_short_threads(source, "short-threads", THREADS)
    };
    assert_eq!(captured.lost_events, 0, "{source} lost events");
    assert_eq!(
        captured.wchar,
        THREADS * 4 * 4096,
        "{source}: every short thread's bytes, once"
    );
}

#[test]
fn reused_tids_are_new_tasks_ebpf() {
    reused_tids_are_new_tasks("ebpf");
}

#[test]
fn reused_tids_are_new_tasks_taskstats() {
    reused_tids_are_new_tasks("taskstats");
}

/// 10,000 threads that exit at once: the exit hooks must keep up.
fn exit_burst_is_captured(source: &str) {
    require_root();
    const THREADS: u64 = 10_000;
    let _turn = heavy();
    let captured = burst_of_short_threads(source, "thread-burst", THREADS);
    assert_eq!(captured.lost_events, 0, "{source} lost events");
    assert_eq!(
        captured.wchar,
        THREADS * 4 * 4096,
        "{source}: every short thread's bytes, once"
    );
}

#[test]
fn exit_burst_is_captured_ebpf() {
    exit_burst_is_captured("ebpf");
}

#[test]
fn exit_burst_is_captured_taskstats() {
    exit_burst_is_captured("taskstats");
}

/// What procfs, which reads only live tasks, sees of short threads: a figure for the README,
/// and no more than there was.
#[test]
fn procfs_sees_few_short_threads_and_no_more_than_there_were() {
    require_root();
    const THREADS: u64 = 2_000;
    let _turn = heavy();
    let captured = burst_of_short_threads("procfs", "short-threads", THREADS);
    assert!(captured.wchar <= THREADS * 4 * 4096);
}

/// Starts `profiler serve ARGS`, reads stderr up to the `serving` line, ends it; returns what
/// it said. Bounded: the line must come within the source's start-up.
fn serve_says(args: &[&str]) -> String {
    let mut child = Command::new(profiler_bin())
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting profiler serve");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    while !said.contains("serving http://") {
        if stderr.read_line(&mut said).expect("reading stderr") == 0 {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("waiting");
    assert!(status.success(), "{args:?}: {status}: {said}");
    said
}

#[test]
fn serve_names_the_port_it_got_and_warns_beyond_loopback() {
    require_root();
    let said = serve_says(&["--listen", "127.0.0.1:0", "--source", "procfs"]);
    let port: u16 = said
        .split("serving http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in: {said}"));
    assert_ne!(port, 0, "{said}");
    assert!(
        !said.contains("warning"),
        "loopback needs no warning: {said}"
    );
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let said = serve_says(&["--listen", listen, "--source", "procfs"]);
        assert!(
            said.contains("warning") && said.contains("not only loopback"),
            "{listen}: {said}"
        );
    }
}

#[test]
fn a_dumb_terminal_gets_text() {
    require_root();
    let out = Command::new(profiler_bin())
        .args(["-n", "1", "-d", "0.1", "--source", "procfs"])
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .output()
        .expect("running profiler");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Total DISK READ:") && !text.contains('\x1b'),
        "text lines, no escape sequences: {text}"
    );
    assert!(err.contains("TERM=dumb"), "says why: {err}");
}

/// Bounded fuzz of the binary: 150 random argument vectors from words good, bad and absurd,
/// each run to its end (or killed after 3 s, which is no failure). None may panic.
#[test]
fn random_command_lines_never_panic() {
    require_root();
    const WORDS: &[&str] = &[
        "-b",
        "-n",
        "-d",
        "-p",
        "-u",
        "-P",
        "-a",
        "-o",
        "-k",
        "-t",
        "-q",
        "-qq",
        "--json",
        "--source",
        "--group",
        "--container",
        "--list-sources",
        "--",
        "0",
        "1",
        "2",
        "-1",
        "1e-10",
        "1e19",
        "9.3e18",
        "nan",
        "0.05",
        "0.01",
        "4294967296",
        "procfs",
        "taskstats",
        "auto",
        "procfs,taskstats",
        "",
        "container",
        "process",
        "thread",
        "root",
        "nobody",
        "no-such",
        "\u{1F600}",
        "%s%n",
        "../../etc/passwd",
        "1",
        "host",
    ];
    let mut rng = profiler::fuzz::Rng::from_env("random_command_lines_never_panic");
    let mut next = move |n: usize| rng.below(n);
    let started = Instant::now();
    for _ in 0..150 {
        let mut args: Vec<&str> = (0..next(7)).map(|_| WORDS[next(WORDS.len())]).collect();
        // Text out, and an end in sight (a second -n or -d is itself an error); delays short
        // or absurd.
        let delay = ["0.05", "0.01", "1e-10", "9.3e18", "1e19"][next(5)];
        args.extend(["-b", "-n", "2", "-d", delay]);
        let mut child = Command::new(profiler_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting profiler");
        let mut stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let deadline = Instant::now() + Duration::from_secs(3);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let err = reader.join().expect("stderr reader");
        assert!(
            !err.contains("panicked") && status.is_none_or(|s| s.code() != Some(101)),
            "{args:?} panicked: {err}"
        );
    }
    eprintln!(
        "150 command lines in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `profiler serve` on a port of its choosing, running until dropped.
struct Exporter {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Exporter {
    fn start(args: &[&str]) -> Exporter {
        let mut child = Command::new(profiler_bin())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting profiler serve");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut said = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).expect("reading stderr") == 0 {
                panic!("serve ended: {said}");
            }
            said.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("serving http://") {
                let addr = rest.trim_end_matches("/metrics");
                break addr.parse().unwrap_or_else(|_| panic!("address in {line}"));
            }
        };
        // Keep draining stderr, so that the exporter never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Exporter { child, addr }
    }

    /// One GET, with these extra header lines; the whole reply.
    fn get(&self, path: &str, headers: &str, limit: Duration) -> String {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect_timeout(&self.addr, limit)
            .expect("connecting to the exporter");
        stream.set_read_timeout(Some(limit)).expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n{headers}\r\n",
            self.addr
        )
        .expect("request");
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .unwrap_or_else(|e| panic!("no answer within {limit:?}: {e}"));
        reply
    }

    /// How long one GET /metrics takes, answer included; panics past `limit`.
    fn scrape(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        let reply = self.get("/metrics", "", limit);
        assert!(
            reply.starts_with("HTTP/1.0 200") && reply.contains("profiler_samples_total"),
            "{reply}"
        );
        started.elapsed()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 200 local clients that connect, say nothing, and connect again as soon as they are
/// closed: scrapes must still be answered in well under Prometheus' 10 s timeout. Bounded:
/// the flood lasts as long as five scrapes, and its clients give up after 1 s each.
#[test]
fn an_idle_connection_flood_does_not_starve_scrapes() {
    require_root();
    use std::sync::atomic::{AtomicBool, Ordering};
    let _turn = heavy();
    let exporter = Exporter::start(&["--source", "procfs", "-d", "1"]);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let addr = exporter.addr;
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut idle) =
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    else {
                        continue;
                    };
                    let _ = idle.set_read_timeout(Some(Duration::from_millis(200)));
                    // Held, silent, until the server closes it.
                    while !stop.load(Ordering::Relaxed) {
                        match idle.read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let took: Vec<Duration> = (0..5)
        .map(|_| exporter.scrape(Duration::from_secs(15)))
        .collect();
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.join().expect("flood client");
    }
    let worst = took.iter().max().expect("five scrapes");
    eprintln!("scrapes under an idle flood: {took:?}");
    assert!(
        *worst < Duration::from_secs(2),
        "a scrape waited {worst:?} behind idle connections: {took:?}"
    );
}

#[test]
fn a_token_file_keeps_metrics_from_who_cannot_read_it() {
    require_root();
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("churn-token");
    let token = s.path("token");
    std::fs::write(&token, "0123456789abcdef\n").expect("writing the token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let exporter = Exporter::start(&["--source", "procfs", "-d", "1", "--token-file", &token]);
    let limit = Duration::from_secs(5);
    let without = exporter.get("/metrics", "", limit);
    assert!(without.starts_with("HTTP/1.0 401"), "{without}");
    assert!(!without.contains("profiler_write"), "{without}");
    let wrong = exporter.get("/metrics", "Authorization: Bearer 0123\r\n", limit);
    assert!(wrong.starts_with("HTTP/1.0 401"), "{wrong}");
    let right = exporter.get(
        "/metrics",
        "Authorization: Bearer 0123456789abcdef\r\n",
        limit,
    );
    assert!(
        right.starts_with("HTTP/1.0 200") && right.contains("profiler_samples_total"),
        "{right}"
    );
    let health = exporter.get("/healthz", "", limit);
    assert!(health.starts_with("HTTP/1.0 200"), "{health}");
    // An empty token file is refused at start, with the reason.
    std::fs::write(&token, "").expect("emptying the token");
    let out = Command::new(profiler_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file", &token])
        .stdin(Stdio::null())
        .output()
        .expect("running profiler serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--token-file") && err.lines().count() == 1,
        "{err}"
    );
}
