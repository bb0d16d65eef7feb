//! What the views look up about the rows they show, beyond what the sources sampled: user
//! names, command lines (`-c`) and I/O priorities (PRIO). Only for the rows shown, and cached,
//! so that a refresh of 100,000 tasks reads nothing for the ones it leaves out. Sources stay
//! raw counters; this is the view's business.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use super::ioprio::IoPrio;
use super::UserNames;
use crate::model::{Row, RowKind};

/// Task details by id, looked up once each.
pub struct Lookup {
    pub users: UserNames,
    proc_root: PathBuf,
    /// Command lines by (pid, start time): a pid the kernel hands out again is another task.
    cmdlines: HashMap<(u32, Option<u64>), String>,
    /// The keys used since [`Lookup::forget_unused`] last ran.
    used: std::collections::HashSet<(u32, Option<u64>)>,
    ioprio: fn(u32) -> Option<IoPrio>,
    /// The rows are a recording's: their pids are not this host's processes now.
    recorded: bool,
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup::new(Path::new("/proc"), super::ioprio::ioprio)
    }
}

impl Lookup {
    /// Reads command lines under `proc_root` and priorities with `ioprio` (tests give a fixture
    /// tree and a fake: a priority comes from a syscall, not a file).
    pub fn new(proc_root: &Path, ioprio: fn(u32) -> Option<IoPrio>) -> Lookup {
        Lookup {
            users: UserNames::default(),
            proc_root: proc_root.to_path_buf(),
            cmdlines: HashMap::new(),
            used: Default::default(),
            ioprio,
            recorded: false,
        }
    }

    /// For a replay: nothing is read about the rows, whose pids may be other processes by
    /// now: command lines are the recorded command names, priorities unknown.
    pub fn recorded() -> Lookup {
        Lookup {
            recorded: true,
            ..Lookup::default()
        }
    }

    /// The row's command line as ps shows it: arguments joined by spaces, a kernel thread's
    /// name in brackets (`[kworker/0:1]`). The command name where there is no command line
    /// to read: a container row, a task that exited (its pid may be another task's by now),
    /// a zombie.
    pub fn command_line(&mut self, row: &Row) -> String {
        if row.kind != RowKind::Task {
            return row.name().to_string();
        }
        let key = (row.pid, row.start_time);
        self.used.insert(key);
        if let Some(known) = self.cmdlines.get(&key) {
            return known.clone();
        }
        if row.exited || self.recorded {
            return row.command.to_string();
        }
        let line = read_cmdline(&self.proc_root, row.pid, &row.command);
        self.cmdlines.insert(key, line.clone());
        line
    }

    /// The I/O priority of the row's task (its main thread for a process row); None for
    /// containers, tasks that exited and tasks gone.
    pub fn io_priority(&mut self, row: &Row) -> Option<IoPrio> {
        match row.kind {
            RowKind::Task if !row.exited && !self.recorded => {
                (self.ioprio)(row.tid.unwrap_or(row.pid))
            }
            _ => None,
        }
    }

    /// Drops the command lines of tasks not shown since the last call: called once a refresh,
    /// so that the cache holds what is on screen, not every task ever seen.
    pub fn forget_unused(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.cmdlines.retain(|k, _| used.contains(k));
    }
}

/// The kernel marks its own threads with PF_KTHREAD in /proc/PID/stat's flags.
const PF_KTHREAD: u64 = 0x0020_0000;

