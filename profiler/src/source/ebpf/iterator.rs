//! The task iterator way (kernel BTF): the iterator and its exit and I/O wait probes, and one
//! pass of the iterator per refresh.

use std::io::Read;

use aya::programs::Iter;
use aya::Ebpf;
use profiler_common::{
    Config, TaskIo, IOWAIT_SWITCH_PROG, IOWAIT_WAKEUP_PROG, MAX_TIDS, TASK_EXIT_PROG,
    TASK_ITER_PROG,
};

use super::kernel_btf::{self, AttachKind};
use super::loading::{
    attach, base_config, load_object, pid_max, report, AttachPoint, Cause, MapSizes,
};
use super::{EbpfError, Reader};
use crate::source::Scope;

/// Bytes read from the task iterator per read(2); the kernel fills at most a few pages a call.
pub(super) const ITER_READ_BYTES: usize = 64 << 10;

/// What the programs of this path attach to, as aya looks them up in the kernel's BTF.
const ATTACH_POINTS: &[(&str, AttachKind)] = &[
    ("bpf_iter_task", AttachKind::Func),
    ("btf_trace_sched_process_exit", AttachKind::Typedef),
    ("btf_trace_sched_switch", AttachKind::Typedef),
    ("btf_trace_sched_waking", AttachKind::Typedef),
];

/// Loads the task iterator, its exit probe and the I/O wait probes (their failure costs only
/// IO>, and says why). Needs the kernel's BTF for both the offsets and the attach points.
pub(super) fn open_iterator(scope: &Scope) -> Result<(Ebpf, Reader), EbpfError> {
    let (config, btf) = read_kernel_btf(scope)?;
    // The syscall-hook maps are not used on this path: the smallest size the kernel takes.
    let sizes = MapSizes {
        tids: 1,
        tasks: 1,
        iowait: pid_max(scope).clamp(1, MAX_TIDS),
    };
    let mut ebpf = load_object(&config, sizes)?;
    let iterator = AttachPoint::Iterator {
        name: "task",
        btf: &btf,
    };
    attach(&mut ebpf, TASK_ITER_PROG, iterator)?;
    let tracepoint = |name| AttachPoint::BtfTracepoint { name, btf: &btf };
    attach(&mut ebpf, TASK_EXIT_PROG, tracepoint("sched_process_exit"))?;
    let no_iowait = [
        (IOWAIT_SWITCH_PROG, "sched_switch"),
        (IOWAIT_WAKEUP_PROG, "sched_waking"),
    ]
    .into_iter()
    .find_map(|(program, name)| {
        attach(&mut ebpf, program, tracepoint(name))
            .err()
            .map(|e| report(&e))
    });
    let reader = Reader::Iterator {
        buf: Vec::with_capacity(ITER_READ_BYTES),
        no_iowait,
    };
    Ok((ebpf, reader))
}

/// The configuration of this path (the pid namespace, and the offsets of the kernel fields
/// the probes read) and the attach points, from the kernel's BTF. The BTF is mapped, not
/// parsed, and closed before anything is loaded.
fn read_kernel_btf(scope: &Scope) -> Result<(Config, aya::Btf), EbpfError> {
    if !std::path::Path::new(kernel_btf::VMLINUX).exists() {
        return Err(EbpfError::NoBtf(format!("no {}", kernel_btf::VMLINUX)));
    }
    let vmlinux = kernel_btf::load().map_err(|e| EbpfError::Load(e.into()))?;
    let mut config = base_config(scope);
    config.task = kernel_btf::task_layout(&vmlinux).map_err(|e| EbpfError::Load(e.into()))?;
    config.iowait = 1;
    let btf = kernel_btf::attach_points(&vmlinux, ATTACH_POINTS)
        .map_err(|e| EbpfError::Load(e.into()))?;
    Ok((config, btf))
}

/// One pass of the task iterator: a record per thread, read from a new iterator instance.
pub(super) fn read_iterator(
    ebpf: &mut Ebpf,
    buf: &mut Vec<u8>,
    out: &mut Vec<TaskIo>,
) -> Result<(), EbpfError> {
    let read_error = |cause: Cause| EbpfError::Read {
        map: TASK_ITER_PROG,
        cause,
    };
    let prog: &mut Iter = ebpf
        .program_mut(TASK_ITER_PROG)
        .ok_or_else(|| read_error("program missing".into()))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| read_error(e.into()))?;
    let link = prog.attach().map_err(|e| read_error(e.into()))?;
    let link = prog.take_link(link).map_err(|e| read_error(e.into()))?;
    let mut file = link.into_file().map_err(|e| read_error(e.into()))?;
    buf.clear();
    file.read_to_end(buf).map_err(|e| read_error(e.into()))?;
    const RECORD: usize = std::mem::size_of::<TaskIo>();
    out.reserve(buf.len() / RECORD);
    for record in buf.chunks_exact(RECORD) {
        // SAFETY: the iterator writes whole TaskIo records (repr(C), plain integers) back to
        // back; `record` has exactly that length and read_unaligned copes with alignment.
        out.push(unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<TaskIo>()) });
    }
    Ok(())
}
