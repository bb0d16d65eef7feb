//! Real containers: Debian's dockerd and podman, each with its own data root (and dockerd with
//! its own socket), an image built `FROM scratch` from the profiler binary, the libraries `ldd`
//! names (none for the static binary) and busybox-static. For each way of running the profiler
//! that the README lists, a `dd` with a known number of reads and writes runs in another
//! container (or in the profiler's own, where its pid namespace hides the others): one is seen
//! alive mid-way and then exits, one exits between two refreshes. The test checks the source
//! announced, the advice printed, and the exact counts with the container's label.
//!
//! `cargo xtask test` installs the engines; where none can be installed it sets
//! PROFILER_ENGINES_SKIP to the reason, and this test prints it and checks nothing.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use profiler_tests::{profiler_bin, require_root, target_dir_bin};
use serde_json::Value;

/// Blocks of the live `dd` (read from a fifo the test feeds); half are fed first. Multiples of
/// 1024, so that taskstats' rounding (KB_MASK) keeps them exact.
const LIVE_BLOCKS: u64 = 2048;
/// Blocks of the `dd` that starts and exits between two refreshes.
const QUICK_BLOCKS: u64 = 3072;
const BLOCK: u64 = 4096;
/// Refreshes of the profiler in each mode, one a second.
const REFRESHES: u32 = 9;

fn run(cmd: &mut Command) -> std::process::Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).trim().to_owned()
}

/// A scratch directory for one engine, removed on drop (after the engine's own cleanup).
fn lab_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the lab directory");
    dir
}

/// The image's files: the profiler, what `ldd` says it loads (nothing for the static binary: the
/// image then has no libc at all), busybox-static and its applet links.
fn image_context(dir: &Path, profiler: &Path, statically_linked: bool) -> PathBuf {
    let ctx = dir.join("image");
    let root = ctx.join("rootfs");
    for d in ["bin", "x", "tmp"] {
        std::fs::create_dir_all(root.join(d)).expect("image directories");
    }
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("image directory");
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("copying {} into the image: {e}", from.display()));
    };
    copy(profiler, &root.join("bin/profiler"));
    // A static binary has no libraries, and ldd says so with a non-zero exit.
    let ldd = Command::new("ldd").arg(profiler).output().expect("ldd");
    let libs: Vec<PathBuf> = String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect();
    assert!(
        !statically_linked || libs.is_empty(),
        "the static binary {} loads libraries: {libs:?}",
        profiler.display()
    );
    for lib in &libs {
        copy(lib, &root.join(lib.strip_prefix("/").expect("absolute")));
    }
    copy(Path::new("/bin/busybox"), &root.join("bin/busybox"));
    for applet in ["sh", "dd", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("applet link");
    }
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").expect("Dockerfile");
    ctx
}

/// One container engine: how to call its CLI and how its containers are labelled.
trait Engine {
    fn name(&self) -> &'static str;
    fn cli(&self) -> Command;
    fn label(&self, id: &str) -> String;
}

const IMAGE: &str = "profiler-test-image";

/// dockerd on its own socket, data root and containerd namespace, with the runc wrapper.
struct Docker {
    dir: PathBuf,
    daemon: Child,
}

