//! What every mode does before its loop (the views in main.rs, `serve`): check the
//! pids and users asked for, register SIGINT/SIGTERM, open the session or explain why not,
//! and say once which source answered. The loop itself is `runner`.

use std::process::ExitCode;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::session::{OpenError, Session};
use crate::source::{Scope, SourceChoice};
use crate::users::resolve_users;

/// Exit code of bad input and of a forced source that cannot work, as clap uses for usage errors.
pub const EXIT_USAGE: u8 = 2;

pub fn usage_error(msg: &str) -> ExitCode {
    eprintln!("profiler: {msg}");
    ExitCode::from(EXIT_USAGE)
}

/// The scope of `-p PID…` and the uids of `-u USER…`, or the usage error to exit with.
pub fn scope_and_users(pids: &[u32], users: &[String]) -> Result<(Scope, Vec<u32>), ExitCode> {
    let scope = Scope {
        pids: pids.iter().copied().collect(),
        ..Scope::default()
    };
    if let Some(pid) = pids
        .iter()
        .find(|pid| !scope.proc_root.join(pid.to_string()).exists())
    {
        return Err(usage_error(&format!("no process with pid {pid}")));
    }
    let uids = resolve_users(users).map_err(|e| usage_error(&e.to_string()))?;
    Ok((scope, uids))
}

/// A loop's runtime and its SIGINT/SIGTERM streams, made before any source is opened so that a
/// signal during start-up already ends the run cleanly instead of killing it.
pub struct SignalRuntime {
    pub runtime: tokio::runtime::Runtime,
    pub sigint: Signal,
    pub sigterm: Signal,
}

/// Why the runtime or the signal handlers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("starting the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("registering the SIGINT and SIGTERM handlers")]
    Signal(#[source] std::io::Error),
}

impl SignalRuntime {
    pub fn new() -> Result<Self, SignalError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SignalError::Runtime)?;
        let entered = runtime.enter();
        let sigint = signal(SignalKind::interrupt()).map_err(SignalError::Signal)?;
        let sigterm = signal(SignalKind::terminate()).map_err(SignalError::Signal)?;
        drop(entered);
        Ok(SignalRuntime {
            runtime,
            sigint,
            sigterm,
        })
    }

    /// Completes at the first SIGINT or SIGTERM.
    pub async fn stopped(sigint: &mut Signal, sigterm: &mut Signal) {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
    }
}

/// An error and its causes on one line, as anyhow's `{:#}` prints them.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

/// What every mode does first: the signal handlers, then the session, or the exit code after
/// saying why not. The one place a session is opened.
pub fn open(choice: &SourceChoice, scope: &Scope) -> Result<(Session, SignalRuntime), ExitCode> {
    let signals = SignalRuntime::new().map_err(|e| {
        eprintln!("profiler: {}", chain(&e));
        ExitCode::FAILURE
    })?;
    let session = Session::open(choice, scope).map_err(|e| open_failed(choice, &e))?;
    Ok((session, signals))
}

/// Inode of the initial user namespace (PROC_USER_INIT_INO), as /proc/self/ns/user names it.
const INIT_USER_NS: &str = "user:[4026531837]";

/// Root of a user namespace is root only over that namespace: "run as root" would not help.
fn in_user_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/user")
        .is_ok_and(|ns| ns.as_os_str() != std::ffi::OsStr::new(INIT_USER_NS))
}

/// Says why no source could be opened; the exit code is 2 when the user forced the source.
pub fn open_failed(choice: &SourceChoice, e: &OpenError) -> ExitCode {
    eprintln!("profiler: {e}");
    if matches!(choice, SourceChoice::Auto) {
        if in_user_namespace() {
            eprintln!(
                "profiler: this runs in a user namespace, whose root has no privileges over the \
                 host: run it as root in the initial user namespace, or watch only this \
                 namespace's processes with -p PID"
            );
        } else if crate::privileges::Privileges::read(std::path::Path::new("/proc")).euid == 0 {
            // Root already: the reasons above name what is missing (a capability, a filter).
            eprintln!(
                "profiler: the reasons above name what is missing; `profiler --list-sources` \
                 shows what each source needs"
            );
        } else {
            eprintln!(
                "profiler: run as root, or see `profiler --list-sources` for what each source needs"
            );
        }
        ExitCode::FAILURE
    } else {
        ExitCode::from(EXIT_USAGE)
    }
}

/// Prints once which source answered (and why earlier ones did not), what it cannot measure,
/// whether it misses tasks that exit, and what a user namespace hides.
pub fn announce(session: &Session) {
    eprintln!("{}", session.source_line());
    for (kind, u) in session.unavailable() {
        eprintln!("{kind}: {} unavailable: {}", u.counter_names(), u.reason);
    }
    for (kind, why) in session.misses_exits() {
        eprintln!("{kind}: {why}");
    }
    // procfs opens in a user namespace, so the failure message above never shows there.
    if in_user_namespace() && session.kinds() == [crate::source::SourceKind::Procfs] {
        eprintln!(
            "profiler: this runs in a user namespace: only procfs works here, and it shows only \
             the tasks this namespace's root may read (its own processes)"
        );
    }
}

/// Says once which `--container` filters match none of the containers in the first refresh,
/// and which containers there are, since a filter that matches nothing shows nothing.
pub fn warn_unmatched_containers(snapshot: &crate::session::Snapshot, filters: &[String]) {
    if filters.is_empty() {
        return;
    }
    let mut labels: Vec<&str> = snapshot
        .models
        .iter()
        .flat_map(|v| v.model.rows.iter())
        .filter_map(|r| r.container.as_deref())
        .collect();
    labels.sort_unstable();
    labels.dedup();
    for filter in crate::container::unmatched(filters, &labels) {
        eprintln!(
            "profiler: --container {filter} matches none of the containers seen ({}); give a \
             label or its start (docker:4f1c), or a container id or its start as the engine \
             prints it",
            if labels.is_empty() {
                "none".to_string()
            } else {
                labels.join(", ")
            }
        );
    }
}
