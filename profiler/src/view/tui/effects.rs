//! What a few keys do outside the view: `W` writes the config file, `i` sets a task's I/O
//! priority, Ctrl-T switches the kernel's delay accounting. Each returns the line the status
//! line shows, success or error, so that the event loop only passes it on.

use std::path::Path;

use crate::settings::Settings;
use crate::view::ioprio::{ioprio_set, IoPrio};

/// `W`: the settings to `path`.
pub fn save_settings(path: Option<&Path>, settings: &Settings) -> String {
    let Some(path) = path else {
        return crate::config::ConfigError::NoPath.to_string();
    };
    match crate::config::save(path, settings) {
        Ok(()) => format!("settings written to {}", path.display()),
        Err(e) => format!("settings not written: {e}"),
    }
}

/// `i`: the priority of task `id`, or of every thread of process `id` (an I/O priority
/// belongs to a thread), as iotop-c does. The status line says what happened.
pub fn ionice(proc_root: &Path, id: u32, process: bool, prio: IoPrio) -> String {
    let mut tids = Vec::new();
    if process {
        if let Ok(dir) = std::fs::read_dir(proc_root.join(id.to_string()).join("task")) {
            tids.extend(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()));
        }
    }
    if tids.is_empty() {
        tids.push(id);
    }
    let what = if process { "process" } else { "task" };
    for tid in tids {
        if let Err(e) = ioprio_set(tid, prio) {
            return match e.raw_os_error() {
                Some(libc::EPERM) => format!(
                    "ionice {what} {id}: not permitted: setting the I/O priority of another \
                     user's task, or the realtime class, needs CAP_SYS_NICE (run as root)"
                ),
                Some(libc::ESRCH) => format!("ionice {what} {id}: no such task"),
                _ => format!("ionice {what} {id}: {e}"),
            };
        }
    }
    format!("{what} {id}: I/O priority {prio}")
}

/// Ctrl-T: flips `kernel.task_delayacct` through its file (normally
/// /proc/sys/kernel/task_delayacct). Only tasks started afterwards are measured (or stop being
/// measured): the kernel decides at fork.
pub fn toggle_delayacct(path: &Path) -> String {
    let now = match std::fs::read_to_string(path) {
        Ok(v) => v.trim() == "1",
        Err(e) => return format!("kernel.task_delayacct: {}: {e}", path.display()),
    };
    let (value, word) = if now { ("0", "off") } else { ("1", "on") };
    match std::fs::write(path, value) {
        Ok(()) => format!(
            "kernel.task_delayacct {word}: only tasks started from now on are {}measured",
            if now { "not " } else { "" }
        ),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM) =>
        {
            format!("kernel.task_delayacct: {e}: switching it needs root")
        }
        Err(e) => format!("kernel.task_delayacct: {}: {e}", path.display()),
    }
}