impl Docker {
    fn start(dir: &Path) -> Docker {
        let sock = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        let daemon = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .args(["--iptables=false", "--bridge=none"])
            .args(["--containerd-namespace", "profiler-test"])
            .args(["--containerd-plugins-namespace", "profiler-test-plugins"])
            .arg("--add-runtime")
            .arg(format!(
                "no-sys-resource={}",
                target_dir_bin("runc-no-sys-resource").display()
            ))
            .args(["--default-runtime", "no-sys-resource"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let docker = Docker {
            dir: dir.to_path_buf(),
            daemon,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker
            .cli()
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 60 s: see {}",
                dir.join("dockerd.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        docker
    }
}

impl Engine for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn cli(&self) -> Command {
        // Debian's client, not another one on PATH: the versions here are the ones tested.
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.arg("--host")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()));
        cmd
    }

    fn label(&self, id: &str) -> String {
        format!("docker:{}", &id[..12])
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        remove_containers(self);
        let _ = self.cli().args(["rmi", "--force", IMAGE]).output();
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.daemon.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Detaches what the engine left mounted under `dir` (dockerd's bind mount of its network
/// namespace stays after it exits), innermost first, so that the directory can be removed.
fn unmount_under(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_unstable_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let c = std::ffi::CString::new(point).expect("no NUL in a mount point");
        // SAFETY: `c` is a valid NUL-terminated path; MNT_DETACH only unhooks the mount.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// podman with its own storage, the cgroupfs manager (no systemd here) and the runc wrapper.
struct Podman {
    dir: PathBuf,
}

impl Engine for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .arg("--runtime")
            .arg(target_dir_bin("runc-no-sys-resource"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        cmd
    }

    fn label(&self, id: &str) -> String {
        format!("podman:{}", &id[..12])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        remove_containers(self);
        let _ = self.cli().args(["system", "reset", "--force"]).output();
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn remove_containers(engine: &dyn Engine) {
    let Ok(out) = engine.cli().args(["ps", "--all", "--quiet"]).output() else {
        return;
    };
    let ids = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = engine.cli().args(["rm", "--force"]).args(&ids).output();
    }
}

/// A way of running the profiler, as the README's table lists it, and what it must show.
struct Mode {
    name: &'static str,
    flags: &'static [&'static str],
    /// The profiler sees the host's pids: the workloads run in containers of their own.
    host_pids: bool,
    /// The source announced (`source: NAME`); None when no source may open.
    source: Option<&'static str>,
    /// Text that stderr must contain (the reasons and the advice).
    says: &'static [&'static str],
    /// Text that stderr must not contain.
    never_says: &'static [&'static str],
    /// A task that exits between two refreshes is counted.
    sees_exits: bool,
    /// The task that exits between two refreshes carries its container label.
    labels_exits: bool,
}

const HOST_CGROUPS: &str = "/sys/fs/cgroup:/sys/fs/cgroup:ro";

fn docker_modes() -> Vec<Mode> {
    vec![
        Mode {
            name: "privileged, host pids, own network, no mounts",
            flags: &["--privileged", "--pid=host", "--network=none"],
            host_pids: true,
            source: Some("ebpf"),
            says: &[
                "(taskstats: misses tasks that exit between refreshes",
                "--network=host",
            ],
            never_says: &["run as root"],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            name: "privileged, host pids, host cgroups",
            flags: &[
                "--privileged",
                "--pid=host",
                "--network=none",
                "-v",
                HOST_CGROUPS,
            ],
            host_pids: true,
            source: Some("ebpf"),
            says: &["(taskstats: misses tasks that exit between refreshes"],
            never_says: &[
                "run as root",
                "container labels of some tasks are unavailable",
            ],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            name: "privileged, host pids, host network",
            flags: &[
                "--privileged",
                "--pid=host",
                "--network=host",
                "-v",
                HOST_CGROUPS,
            ],
            host_pids: true,
            source: Some("taskstats"),
            says: &[],
            never_says: &["misses tasks", "run as root"],
            sees_exits: true,
            // taskstats' exit record has no cgroup, and /proc/PID/cgroup is gone by then.
            labels_exits: false,
        },
        Mode {
            // The default on cgroup v2 hosts: paths in /proc/PID/cgroup are relative to it.
            name: "privileged, host pids, private cgroup namespace",
            flags: &[
                "--privileged",
                "--pid=host",
                "--network=none",
                "--cgroupns=private",
            ],
            host_pids: true,
            source: Some("ebpf"),
            says: &["(taskstats: misses tasks that exit between refreshes"],
            never_says: &["run as root", "cgroup namespace of its own"],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            name: "privileged, own pid namespace",
            flags: &["--privileged", "--network=none"],
            host_pids: false,
            source: Some("ebpf"),
            says: &[
                "(taskstats: misses tasks that exit between refreshes",
                "--pid=host",
            ],
            never_says: &["run as root"],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            // Docker 20.10 knows no CAP_BPF or CAP_PERFMON; CAP_SYS_ADMIN stands in for both.
            name: "SYS_ADMIN capability, host pids",
            flags: &["--cap-add", "SYS_ADMIN", "--pid=host", "--network=none"],
            host_pids: true,
            source: Some("ebpf"),
            says: &["lacks CAP_NET_ADMIN", "--cap-add NET_ADMIN"],
            never_says: &["run as root"],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            name: "default container",
            flags: &["--network=none"],
            host_pids: false,
            source: Some("procfs"),
            says: &[
                "this process is root but lacks CAP_BPF and CAP_PERFMON",
                "--cap-add BPF --cap-add PERFMON",
                "--cap-add NET_ADMIN",
                "procfs: misses tasks that exit between refreshes",
            ],
            never_says: &["run as root"],
            sees_exits: false,
            labels_exits: false,
        },
    ]
}

fn podman_modes() -> Vec<Mode> {
    vec![
        Mode {
            name: "privileged, host pids",
            flags: &["--privileged", "--pid=host", "--network=none"],
            host_pids: true,
            source: Some("ebpf"),
            says: &["(taskstats: misses tasks that exit between refreshes"],
            never_says: &["run as root"],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            name: "BPF and PERFMON capabilities, default seccomp profile",
            flags: &[
                "--cap-add",
                "BPF",
                "--cap-add",
                "PERFMON",
                "--pid=host",
                "--network=none",
            ],
            host_pids: true,
            source: None,
            says: &[
                "a seccomp filter blocks bpf()",
                "--security-opt seccomp=unconfined",
            ],
            never_says: &["run as root", "lacks CAP_BPF"],
            sees_exits: false,
            labels_exits: false,
        },
        Mode {
            name: "BPF and PERFMON capabilities, seccomp unconfined",
            flags: &[
                "--cap-add",
                "BPF",
                "--cap-add",
                "PERFMON",
                "--security-opt",
                "seccomp=unconfined",
                "--pid=host",
                "--network=none",
            ],
            host_pids: true,
            source: Some("ebpf"),
            says: &["--cap-add NET_ADMIN"],
            never_says: &["run as root"],
            sees_exits: true,
            labels_exits: true,
        },
        Mode {
            name: "user namespace",
            flags: &[
                "--uidmap",
                "0:100000:65536",
                "--gidmap",
                "0:100000:65536",
                "--network=none",
            ],
            host_pids: false,
            source: Some("procfs"),
            says: &[
                "runs in a user namespace (uid_map \"0 100000 65536\")",
                "profiler: this runs in a user namespace",
            ],
            never_says: &["lacks CAP_BPF"],
            sees_exits: false,
            labels_exits: false,
        },
    ]
}

/// The profiler's container, its stdout and stderr read line by line on their own threads.
struct Profiler {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    said: String,
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Profiler {
    fn start(
        engine: &dyn Engine,
        name: &str,
        mode: &Mode,
        share: &Path,
        args: &[String],
    ) -> Profiler {
        let mut child = engine
            .cli()
            .args(["run", "--rm", "--name", name])
            .args(mode.flags)
            .arg("-v")
            .arg(format!("{}:/x", share.display()))
            .args([IMAGE, "/bin/profiler"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the profiler's container");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        Profiler {
            child,
            stdout,
            stderr,
            said: String::new(),
        }
    }

    /// Waits for the `source:` line (Ok) or the end of stderr (Err, with all of it).
    fn announced(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.said.push_str(&line);
                    self.said.push('\n');
                    if let Some(source) = line.strip_prefix("source: ") {
                        return Ok(source.to_owned());
                    }
                }
                Err(_) => return Err(self.said.clone()),
            }
        }
    }

    /// The next refresh, as JSON.
    fn refresh(&mut self) -> Option<Value> {
        let line = self.stdout.recv_timeout(Duration::from_secs(30)).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("JSON ({e}): {line}")))
    }

