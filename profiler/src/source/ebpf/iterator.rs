//! The task iterator way (kernel BTF): the iterator and its exit and I/O wait probes, and one
//! pass of the iterator per refresh.

use std::io::Read;

use aya::programs::Iter;
use aya::Ebpf;
use profiler_common::{
    TaskIo, IOWAIT_SWITCH_PROG, IOWAIT_WAKEUP_PROG, MAX_TIDS, TASK_EXIT_PROG, TASK_ITER_PROG,
};

use super::kernel_btf::{self, AttachKind};
use super::loading::{
    attach_btf, attach_error, base_config, chain, load_object, permission_or, pid_max, MapSizes,
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
    if !std::path::Path::new(kernel_btf::VMLINUX).exists() {
        return Err(EbpfError::NoBtf(format!("no {}", kernel_btf::VMLINUX)));
    }
    let mut config = base_config(scope);
    // The kernel's BTF is mapped, not parsed: what is needed is taken from it, and it is closed
    // before anything is loaded.
    let btf = {
        let vmlinux = kernel_btf::load().map_err(EbpfError::Load)?;
        config.task = kernel_btf::task_layout(&vmlinux).map_err(EbpfError::Load)?;
        kernel_btf::attach_points(&vmlinux, ATTACH_POINTS).map_err(EbpfError::Load)?
    };
    config.iowait = 1;
    // The syscall-hook maps are not used on this path: the smallest size the kernel takes.
    let sizes = MapSizes {
        tids: 1,
        tasks: 1,
        iowait: pid_max(scope).clamp(1, MAX_TIDS),
    };
    let mut ebpf = load_object(&config, sizes)?;
    let err = attach_error(TASK_ITER_PROG, "iter/task");
    let prog: &mut Iter = ebpf
        .program_mut(TASK_ITER_PROG)
        .ok_or_else(|| err("program missing from the object".into()))?
        .try_into()
        .map_err(|e| err(chain(&e)))?;
    prog.load("task", &btf)
        .map_err(|e| permission_or(&e, err(chain(&e))))?;
    attach_btf(&mut ebpf, &btf, TASK_EXIT_PROG, "sched_process_exit")?;
    let no_iowait = [
        (IOWAIT_SWITCH_PROG, "sched_switch"),
        (IOWAIT_WAKEUP_PROG, "sched_waking"),
    ]
    .into_iter()
    .find_map(|(program, tracepoint)| {
        attach_btf(&mut ebpf, &btf, program, tracepoint)
            .err()
            .map(|e| e.to_string())
    });
    let reader = Reader::Iterator {
        buf: Vec::with_capacity(ITER_READ_BYTES),
        no_iowait,
    };
    Ok((ebpf, reader))
}

/// One pass of the task iterator: a record per thread, read from a new iterator instance.
pub(super) fn read_iterator(
    ebpf: &mut Ebpf,
    buf: &mut Vec<u8>,
    out: &mut Vec<TaskIo>,
) -> Result<(), EbpfError> {
    let read_error = |message: String| EbpfError::Read {
        map: TASK_ITER_PROG,
        message,
    };
    let prog: &mut Iter = ebpf
        .program_mut(TASK_ITER_PROG)
        .ok_or_else(|| read_error("program missing".into()))?
        .try_into()
        .map_err(|e| read_error(chain(&e)))?;
    let link = prog.attach().map_err(|e| read_error(chain(&e)))?;
    let link = prog.take_link(link).map_err(|e| read_error(chain(&e)))?;
    let mut file = link.into_file().map_err(|e| read_error(chain(&e)))?;
    buf.clear();
    file.read_to_end(buf)
        .map_err(|e| read_error(e.to_string()))?;
    const RECORD: usize = std::mem::size_of::<TaskIo>();
    out.reserve(buf.len() / RECORD);
    for record in buf.chunks_exact(RECORD) {
        // SAFETY: the iterator writes whole TaskIo records (repr(C), plain integers) back to
        // back; `record` has exactly that length and read_unaligned copes with alignment.
        out.push(unsafe { std::ptr::read_unaligned(record.as_ptr().cast::<TaskIo>()) });
    }
    Ok(())
}
