//! Loading the probes object and attaching its programs, for both ways of counting: the
//! pieces they share (configuration, map sizes, the attach helper, error text).

use std::os::unix::fs::MetadataExt;

use aya::maps::Map;
use aya::programs::{BtfTracePoint, Iter, ProgramError, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use profiler_common::{Config, CONFIG_GLOBAL, IOWAIT_MAP, TASKS_MAP, TIDS_MAP};

use super::{verifier, EbpfError};
use crate::source::Scope;

/// The probes, built for bpfel-unknown-none by build.rs and embedded so the binary runs alone.
static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler-probes.o"));

/// Inode number of the initial pid namespace (PROC_PID_INIT_INO).
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;

/// The kernel's default `kernel.pid_max`, for when it cannot be read.
const PID_MAX_DEFAULT: u32 = 32_768;

/// What aya or the kernel said, kept whole as the cause of an [`EbpfError`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

fn is_permission_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// An error and its causes on one line, for people: each said once (some errors repeat their
/// cause in their own text), a verifier log reduced to the line that says why (the whole log
/// goes to the debug log, shown with `-v`, when the program is refused).
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = match e.downcast_ref::<ProgramError>() {
            Some(ProgramError::LoadError {
                io_error,
                verifier_log,
            }) => format!(
                "the verifier rejected it ({io_error}): {}",
                verifier::reason(&format!("{verifier_log:?}"))
            ),
            _ => e.to_string(),
        };
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        if matches!(e.downcast_ref(), Some(ProgramError::LoadError { .. })) {
            break;
        }
        cur = e.source();
    }
    out
}

/// A refusal of the kernel's as such, anything else as `other`.
fn permission_or(e: Cause, other: impl FnOnce(Cause) -> EbpfError) -> EbpfError {
    if is_permission_error(&*e) {
        EbpfError::PermissionDenied { cause: e }
    } else {
        other(e)
    }
}

/// Settings every path shares: the pid namespace the profiler sees.
pub(super) fn base_config(scope: &Scope) -> Config {
    let mut config = Config::default();
    let ns = std::fs::metadata(scope.proc_root.join("self/ns/pid")).ok();
    if let Some(ns) = ns.filter(|ns| ns.ino() != INIT_PID_NS_INO) {
        config.translate_pids = 1;
        config.pidns_dev = ns.dev();
        config.pidns_ino = ns.ino();
    }
    config
}

/// Sizes of the maps that grow with the number of threads; 1 for those a path does not use.
pub(super) struct MapSizes {
    pub(super) tids: u32,
    pub(super) tasks: u32,
    pub(super) iowait: u32,
}

/// The kernel's `kernel.pid_max`: TIDs stay below it.
pub(super) fn pid_max(scope: &Scope) -> u32 {
    std::fs::read_to_string(scope.proc_root.join("sys/kernel/pid_max"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(PID_MAX_DEFAULT)
}

/// Loads the object. The probes read kernel structs at offsets given in `config`, not through
/// CO-RE relocations, so the loader is given no kernel BTF.
pub(super) fn load_object(config: &Config, sizes: MapSizes) -> Result<Ebpf, EbpfError> {
    loader_without_kernel_btf()
        .btf(None)
        .override_global(CONFIG_GLOBAL, config, true)
        .map_max_entries(TIDS_MAP, sizes.tids)
        .map_max_entries(TASKS_MAP, sizes.tasks)
        .map_max_entries(IOWAIT_MAP, sizes.iowait)
        .load(PROBES)
        .map_err(|e| permission_or(Box::new(e), EbpfError::Load))
}

pub(super) fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, EbpfError> {
    ebpf.take_map(name)
        .ok_or_else(|| EbpfError::Load(format!("map {name} missing from the object").into()))
}

/// Where a program attaches, in the form each kind of attach point is named.
#[derive(Clone, Copy)]
pub(super) enum AttachPoint<'a> {
    /// A task iterator, `bpf_iter_<name>` in `btf`: loaded here, attached at each refresh.
    Iterator { name: &'a str, btf: &'a Btf },
    /// A BTF tracepoint, `btf_trace_<name>` in `btf`.
    BtfTracepoint { name: &'a str, btf: &'a Btf },
    /// A classic tracepoint, through tracefs.
    Tracepoint { category: &'a str, name: &'a str },
}

impl AttachPoint<'_> {
    pub(super) fn describe(&self) -> String {
        match self {
            AttachPoint::Iterator { name, .. } => format!("iter/{name}"),
            AttachPoint::BtfTracepoint { name, .. } => (*name).to_owned(),
            AttachPoint::Tracepoint { category, name } => format!("{category}/{name}"),
        }
    }
}

