//! An OCI runtime for the container tests: runc, after taking CAP_SYS_RESOURCE out of the
//! container's spec. Where the machine's own capability bounding set lacks CAP_SYS_RESOURCE (a VM
//! of this project's kind), runc refuses `--privileged` ("unable to apply caps: operation not
//! permitted"), and it cannot raise an rlimit above the hard limit it has itself; the engines
//! (dockerd `--add-runtime`, `podman --runtime`) run this instead of runc.
//!
//! `runc-no-sys-resource ARGS...` edits `BUNDLE/config.json` for `create` and `run`, and the
//! process file of `exec --process FILE`, then executes runc (`$RUNC`, else Debian's, else `runc` from PATH) with the same arguments.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const CAP: &str = "CAP_SYS_RESOURCE";

fn die(msg: &str) -> ! {
    eprintln!("runc-no-sys-resource: {msg}");
    std::process::exit(1)
}

/// The value of option `long`/`short` after the subcommand at `at`.
fn option(args: &[String], at: usize, long: &str, short: &str) -> Option<PathBuf> {
    let mut rest = args[at + 1..].iter();
    while let Some(arg) = rest.next() {
        if let Some(v) = arg
            .strip_prefix(&format!("{long}="))
            .or_else(|| arg.strip_prefix(&format!("{short}=")))
        {
            return Some(v.into());
        }
        if arg == long || arg == short {
            return rest.next().map(PathBuf::from);
        }
    }
    None
}

/// The JSON file to edit, and whether it is a whole spec (`create`, `run`: BUNDLE/config.json)
/// or a process (`exec --process FILE`); None for other commands.
fn target(args: &[String]) -> Option<(PathBuf, bool)> {
    let at = args
        .iter()
        .position(|a| a == "create" || a == "run" || a == "exec")?;
    if args[at] == "exec" {
        return option(args, at, "--process", "-p").map(|p| (p, false));
    }
    // runc's default bundle is the working directory.
    let bundle = option(args, at, "--bundle", "-b").unwrap_or_else(|| PathBuf::from("."));
    Some((bundle.join("config.json"), true))
}

/// This process's hard limit of an rlimit named as in the OCI spec (`RLIMIT_NOFILE`).
fn hard_limit(name: &str) -> Option<u64> {
    let resource = match name {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        _ => return None,
    };
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    let r = unsafe { libc::getrlimit(resource, &mut limit) };
    (r == 0).then_some(limit.rlim_max)
}

/// Removes CAP_SYS_RESOURCE from every capability set of a process and lowers its rlimits to
/// what runc may set.
fn edit(process: &mut Value) {
    if let Some(sets) = process
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    {
        for set in sets.values_mut() {
            if let Some(caps) = set.as_array_mut() {
                caps.retain(|c| c != CAP);
            }
        }
    }
    if let Some(rlimits) = process.get_mut("rlimits").and_then(Value::as_array_mut) {
        for rlimit in rlimits {
            let Some(max) = rlimit["type"].as_str().and_then(hard_limit) else {
                continue;
            };
            for field in ["hard", "soft"] {
                if rlimit[field].as_u64().is_some_and(|v| v > max) {
                    rlimit[field] = max.into();
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some((path, whole_spec)) = target(&args) {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| die(&format!("reading {}: {e}", path.display())));
        let mut spec: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| die(&format!("parsing {}: {e}", path.display())));
        edit(if whole_spec {
            &mut spec["process"]
        } else {
            &mut spec
        });
        std::fs::write(&path, spec.to_string())
            .unwrap_or_else(|e| die(&format!("writing {}: {e}", path.display())));
    }
    // The engines run runtimes with a reduced PATH: look where Debian puts runc first.
    let runc = std::env::var_os("RUNC").unwrap_or_else(|| {
        ["/usr/sbin/runc", "/usr/bin/runc"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("runc")
            .into()
    });
    let err = Command::new(&runc).args(&args).exec();
    die(&format!("executing {}: {err}", runc.to_string_lossy()))
}