fn read_cmdline(proc_root: &Path, pid: u32, command: &str) -> String {
    let dir = proc_root.join(pid.to_string());
    let Ok(raw) = std::fs::read(dir.join("cmdline")) else {
        return command.to_string();
    };
    if raw.is_empty() {
        return if is_kernel_thread(&dir) {
            format!("[{command}]")
        } else {
            command.to_string()
        };
    }
    let text = String::from_utf8_lossy(raw.strip_suffix(b"\0").unwrap_or(&raw));
    // Arguments are separated by NULs; a control character would move the cursor of whoever
    // reads the output.
    text.chars()
        .map(|c| match c {
            '\0' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

fn is_kernel_thread(dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
        return false;
    };
    // The command is in parentheses and may hold spaces: fields count from the last `)`.
    // After it: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RowKind;

    fn row(pid: u32, start: u64, command: &str, exited: bool) -> Row {
        Row {
            kind: RowKind::Task,
            pid,
            tid: Some(pid),
            uid: Some(0),
            command: command.into(),
            cgroup_id: None,
            start_time: Some(start),
            container: None,
            total: Default::default(),
            delta: Default::default(),
            exited,
        }
    }

    fn stat(pid: u32, comm: &str, flags: u64) -> String {
        format!("{pid} ({comm}) S 2 0 0 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
    }

    /// A /proc fixture: a process with arguments, a kernel thread, a zombie.
    fn fixture(test: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("profiler-lookup-{test}-{}", std::process::id()));
        let write = |pid: u32, cmdline: &[u8], stat: String| {
            let dir = root.join(pid.to_string());
            std::fs::create_dir_all(&dir).expect("fixture dir");
            std::fs::write(dir.join("cmdline"), cmdline).expect("cmdline");
            std::fs::write(dir.join("stat"), stat).expect("stat");
        };
        write(
            10,
            b"/usr/bin/dd\0if=/dev/zero\0of=a b\0",
            stat(10, "dd", 0x400000),
        );
        write(11, b"", stat(11, "kworker/0:1 (x)", 0x04208040));
        write(12, b"", stat(12, "defunct", 0x400004));
        write(13, b"evil\x1b[2J\0", stat(13, "evil", 0));
        root
    }

    #[test]
    fn command_lines_read_like_ps_shows_them() {
        let root = fixture("ps");
        let mut lookup = Lookup::new(&root, |_| None);
        let line = |l: &mut Lookup, pid, comm: &str| l.command_line(&row(pid, 1, comm, false));
        assert_eq!(
            line(&mut lookup, 10, "dd"),
            "/usr/bin/dd if=/dev/zero of=a b"
        );
        assert_eq!(line(&mut lookup, 11, "kworker/0:1"), "[kworker/0:1]");
        assert_eq!(line(&mut lookup, 12, "defunct"), "defunct", "a zombie");
        assert_eq!(line(&mut lookup, 13, "evil"), "evil?[2J");
        assert_eq!(line(&mut lookup, 99, "gone"), "gone");
        std::fs::remove_dir_all(&root).expect("cleaned up");
    }

    #[test]
    fn a_replay_looks_nothing_up() {
        let mut lookup = Lookup::recorded();
        let me = std::process::id();
        let task = row(me, 1, "recorded-name", false);
        assert_eq!(lookup.command_line(&task), "recorded-name");
        assert_eq!(
            lookup.io_priority(&task),
            None,
            "today's priority of that pid"
        );
    }

    #[test]
    fn cached_per_task_and_forgotten_when_not_shown() {
        let root = fixture("cache");
        let mut lookup = Lookup::new(&root, |_| None);
        assert_eq!(
            lookup.command_line(&row(10, 1, "dd", false)),
            "/usr/bin/dd if=/dev/zero of=a b"
        );
        std::fs::write(root.join("10/cmdline"), b"other\0").expect("rewritten");
        assert_eq!(
            lookup.command_line(&row(10, 1, "dd", true)),
            "/usr/bin/dd if=/dev/zero of=a b",
            "the same task: cached, exited or not"
        );
        assert_eq!(
            lookup.command_line(&row(10, 2, "other", false)),
            "other",
            "a new task with the pid"
        );
        lookup.forget_unused();
        lookup.forget_unused();
        assert_eq!(
            lookup.command_line(&row(10, 1, "dd", true)),
            "dd",
            "forgotten; an exited task's pid is not read again"
        );
        std::fs::remove_dir_all(&root).expect("cleaned up");
    }

    #[test]
    fn priorities_only_for_live_tasks() {
        let mut lookup = Lookup::new(Path::new("/nonexistent"), |tid| {
            Some(IoPrio::BestEffort((tid % 8) as u8))
        });
        assert_eq!(
            lookup.io_priority(&row(3, 1, "x", false)),
            Some(IoPrio::BestEffort(3))
        );
        assert_eq!(lookup.io_priority(&row(3, 1, "x", true)), None);
    }
}
