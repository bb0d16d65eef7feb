//! iotop-c's options as a user meets them in the `profiler` binary: the config file and `-W`,
//! columns by number and by name, PRIO where iotop prints it, the full command line, the
//! average since the start, and the man page and completions generated from the options.
//! Each runs with a config directory of its own, so that the machine's does not count.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use profiler_tests::{profiler_as_nobody, profiler_bin, require_root};
use serde_json::Value;

/// A temporary `XDG_CONFIG_HOME` (and `HOME`), removed on drop.
struct ConfigHome(PathBuf);

impl ConfigHome {
    fn new(tag: &str) -> ConfigHome {
        let dir = std::env::temp_dir().join(format!("profiler-iotop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the config home");
        ConfigHome(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("profiler").join("config")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(profiler_bin())
            .args(args)
            .env("XDG_CONFIG_HOME", &self.0)
            .env("HOME", &self.0)
            .env_remove("NO_COLOR")
            .output()
            .expect("running profiler")
    }

    /// Batch or JSON lines of a run that must succeed.
    fn lines(&self, args: &[&str]) -> Vec<String> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "profiler {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for ConfigHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child that sleeps, killed on drop.
struct Sleeper(Child);

impl Sleeper {
    /// `sleep SECONDS`, through `ionice -c3` when `idle`.
    fn start(seconds: &str, idle: bool) -> Sleeper {
        let mut cmd = if idle {
            let mut c = Command::new("ionice");
            c.args(["-c3", "sleep", seconds]);
            c
        } else {
            let mut c = Command::new("sleep");
            c.arg(seconds);
            c
        };
        let child = cmd.spawn().expect("starting sleep");
        // ionice execs sleep: wait until the pid runs it.
        let comm = Path::new("/proc").join(child.id().to_string()).join("comm");
        for _ in 0..100 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Sleeper(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The column names of a batch refresh (the line after the totals).
fn header(lines: &[String]) -> Vec<&str> {
    words(lines.get(1).expect("a header line"))
}

#[test]
fn write_saves_the_options_before_it_and_the_file_holds_next_time() {
    let home = ConfigHome::new("write");
    let out = home.run(&[
        "-k",
        "-P",
        "-x",
        "--hide-prio",
        "--threshold",
        "3",
        "-W",
        "-a",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("settings written to"),
        "says where"
    );
    let text = std::fs::read_to_string(home.file()).expect("the config file was written");
    for line in [
        "kilobytes = true",
        "processes = true",
        "exited = \"dead-x\"",
        "threshold = 3",
        "amounts = \"current\"",
        "prio = false",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} in the file (-a came after -W):\n{text}"
        );
    }
    let sleeper = Sleeper::start("30", false);
    let pid = sleeper.pid();
    let base = ["-b", "-n", "1", "--source", "procfs", "-p", pid.as_str()];
    let lines = home.lines(&base);
    assert_eq!(
        header(&lines)[0],
        "PID",
        "processes from the file: {lines:?}"
    );
    assert!(
        lines[0].contains(" K/s"),
        "kilobytes from the file: {lines:?}"
    );
    let lines = home.lines(&[&base[..], &["--threads", "--no-kilobytes"]].concat());
    assert_eq!(header(&lines)[0], "TID", "the command line wins: {lines:?}");
    assert!(
        lines[0].contains(" B/s"),
        "the command line wins: {lines:?}"
    );
}

#[test]
fn a_bad_config_file_is_one_line_naming_file_and_line() {
    let home = ConfigHome::new("bad");
    std::fs::create_dir_all(home.file().parent().expect("a directory")).expect("mkdir");
    std::fs::write(home.file(), "only = true\ngraph = \"pie\"\n").expect("writing");
    let out = home.run(&["-b", "-n", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let at = format!("{}:2: ", home.file().display());
    assert!(stderr.contains(&at), "names file and line: {stderr}");
    assert!(stderr.contains("pie"), "and the value: {stderr}");
}

#[test]
fn an_unreadable_config_file_is_said_once_and_the_defaults_hold() {
    require_root();
    // Another user's HOME, as after `sudo -u nobody` or setpriv: root's 0700 directory.
    let home = ConfigHome::new("unreadable");
    std::fs::create_dir_all(home.file().parent().expect("a directory")).expect("mkdir");
    std::fs::write(home.file(), "only = true\n").expect("writing");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home.0, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let out = profiler_as_nobody()
        .args(["-b", "-n", "1"])
        .env("XDG_CONFIG_HOME", &home.0)
        .output()
        .expect("running setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!(
        "profiler: config file {}: Permission denied (os error 13); using the defaults",
        home.file().display()
    );
    assert_eq!(
        stderr.lines().filter(|l| *l == said).count(),
        1,
        "said once: {stderr}"
    );
    assert!(
        stderr.contains("CAP_BPF"),
        "and goes on to the sources: {stderr}"
    );
}

#[test]
fn c_shows_the_command_line_in_batch_and_json() {
    let home = ConfigHome::new("cmdline");
    let sleeper = Sleeper::start("30.25", false);
    let pid = sleeper.pid();
    let base = ["-b", "-n", "1", "--source", "procfs", "-p", pid.as_str()];
    let row = |lines: &[String]| lines.last().expect("a row").clone();
    assert!(row(&home.lines(&base)).ends_with("  sleep"));
    assert!(row(&home.lines(&[&base[..], &["-c"]].concat())).ends_with("  sleep 30.25"));
    assert!(
        row(&home.lines(&[&base[..], &["-c", "--no-fullcmdline"]].concat())).ends_with("  sleep")
    );

    let json = |extra: &[&str]| -> Value {
        let args = [
            &[
                "--json",
                "-n",
                "1",
                "--source",
                "procfs",
                "-p",
                pid.as_str(),
            ],
            extra,
        ]
        .concat();
        let lines = home.lines(&args);
        serde_json::from_str(lines.last().expect("a JSON line")).expect("JSON")
    };
    let task = &json(&["-c"])["tasks"][0];
    assert_eq!(task["cmdline"], "sleep 30.25");
    assert_eq!(task["command"], "sleep", "the command stays");
    assert!(
        json(&[])["tasks"][0].get("cmdline").is_none(),
        "only when asked"
    );
}

#[test]
fn c_shows_a_kernel_thread_as_ps_does() {
    require_root();
    let home = ConfigHome::new("kthread");
    // kthreadd, pid 2, is the kernel's first thread in the initial pid namespace.
    let name = std::fs::read_to_string("/proc/2/comm").expect("pid 2");
    let lines = home.lines(&["-b", "-n", "1", "-P", "-c", "--source", "procfs", "-p", "2"]);
    let want = format!("  [{}]", name.trim());
    assert!(
        lines.last().expect("a row").ends_with(&want),
        "{want:?} in {lines:?}"
    );
}

#[test]
fn prio_goes_where_iotop_prints_it() {
    let home = ConfigHome::new("prio");
    let sleeper = Sleeper::start("30", true);
    let pid = sleeper.pid();
    let base = ["-b", "-n", "1", "--source", "procfs", "-p", pid.as_str()];
    let iotop = home.lines(
        &[
            &base[..],
            &["--show-prio", "--hide-chars", "--hide-syscalls"],
        ]
        .concat(),
    );
    // iotop-c -b: TID PRIO USER DISK READ DISK WRITE SWAPIN IO COMMAND (its IO is our IO>).
    assert_eq!(
        header(&iotop),
        ["TID", "PRIO", "USER", "DISK", "READ", "DISK", "WRITE", "SWAPIN", "IO>", "COMMAND"]
    );
    let row = words(iotop.last().expect("a row"));
    assert_eq!((row[0], row[1]), (pid.as_str(), "idle"), "{row:?}");
    assert_eq!(row.last(), Some(&"sleep"));

    assert_eq!(
        header(&home.lines(&base))[..2],
        ["TID", "PRIO"],
        "by default too, where iotop prints it"
    );
    let hidden = home.lines(&[&base[..], &["--show-prio", "-2"]].concat());
    assert!(
        !header(&hidden).contains(&"PRIO"),
        "-2 after --show-prio hides it"
    );
}

#[test]
fn columns_hide_by_iotop_c_s_numbers_and_show_by_name() {
    let home = ConfigHome::new("columns");
    let sleeper = Sleeper::start("30", false);
    let pid = sleeper.pid();
    let base = ["-b", "-n", "1", "--source", "procfs", "-p", pid.as_str()];
    let lines = home.lines(&[&base[..], &["-1", "-3", "-9", "-4", "--hide-syscalls"]].concat());
    assert_eq!(
        header(&lines),
        ["PRIO", "DISK", "WRITE", "SWAPIN", "IO>", "READ", "WRITE"],
        "{lines:?}"
    );
    let lines = home.lines(&[&base[..], &["-9", "--show-command"]].concat());
    assert_eq!(header(&lines).last(), Some(&"COMMAND"));
}

#[test]
fn accum_bw_is_the_rate_since_the_start() {
    let home = ConfigHome::new("accum");
    let sleeper = Sleeper::start("30", false);
    let pid = sleeper.pid();
    let intervals = |extra: &[&str]| -> Vec<f64> {
        let args = [
            &[
                "--json",
                "-n",
                "3",
                "-d",
                "0.3",
                "--source",
                "procfs",
                "-p",
                pid.as_str(),
            ],
            extra,
        ]
        .concat();
        home.lines(&args)
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("JSON");
                v["interval_s"].as_f64().expect("interval_s")
            })
            .collect()
    };
    let since_start = intervals(&["-A"]);
    assert!(
        (0.8..1.5).contains(&since_start[2]),
        "-A: the third refresh covers the whole run: {since_start:?}"
    );
    let last = intervals(&[]);
    assert!(last[2] < 0.6, "without -A, the last refresh only: {last:?}");

    let totals = |flag: &str| -> String {
        let lines = home.lines(&[
            "-b",
            "-n",
            "1",
            "--source",
            "procfs",
            "-p",
            pid.as_str(),
            flag,
        ]);
        lines[0].clone()
    };
    assert!(totals("-A").contains("B/s"), "-A shows rates");
    assert!(!totals("-a").contains("/s"), "-a shows amounts");
}

#[test]
fn threshold_and_types_are_checked() {
    let home = ConfigHome::new("values");
    for (args, says) in [
        (&["--threshold", "11"][..], "1 to 10"),
        (&["-g", "pie"][..], "unknown graph type `pie`"),
        (&["-H", "full"][..], "none, win or inline"),
    ] {
        let out = home.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Every long option `--help` lists.
fn long_options(home: &ConfigHome) -> Vec<String> {
    let help = home.lines(&["--help"]).join("\n");
    let mut out: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[' || c == '<')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(['.', ':', ')']).to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn man_page_and_completions_name_every_option() {
    let home = ConfigHome::new("man");
    let options = long_options(&home);
    for iotop_c in [
        "--accum-bw",
        "--fullcmdline",
        "--hide-graph",
        "--show-pid",
        "--no-color",
        "--write",
    ] {
        assert!(
            options.iter().any(|o| o == iotop_c),
            "{iotop_c} in --help: {options:?}"
        );
    }
    let man = home.lines(&["--generate", "man"]).join("\n");
    assert!(
        man.starts_with(".ie") || man.contains(".TH profiler 8"),
        "a man page: {man:.200}"
    );
    for option in &options {
        // roff writes a hyphen that must stay one as `\-`.
        let roff = option.replace('-', "\\-");
        assert!(man.contains(&roff), "{option} in the man page");
    }
    assert!(
        man.contains("profiler/config"),
        "FILES names the config file"
    );
    assert!(man.contains("NO_COLOR"), "ENVIRONMENT names NO_COLOR");
    // KEYS: the full-screen view's keys, as its help window lists them.
    let keys = &man[man.find(".SH KEYS").expect("a KEYS section")..];
    for (key, does) in [
        ("i", "ionice a task"),
        ("W", "write these settings to the config file"),
        ("Ctrl\\-T", "kernel.task_delayacct on / off"),
    ] {
        assert!(
            keys.contains(&format!("\\fB{key}\\fR\n\\&{does}")),
            "{key} in KEYS: {keys:.600}"
        );
    }
    for shell in ["bash", "zsh", "fish", "elvish"] {
        let script = home.lines(&["--generate", shell]).join("\n");
        for option in ["accum-bw", "fullcmdline", "hide-prio", "threshold"] {
            assert!(script.contains(option), "{shell} completes --{option}");
        }
    }
}