    /// Everything else on stderr once the profiler has ended.
    fn rest_of_stderr(&mut self) -> &str {
        let _ = self.child.wait();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.said.push_str(&line);
            self.said.push('\n');
        }
        &self.said
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The container id of a container by name.
fn container_id(engine: &dyn Engine, name: &str) -> String {
    stdout_of(engine.cli().args(["inspect", "--format", "{{.Id}}", name]))
}

/// Feeds the live `dd` through its fifo, from a thread, so that a stuck `dd` cannot hang the test.
struct Feeder {
    tx: std::sync::mpsc::Sender<u64>,
    done: Receiver<Result<(), String>>,
}

impl Feeder {
    fn new(fifo: PathBuf) -> Feeder {
        let (tx, rx) = channel::<u64>();
        let (done_tx, done) = channel();
        std::thread::spawn(move || {
            // Non-blocking open fails (ENXIO) until the reader, dd, has opened it.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut file = loop {
                match std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo)
                {
                    Ok(f) => break f,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(e) => {
                        let _ = done_tx.send(Err(format!("dd never opened the fifo: {e}")));
                        return;
                    }
                }
            };
            // Blocking from here: each write of one block is atomic (PIPE_BUF), so each of dd's
            // reads returns one whole block.
            // SAFETY: clearing O_NONBLOCK on a descriptor this thread owns.
            unsafe {
                use std::os::fd::AsRawFd;
                libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0);
            }
            let block = vec![b'z'; BLOCK as usize];
            while let Ok(blocks) = rx.recv() {
                for _ in 0..blocks {
                    if let Err(e) = file.write_all(&block) {
                        let _ = done_tx.send(Err(format!("feeding dd: {e}")));
                        return;
                    }
                }
                let _ = done_tx.send(Ok(()));
            }
        });
        Feeder { tx, done }
    }

    fn feed(&self, blocks: u64) -> Result<(), String> {
        self.tx.send(blocks).map_err(|e| e.to_string())?;
        self.done
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "feeding dd timed out".to_string())?
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: `c` is a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o666) };
    assert_eq!(r, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// The `dd` rows of one refresh whose container is `label` (any label when None).
fn dd_rows<'a>(refresh: &'a Value, label: Option<&str>) -> Vec<&'a Value> {
    refresh["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter(|t| t["command"] == "dd")
                .filter(|t| label.is_none_or(|l| t["container"] == l))
                .collect()
        })
        .unwrap_or_default()
}

