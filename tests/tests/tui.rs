//! The full-screen view in a real terminal: tmux runs the `profiler` binary against the real
//! kernel (procfs source) while a child writes known amounts; the test reads the screen, presses
//! keys, and checks that quitting or SIGTERM gives the terminal back.

use std::process::Command;
use std::time::{Duration, Instant};

use profiler_tests::{profiler_bin, Scratch, Workload};

/// A tmux server of the test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session running `sh`, `width` x `height`.
    fn start(tag: &str, width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: format!("profiler-{tag}-{}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "env PS1='$ ' sh",
        ]);
        // Keys typed before the shell is ready would echo ahead of its prompt.
        tmux.wait_for("the shell prompt", Duration::from_secs(10), |s| {
            s.trim_end().ends_with('$')
        });
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-u", "-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .env("TERM", "xterm-256color")
            .output()
            .unwrap_or_else(|e| panic!("running tmux (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (tmux key names, or literal text).
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    fn alternate_screen_on(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "0", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Polls the screen until `done` holds; panics with the last screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The line of the screen that says what the table sorts by.
fn sort_line(screen: &str) -> Option<&str> {
    screen.lines().find(|l| l.starts_with("sort: "))
}

/// The first row of the table: (id, the whole line).
fn top_row(screen: &str) -> Option<(u32, &str)> {
    let mut lines = screen.lines();
    lines.find(|l| {
        let l = l.trim_start();
        l.starts_with("TID ") && l.contains("COMMAND")
    })?;
    let row = lines.next()?;
    Some((row.split_whitespace().next()?.parse().ok()?, row))
}

/// Presses Right until the sort line names `column`, waiting for each key to show.
fn sort_by(tmux: &Tmux, column: &str) -> String {
    let want = format!("sort: {column} ");
    for _ in 0..20 {
        let screen = tmux.screen();
        let now = sort_line(&screen).map(str::to_owned);
        if now.as_deref().is_some_and(|l| l.starts_with(&want)) {
            return screen;
        }
        tmux.send(&["Right"]);
        tmux.wait_for("the sort column to change", Duration::from_secs(5), |s| {
            sort_line(s).map(str::to_owned) != now
        });
    }
    panic!(
        "right arrow never reached {column}; the screen:\n{}",
        tmux.screen()
    );
}

/// One op every 100 ms: `write` truncates and rewrites the file, so each op dirties new
/// pages and counts as disk writes (1 MiB) at once, whatever writeback does later.
fn writer_ops(file: &str, seconds: u32) -> Vec<String> {
    (0..seconds * 10)
        .flat_map(|_| [format!("write:{file}:16:65536"), "sleep:100".to_string()])
        .collect()
}

/// Lets a stopped workload run its ops in the background (it stops again at the end).
fn resume(child: &Workload) {
    // SAFETY: signalling our own child.
    let r = unsafe { libc::kill(child.pid() as i32, libc::SIGCONT) };
    assert_eq!(r, 0, "SIGCONT: {}", std::io::Error::last_os_error());
}

/// The exit status the shell printed (`EXIT=$?` on the command line is not one).
fn exit_status(screen: &str) -> Option<u32> {
    screen.split("EXIT=").skip(1).find_map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

fn exited(screen: &str) -> bool {
    exit_status(screen).is_some()
}

/// After the profiler exits: its exit status, and a terminal back in cooked mode with echo.
fn assert_terminal_given_back(tmux: &Tmux, screen: &str) {
    assert_eq!(
        exit_status(screen),
        Some(0),
        "the profiler exits 0; the screen:\n{screen}"
    );
    assert!(!tmux.alternate_screen_on(), "the alternate screen is left");
    // Only the shell's own screen has the command line typed before the profiler started.
    assert!(
        screen.contains("; echo EXIT=$?"),
        "the shell's screen is back:\n{screen}"
    );
    tmux.send(&["stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo", "Enter"]);
    let answer = |s: &str| {
        s.lines()
            .map(str::trim)
            .find(|l| l.contains("icanon") && !l.contains("grep"))
            .map(str::to_owned)
    };
    let screen = tmux.wait_for("stty's answer", Duration::from_secs(5), |s| {
        answer(s).is_some()
    });
    assert_eq!(
        answer(&screen).as_deref(),
        Some("icanon echo"),
        "raw mode is left (canonical input, echo on):\n{screen}"
    );
}

#[test]
fn writer_shows_up_sorts_on_top_by_disk_write_and_q_restores_the_terminal() {
    let scratch = Scratch::new("tui-writer");
    let file = scratch.path("written");
    let child = Workload::start(&writer_ops(&file, 60));
    resume(&child);
    let me = std::process::id();
    let tmux = Tmux::start("tui", 160, 40);
    // The scope is this test and the child, so that other work on the machine cannot outwrite it.
    let command_line = format!(
        "{} --source procfs -d 0.5 -p {me} -p {}; echo EXIT=$?",
        profiler_bin().display(),
        child.pid()
    );
    tmux.send(&[&command_line, "Enter"]);

    let row_of_child = |s: &str| {
        s.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(&child.pid().to_string()) && l.trim_end().ends_with(" workload")
        })
    };
    tmux.wait_for(
        "the child's row, with its command",
        Duration::from_secs(15),
        row_of_child,
    );

    // By TID, this test's own main thread (started before the child) comes first.
    let screen = sort_by(&tmux, "TID");
    let (top, row) = top_row(&screen).unwrap_or_else(|| panic!("no table:\n{screen}"));
    assert_eq!(top, me, "sorted by TID, this process is first: {row}");

    sort_by(&tmux, "DISK WRITE");
    let screen = tmux.wait_for(
        "the child on top, writing megabytes per second",
        Duration::from_secs(10),
        |s| top_row(s).is_some_and(|(id, row)| id == child.pid() && row.contains(" M/s")),
    );
    let (_, row) = top_row(&screen).expect("a top row");
    assert!(row.trim_end().ends_with(" workload"), "command: {row}");
    assert!(
        sort_line(&screen).is_some_and(|l| l.starts_with("sort: DISK WRITE ▼")),
        "the header says what sorts, largest first:\n{screen}"
    );

    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell after q", Duration::from_secs(10), exited);
    assert_terminal_given_back(&tmux, &screen);
}

#[test]
fn sigterm_restores_the_terminal() {
    let scratch = Scratch::new("tui-sigterm");
    let pid_file = scratch.path("profiler.pid");
    let tmux = Tmux::start("tui-term", 200, 30);
    // `exec` keeps the pid that the file names.
    let command_line = format!(
        "sh -c 'echo $$ > {pid_file}; exec {} --source procfs -d 0.5'; echo EXIT=$?",
        profiler_bin().display()
    );
    tmux.send(&[&command_line, "Enter"]);
    tmux.wait_for("the full-screen view", Duration::from_secs(15), |s| {
        sort_line(s).is_some() && top_row(s).is_some()
    });
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("the profiler's pid file")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: kill takes integers only; the pid is the profiler this test started.
    let r = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(r, 0, "SIGTERM: {}", std::io::Error::last_os_error());
    let screen = tmux.wait_for("the shell after SIGTERM", Duration::from_secs(10), |s| {
        exited(s)
    });
    assert_terminal_given_back(&tmux, &screen);
}

/// The rows of the per-container table: (PROCS, label), once its header is on screen.
fn container_rows(screen: &str) -> Option<Vec<(u32, &str)>> {
    let mut lines = screen.lines();
    lines.find(|l| l.trim_start().starts_with("PROCS ") && l.trim_end().ends_with(" CONTAINER"))?;
    Some(
        lines
            .map_while(|l| {
                let mut words = l.split_whitespace();
                let procs = words.next()?.parse().ok()?;
                Some((procs, words.last()?))
            })
            .collect(),
    )
}

#[test]
fn c_shows_one_row_per_container_and_slash_finds_host() {
    let tmux = Tmux::start("tui-containers", 160, 40);
    let command_line = format!(
        "{} --source procfs -d 0.5; echo EXIT=$?",
        profiler_bin().display()
    );
    tmux.send(&[&command_line, "Enter"]);
    tmux.wait_for("the full-screen view", Duration::from_secs(15), |s| {
        sort_line(s).is_some() && top_row(s).is_some()
    });

    tmux.send(&["c"]);
    let screen = tmux.wait_for("the per-container table", Duration::from_secs(10), |s| {
        container_rows(s).is_some_and(|rows| !rows.is_empty())
    });
    assert!(
        sort_line(&screen).is_some_and(|l| l.contains("| containers (c: tasks) |")),
        "the header says what the rows are:\n{screen}"
    );

    // Kernel threads are in the root cgroup whatever else runs: there is always a host row.
    tmux.send(&["/"]);
    tmux.send(&["-l", "^host$"]);
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the host row alone", Duration::from_secs(10), |s| {
        container_rows(s).is_some_and(|rows| rows.len() == 1 && rows[0].1 == "host")
    });
    let (procs, _) = container_rows(&screen).expect("the container table")[0];
    assert!(procs >= 1, "PROCS counts the host's processes:\n{screen}");

    tmux.send(&["q"]);
    let screen = tmux.wait_for("the shell after q", Duration::from_secs(10), exited);
    assert_terminal_given_back(&tmux, &screen);
}