/// Loads `program` for `point` and attaches it there (an iterator is only loaded). A refusal
/// of the kernel's is a [`EbpfError::PermissionDenied`], whichever step it came from.
pub(super) fn attach(
    ebpf: &mut Ebpf,
    program: &'static str,
    point: AttachPoint<'_>,
) -> Result<(), EbpfError> {
    let error = |cause: Cause| EbpfError::Attach {
        program,
        attach_point: point.describe(),
        cause,
    };
    let failed = |e: ProgramError| {
        if let ProgramError::LoadError { verifier_log, .. } = &e {
            log::debug!("ebpf: verifier log of {program}:\n{verifier_log:?}");
        }
        permission_or(Box::new(e), error)
    };
    let prog = ebpf
        .program_mut(program)
        .ok_or_else(|| error("program missing from the object".into()))?;
    match point {
        AttachPoint::Iterator { name, btf } => {
            let prog: &mut Iter = prog.try_into().map_err(failed)?;
            prog.load(name, btf).map_err(failed)?;
        }
        AttachPoint::BtfTracepoint { name, btf } => {
            let prog: &mut BtfTracePoint = prog.try_into().map_err(failed)?;
            prog.load(name, btf).map_err(failed)?;
            prog.attach().map_err(failed)?;
        }
        AttachPoint::Tracepoint { category, name } => {
            let prog: &mut TracePoint = prog.try_into().map_err(failed)?;
            prog.load().map_err(failed)?;
            prog.attach(category, name).map_err(failed)?;
        }
    }
    Ok(())
}

/// An aya loader that has not parsed the kernel's BTF. `EbpfLoader::new` parses the whole of
/// /sys/kernel/btf/vmlinux (about 19 MB of heap at its peak for a 5.5 MB file), for CO-RE
/// relocations these probes do not have, and there is no other way to make a loader. Made on a
/// thread of its own whose root directory is /sys/kernel/btf (the file's own directory, which
/// holds no `sys/kernel/btf/vmlinux` below it), it finds no BTF. A thread that cannot have a
/// root of its own (no CAP_SYS_CHROOT, or unshare refused by a seccomp filter) makes the loader
/// as usual: only memory is lost.
fn loader_without_kernel_btf<'a>() -> EbpfLoader<'a> {
    let made = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(CLONE_FS) gives this thread its own root and working directory; it
            // touches no memory. chroot, done only once that succeeded, then changes this
            // thread's root alone, and the thread ends right after making the loader.
            let own_root = unsafe {
                libc::unshare(libc::CLONE_FS) == 0 && libc::chroot(c"/sys/kernel/btf".as_ptr()) == 0
            };
            if !own_root {
                log::debug!(
                    "ebpf: the loader parses the kernel BTF: no root of its own ({})",
                    std::io::Error::last_os_error()
                );
            }
            EbpfLoader::new()
        })
        .join()
    });
    made.unwrap_or_else(|_| EbpfLoader::new())
}

/// (major, minor) of a kernel release string such as `5.10.0-46-cloud-amd64`.
pub(super) fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Hands the heap that opening freed (the parsed kernel BTF, several tens of MB) back to the
/// system, which glibc would otherwise keep for reuse.
pub(super) fn release_freed_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