fn counts(row: &Value) -> [Option<u64>; 4] {
    ["rchar", "wchar", "syscr", "syscw"].map(|c| row["total"][c].as_u64())
}

/// What the kernel's own accounting adds to a task's reads when it executes busybox: execve
/// reads the binary's first bytes and program headers with kernel_read(), which counts them
/// as reads of the task (bytes, calls). Measured on a busybox that waits.
fn exec_reads() -> (u64, u64) {
    let mut child = Command::new("/bin/busybox")
        .args(["sleep", "5"])
        .spawn()
        .expect("running busybox sleep");
    std::thread::sleep(Duration::from_millis(300));
    let io = profiler_tests::ProcIo::read(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(io.wchar, 0, "busybox sleep writes nothing: {io:?}");
    (io.rchar, io.syscr)
}

/// The counts (rchar, wchar, syscr, syscw) a source may show for a dd of `blocks` blocks:
/// the kernel's accounting includes the exec reads, and every source here reads it (taskstats
/// rounded to 1024; eBPF through its task iterator, the host having BTF).
fn expected(source: &str, blocks: u64, exec: (u64, u64)) -> Vec<[Option<u64>; 4]> {
    let (b, n) = (blocks * BLOCK, blocks);
    let with_exec = [Some(b + exec.0), Some(b), Some(n + exec.1), Some(n)];
    match source {
        "taskstats" => vec![with_exec.map(|v| v.map(|v| v & !1023))],
        _ => vec![with_exec],
    }
}

/// Forked by the shell (not exec'd), so that the task did nothing before dd: a container's first
/// task was runc's, which read its configuration.
const LIVE_DD: &str =
    "/bin/dd if=/x/fifo of=/dev/null bs=4096 count=2048 status=none; exec sleep 600";
/// Waits for /x/go, writes once (so that an eBPF source has seen a live task of the container
/// since it attached), runs a dd that lives a few milliseconds, and stays alive.
const QUICK_DD: &str = "echo ready > /x/ready; while [ ! -e /x/go ]; do sleep 0.05; done; \
                        echo went > /x/went; /bin/dd if=/dev/zero of=/dev/null bs=4096 count=3072 status=none; \
                        exec sleep 600";

/// Runs one mode; returns what is wrong with it.
fn check_mode(
    engine: &dyn Engine,
    mode: &Mode,
    lab: &Path,
    index: usize,
    exec: (u64, u64),
) -> Vec<String> {
    let mut wrong = Vec::new();
    let share = lab.join(format!("share-{index}"));
    std::fs::create_dir_all(&share).expect("share directory");
    mkfifo(&share.join("fifo"));
    let prof_name = format!("profiler-test-{}-{index}", std::process::id());
    let (mut live_label, mut quick_label) = (None, None);
    let mut args: Vec<String> = ["--json", "-b", "-d", "1", "-n", &REFRESHES.to_string()]
        .map(String::from)
        .to_vec();
    if mode.host_pids {
        let start = |script: &str| {
            stdout_of(
                engine
                    .cli()
                    .args(["run", "--detach", "--network=none", "-v"])
                    .arg(format!("{}:/x", share.display()))
                    .args([IMAGE, "/bin/sh", "-c", script]),
            )
        };
        let live = start(LIVE_DD);
        let quick = start(QUICK_DD);
        // As `docker run -d` and `docker ps` print them: the whole id, and the first 12 digits.
        // Without labels for exited tasks, a filter would hide the quick dd.
        if mode.labels_exits {
            args.extend(["--container".into(), live.clone()]);
            args.extend(["--container".into(), quick[..12].to_owned()]);
        }
        live_label = Some(engine.label(&live));
        quick_label = Some(engine.label(&quick));
    }
    let mut profiler = Profiler::start(engine, &prof_name, mode, &share, &args);
    let announced = profiler.announced();
    let Some(source) = mode.source else {
        match announced {
            Ok(line) => wrong.push(format!("a source opened: {line}")),
            Err(said) => check_text(mode, &said, &mut wrong),
        }
        return wrong;
    };
    let line = match announced {
        Ok(line) => line,
        Err(said) => {
            wrong.push(format!("no source opened:\n{said}"));
            return wrong;
        }
    };
    if line.split_whitespace().next() != Some(source) {
        wrong.push(format!("announced `source: {line}`, expected {source}"));
    }
    if !mode.host_pids {
        let own = engine.label(&container_id(engine, &prof_name));
        for script in [LIVE_DD, QUICK_DD] {
            run(engine
                .cli()
                .args(["exec", "--detach", &prof_name, "/bin/sh", "-c", script]));
        }
        live_label = Some(own.clone());
        quick_label = Some(own);
    }
    let (live_label, quick_label) = (
        live_label.expect("labels are known"),
        quick_label.expect("labels are known"),
    );

    // Half of the live dd's blocks; it then waits in read() for the rest.
    let feeder = Feeder::new(share.join("fifo"));
    let mut refreshes = Vec::new();
    if let Err(e) = feeder.feed(LIVE_BLOCKS / 2) {
        wrong.push(e);
    }
    let mut seen_midway = false;
    while !seen_midway && refreshes.len() < REFRESHES as usize - 4 {
        let Some(r) = profiler.refresh() else { break };
        seen_midway = dd_rows(&r, Some(&live_label)).iter().any(|row| {
            row["exited"] != true && expected(source, LIVE_BLOCKS / 2, exec).contains(&counts(row))
        });
        refreshes.push(r);
    }
    if !seen_midway {
        wrong.push(format!(
            "the live dd was never shown with exactly {} blocks read and written as {live_label}",
            LIVE_BLOCKS / 2
        ));
    }
    if let Err(e) = feeder.feed(LIVE_BLOCKS / 2) {
        wrong.push(e);
    }
    drop(feeder);
    // The quick dd, between two refreshes: it starts at once and lives a few milliseconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !share.join("ready").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(share.join("go"), "").expect("starting the quick dd");
    while let Some(r) = profiler.refresh() {
        refreshes.push(r);
    }
    let said = profiler.rest_of_stderr().to_owned();
    check_text(mode, &said, &mut wrong);
    if refreshes.len() != REFRESHES as usize {
        wrong.push(format!(
            "{} refreshes instead of {REFRESHES}",
            refreshes.len()
        ));
    }

    // The live dd: once more at its exit, with exactly its I/O, where the source sees exits.
    let live_tid = refreshes
        .iter()
        .flat_map(|r| dd_rows(r, Some(&live_label)))
        .find_map(|row| row["tid"].as_u64());
    let live_exits: Vec<&Value> = refreshes
        .iter()
        .flat_map(|r| dd_rows(r, Some(&live_label)))
        .filter(|row| row["exited"] == true && row["tid"].as_u64() == live_tid)
        .collect();
    // Any other dd in its container, or unlabelled (a source that cannot label exited tasks).
    let quick_rows: Vec<&Value> = refreshes
        .iter()
        .flat_map(|r| dd_rows(r, None))
        .filter(|row| row["tid"].as_u64() != live_tid)
        .filter(|row| row["container"] == quick_label.as_str() || row["container"].is_null())
        .collect();
    if mode.sees_exits {
        match &live_exits[..] {
            [row] if expected(source, LIVE_BLOCKS, exec).contains(&counts(row)) => {}
            rows => wrong.push(format!(
                "the live dd's exit: expected one row with exactly {LIVE_BLOCKS} blocks as \
                 {live_label}, got {rows:?}"
            )),
        }
        match &quick_rows[..] {
            [row] => {
                if !expected(source, QUICK_BLOCKS, exec).contains(&counts(row))
                    || row["exited"] != true
                {
                    wrong.push(format!(
                        "the quick dd: expected exactly {QUICK_BLOCKS} blocks, exited: {row}"
                    ));
                }
                if mode.labels_exits && row["container"] != quick_label.as_str() {
                    wrong.push(format!("the quick dd is not labelled {quick_label}: {row}"));
                }
            }
            rows => wrong.push(format!(
                "the quick dd (exited between refreshes): expected one row, got {rows:?}"
            )),
        }
    } else if !live_exits.is_empty() || !quick_rows.is_empty() {
        wrong.push(format!(
            "a source that misses exits showed them: {live_exits:?} {quick_rows:?}"
        ));
    }
    wrong
}

fn check_text(mode: &Mode, said: &str, wrong: &mut Vec<String>) {
    for s in mode.says {
        if !said.contains(s) {
            wrong.push(format!("stderr does not say {s:?}:\n{said}"));
        }
    }
    for s in mode.never_says {
        if said.contains(s) {
            wrong.push(format!("stderr says {s:?}:\n{said}"));
        }
    }
}

fn check_engine(engine: &dyn Engine, modes: &[Mode], lab: &Path, failures: &mut Vec<String>) {
    let exec = exec_reads();
    let (binary, statically_linked) = image_binary();
    let ctx = image_context(lab, &binary, statically_linked);
    run(engine
        .cli()
        .args(["build", "--quiet", "--tag", IMAGE])
        .arg(&ctx));
    for (i, mode) in modes.iter().enumerate() {
        let started = Instant::now();
        let wrong = check_mode(engine, mode, lab, i, exec);
        eprintln!(
            "{} {}: {} ({:.1} s)",
            engine.name(),
            mode.name,
            if wrong.is_empty() { "ok" } else { "WRONG" },
            started.elapsed().as_secs_f64()
        );
        failures.extend(
            wrong
                .into_iter()
                .map(|w| format!("{} {}: {w}", engine.name(), mode.name)),
        );
        remove_containers(engine);
    }
}

/// The binary put in the image, and whether it is the static one (`cargo xtask dist`, which
/// `cargo xtask test` builds), else the test build with its libraries.
fn image_binary() -> (PathBuf, bool) {
    match std::env::var_os("PROFILER_STATIC_BIN") {
        Some(path) => (PathBuf::from(path), true),
        None => (profiler_bin(), false),
    }
}

fn have(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn profiler_in_docker_and_podman_containers() {
    require_root();
    if let Some(why) = std::env::var_os("PROFILER_ENGINES_SKIP") {
        eprintln!(
            "skipped: no container engine could be installed: {}",
            why.to_string_lossy()
        );
        return;
    }
    for tool in ["dockerd", "podman", "runc", "busybox"] {
        assert!(
            have(tool),
            "{tool} is missing: run the tests with `cargo xtask test`, which installs it"
        );
    }
    let mut failures = Vec::new();
    {
        let lab = lab_dir("engines-docker");
        let docker = Docker::start(&lab);
        check_engine(&docker, &docker_modes(), &lab, &mut failures);
    }
    {
        let lab = lab_dir("engines-podman");
        let podman = Podman { dir: lab.clone() };
        check_engine(&podman, &podman_modes(), &lab, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
