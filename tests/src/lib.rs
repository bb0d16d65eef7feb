//! Helpers for the integration tests: the `workload` child with known I/O, /proc/PID/io,
//! the path of the built `profiler` binary, and the root check.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Tests that load eBPF or query taskstats need root: say so and fail, never skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (eBPF and taskstats need CAP_BPF/CAP_NET_ADMIN): run `cargo xtask test`");
}

/// A binary built beside this test (target/<profile>/NAME).
pub fn target_dir_bin(name: &str) -> PathBuf {
    // Tests run from target/<profile>/deps/<test>-<hash>; binaries sit in target/<profile>/.
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    dir.join(name)
}

/// The `profiler` binary: $PROFILER_BIN, or the one beside this test's build.
pub fn profiler_bin() -> PathBuf {
    let path = std::env::var_os("PROFILER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir_bin("profiler"));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo xtask test` (it builds the binary)",
        path.display()
    );
    path
}

/// The profiler, to be run as `nobody` (uid and gid 65534, no groups, no capabilities) with
/// the arguments the caller adds. setpriv starts it itself, which works from a checkout under
/// a 0700 directory too.
pub fn profiler_as_nobody() -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(profiler_bin());
    command
}

/// The `workload` binary; cargo builds it before this package's integration tests.
pub fn workload_bin() -> PathBuf {
    let path = target_dir_bin("workload");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo xtask test`",
        path.display()
    );
    path
}

/// The counters of /proc/PID/io (or /proc/PID/task/TID/io).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcIo {
    pub rchar: u64,
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
}

impl ProcIo {
    pub fn read(pid: u32) -> ProcIo {
        let text =
            std::fs::read_to_string(format!("/proc/{pid}/io")).expect("reading /proc/PID/io");
        let mut io = ProcIo::default();
        for line in text.lines() {
            let (key, value) = line.split_once(": ").expect("key: value");
            let value: u64 = value.trim().parse().expect("number");
            match key {
                "rchar" => io.rchar = value,
                "wchar" => io.wchar = value,
                "syscr" => io.syscr = value,
                "syscw" => io.syscw = value,
                "read_bytes" => io.read_bytes = value,
                "write_bytes" => io.write_bytes = value,
                "cancelled_write_bytes" => io.cancelled_write_bytes = value,
                _ => {}
            }
        }
        io
    }

    pub fn minus(&self, before: &ProcIo) -> ProcIo {
        ProcIo {
            rchar: self.rchar - before.rchar,
            wchar: self.wchar - before.wchar,
            syscr: self.syscr - before.syscr,
            syscw: self.syscw - before.syscw,
            read_bytes: self.read_bytes - before.read_bytes,
            write_bytes: self.write_bytes - before.write_bytes,
            cancelled_write_bytes: self.cancelled_write_bytes - before.cancelled_write_bytes,
        }
    }
}

/// A `workload` child started with `--stop`: it stops before its ops and after them, so a test
/// can read counters around exactly the workload.
pub struct Workload {
    child: Child,
}

fn wait_stopped(pid: u32) {
    let mut status = 0;
    // SAFETY: waiting on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WUNTRACED) };
    assert_eq!(
        r,
        pid as i32,
        "waitpid: {}",
        std::io::Error::last_os_error()
    );
    assert!(
        libc::WIFSTOPPED(status),
        "workload {pid} did not stop (status {status:#x}); did an op fail?"
    );
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signalling our own child.
    let r = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
}

impl Workload {
    /// Starts the child (optionally through a wrapper command, e.g. `unshare`) and waits until
    /// it has stopped before its first op.
    pub fn start(ops: &[String]) -> Workload {
        let child = Command::new(workload_bin())
            .arg("--stop")
            .args(ops)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning workload");
        wait_stopped(child.id());
        Workload { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the ops run and waits until they are all done (the child stops again).
    pub fn run_ops(&mut self) {
        signal(self.pid(), libc::SIGCONT);
        wait_stopped(self.pid());
    }

    /// Lets the child exit and reaps it; panics if it failed.
    pub fn finish(mut self) {
        signal(self.pid(), libc::SIGCONT);
        let status = self.child.wait().expect("waiting for workload");
        assert!(status.success(), "workload failed: {status}");
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the cgroup v2 hierarchy is mounted.
pub fn cgroup2_mount() -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if !right.starts_with("cgroup2 ") {
                return None;
            }
            left.split(' ').nth(4).map(PathBuf::from)
        })
        .expect("a cgroup v2 hierarchy is mounted")
}

/// A cgroup v2 group, removed (after its tasks are gone) on drop.
pub struct Group {
    pub path: PathBuf,
    pub name: String,
}

impl Group {
    pub fn new(name: String) -> Group {
        let path = cgroup2_mount().join(&name);
        std::fs::create_dir_all(&path).expect("creating a cgroup");
        Group { path, name }
    }

    pub fn adopt(&self, pid: u32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .expect("moving a task into the cgroup");
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A scratch directory on a disk-backed file system (not tmpfs), removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let base = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating scratch dir");
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8 path").to_owned()
    }

    /// A file of `len` bytes, written and synced so later reads can bypass or use the page cache.
    pub fn file(&self, name: &str, len: usize) -> String {
        let path = self.path(name);
        std::fs::write(&path, vec![b'y'; len]).expect("writing fixture file");
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .expect("syncing fixture file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A profiler whose stdout is read line by line while it runs, so a test can time a child's
/// I/O against its refreshes. Killed on drop, so a failed assertion leaves nothing behind.
pub struct Run {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: BufReader<ChildStderr>,
    said: String,
}

impl Run {
    /// Starts `profiler ARGS` and returns once it has said which source it uses: its baseline
    /// sample follows at once.
    pub fn start(args: &[&str]) -> Run {
        let mut child = Command::new(profiler_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting profiler");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut said = String::new();
        while !said.lines().any(|l| l.starts_with("source: ")) {
            let n = stderr.read_line(&mut said).expect("reading stderr");
            assert!(
                n > 0,
                "profiler {args:?} ended before opening its source: {said}"
            );
        }
        Run {
            child,
            stdout,
            stderr,
            said,
        }
    }

    /// The next line of stdout; it comes with the next refresh.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("reading stdout");
        assert!(n > 0, "profiler ended early; stderr: {}", self.said);
        line.trim_end_matches('\n').to_owned()
    }

    /// Waits for the end; the rest of stdout by line, and all of stderr.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let mut out = String::new();
        self.stdout
            .read_to_string(&mut out)
            .expect("reading stdout");
        let mut err = std::mem::take(&mut self.said);
        self.stderr
            .read_to_string(&mut err)
            .expect("reading stderr");
        let status = self.child.wait().expect("waiting for profiler");
        (status, out.lines().map(str::to_owned).collect(), err)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lets the profilers just started take their baseline samples.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(200));
}

/// A kernel setting under /proc/sys (e.g. `kernel/pid_max`) changed for as long as this lives,
/// then put back, also when a test fails. Machine-wide: tests that set the same one take turns.
pub struct Sysctl {
    path: PathBuf,
    before: String,
}

impl Sysctl {
    pub fn set(name: &str, value: &str) -> Sysctl {
        let path = PathBuf::from("/proc/sys").join(name);
        let before = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("setting {} to {value}: {e}", path.display()));
        Sysctl { path, before }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, self.before.trim()) {
            eprintln!(
                "could not restore {} to {}: {e}",
                self.path.display(),
                self.before.trim()
            );
        }
    }
}
