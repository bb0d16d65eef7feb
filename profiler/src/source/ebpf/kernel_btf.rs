//! Offsets of kernel struct fields, from the running kernel's BTF (/sys/kernel/btf/vmlinux),
//! so the probes can read the kernel's own task I/O accounting without fixed offsets.

use btf_rs::{Btf, Type};
use profiler_common::TaskLayout;

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Follows typedefs and qualifiers to the type underneath.
fn strip(btf: &Btf, mut ty: Type) -> Option<Type> {
    loop {
        ty = match &ty {
            Type::Typedef(t) => btf.resolve_chained_type(t).ok()?,
            Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => {
                btf.resolve_chained_type(t).ok()?
            }
            Type::TypeTag(t) => btf.resolve_chained_type(t).ok()?,
            _ => return Some(ty),
        };
    }
}

/// Bit offset of `path` (member names, outermost first) inside `ty`, looking through
/// anonymous structs and unions.
fn member_bits(btf: &Btf, ty: &Type, path: &[&str]) -> Option<u32> {
    let (Type::Struct(s) | Type::Union(s)) = ty else {
        return None;
    };
    let (first, rest) = path.split_first()?;
    for m in &s.members {
        let name = btf.resolve_name(m).unwrap_or_default();
        let mty = strip(btf, btf.resolve_chained_type(m).ok()?)?;
        if name.is_empty() {
            if let Some(inner) = member_bits(btf, &mty, path) {
                return Some(m.bit_offset() + inner);
            }
        } else if name == *first {
            if rest.is_empty() {
                return Some(m.bit_offset());
            }
            return member_bits(btf, &mty, rest).map(|inner| m.bit_offset() + inner);
        }
    }
    None
}

/// Bit offset of `struct_name.path` in this kernel (bitfields included).
fn bit_offset_of(btf: &Btf, struct_name: &str, path: &[&str]) -> Option<u32> {
    let ty = btf
        .resolve_types_by_name(struct_name)
        .ok()?
        .into_iter()
        .find(|t| matches!(t, Type::Struct(_)))?;
    member_bits(btf, &ty, path)
}

/// Byte offset of `struct_name.path` in this kernel; None for a field that is not byte-aligned.
pub fn offset_of(btf: &Btf, struct_name: &str, path: &[&str]) -> Option<u64> {
    let bits = bit_offset_of(btf, struct_name, path)?;
    (bits % 8 == 0).then_some(u64::from(bits / 8))
}

/// Size in bytes of `struct struct_name` in this kernel.
fn struct_size(btf: &Btf, struct_name: &str) -> Option<usize> {
    btf.resolve_types_by_name(struct_name)
        .ok()?
        .into_iter()
        .find_map(|t| match t {
            Type::Struct(s) => Some(s.size()),
            _ => None,
        })
}

/// This kernel's BTF, mapped rather than parsed whole: the few structs the probes need are
/// looked up by name, and the tens of MB a full parse takes are never allocated. Kernels before
/// 6.x cannot map the sysfs file itself: it is then copied into a memory file first.
pub fn load() -> Result<Btf, String> {
    match Btf::from_file_with_backend(VMLINUX, btf_rs::Backend::Mmap) {
        Ok(btf) => Ok(btf),
        Err(_) => load_copied(),
    }
}

fn load_copied() -> Result<Btf, String> {
    let copy = copy_to_memory_file(VMLINUX).map_err(|e| format!("cannot read {VMLINUX}: {e}"))?;
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&copy));
    Btf::from_file_with_backend(&path, btf_rs::Backend::Mmap)
        .map_err(|e| format!("cannot read {VMLINUX} (copied to memory): {e}"))
}

/// `path`'s bytes in an anonymous memory file, which can be mapped.
fn copy_to_memory_file(path: &str) -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create("vmlinux-btf", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut copy = std::fs::File::from(fd);
    std::io::copy(&mut std::fs::File::open(path)?, &mut copy)?;
    Ok(copy)
}

/// Where the task iterator and its exit probe find each field they read, in this kernel.
pub fn task_layout(btf: &Btf) -> Result<TaskLayout, String> {
    let off = |struct_name: &str, path: &[&str]| {
        offset_of(btf, struct_name, path)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or_else(|| {
                format!(
                    "{struct_name}.{} is not in the kernel's BTF",
                    path.join(".")
                )
            })
    };
    let task = |path: &[&str]| off("task_struct", path);
    let in_iowait = bit_offset_of(btf, "task_struct", &["in_iowait"])
        .ok_or("task_struct.in_iowait is not in the kernel's BTF")?;
    let upid_size = struct_size(btf, "upid")
        .and_then(|s| u32::try_from(s).ok())
        .ok_or("struct upid is not in the kernel's BTF")?;
    Ok(TaskLayout {
        pid: task(&["pid"])?,
        tgid: task(&["tgid"])?,
        comm: task(&["comm"])?,
        start_time: task(&["start_time"])?,
        rchar: task(&["ioac", "rchar"])?,
        wchar: task(&["ioac", "wchar"])?,
        syscr: task(&["ioac", "syscr"])?,
        syscw: task(&["ioac", "syscw"])?,
        read_bytes: task(&["ioac", "read_bytes"])?,
        write_bytes: task(&["ioac", "write_bytes"])?,
        cancelled_write_bytes: task(&["ioac", "cancelled_write_bytes"])?,
        real_cred: task(&["real_cred"])?,
        cred_uid: off("cred", &["uid"])?,
        cgroups: task(&["cgroups"])?,
        css_set_dfl_cgrp: off("css_set", &["dfl_cgrp"])?,
        cgroup_kn: off("cgroup", &["kn"])?,
        kernfs_node_id: off("kernfs_node", &["id"])?,
        thread_pid: task(&["thread_pid"])?,
        group_leader: task(&["group_leader"])?,
        pid_level: off("pid", &["level"])?,
        pid_numbers: off("pid", &["numbers"])?,
        upid_size,
        upid_nr: off("upid", &["nr"])?,
        upid_ns: off("upid", &["ns"])?,
        pid_namespace_inum: off("pid_namespace", &["ns", "inum"])?,
        // Renamed in Linux 5.14; its low 32 bits are the state either way (little endian).
        state: task(&["__state"]).or_else(|_| task(&["state"]))?,
        in_iowait_byte: in_iowait / 8,
        in_iowait_mask: 1 << (in_iowait % 8),
        sched_delayed: task(&["se", "sched_delayed"]).unwrap_or(0),
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_running_kernels_task_io_accounting() {
        if !std::path::Path::new(VMLINUX).exists() {
            // A kernel without BTF has nothing to look up; the source falls back to tracepoints.
            assert!(load().is_err());
            return;
        }
        let btf = load().expect("this kernel's BTF");
        let l = task_layout(&btf).expect("every field the task iterator reads");
        // The kernel's task_io_accounting: rchar, wchar, syscr, syscw, read_bytes, write_bytes,
        // cancelled_write_bytes, 8 bytes each, in that order.
        let ioac = [
            l.rchar,
            l.wchar,
            l.syscr,
            l.syscw,
            l.read_bytes,
            l.write_bytes,
            l.cancelled_write_bytes,
        ];
        for (i, off) in ioac.iter().enumerate() {
            assert_eq!(*off, l.rchar + 8 * i as u32, "ioac field {i} at {off}");
        }
        assert!(l.pid > 0 && l.pid.is_multiple_of(4), "pid at {}", l.pid);
        assert_eq!(l.tgid, l.pid + 4, "tgid follows pid in task_struct");
        assert_eq!(l.upid_size, 16, "struct upid is an int and a pointer");
        assert_eq!(l.upid_nr, 0);
        // Kernels whose sysfs BTF cannot be mapped read it through a copy: the same layout.
        let copied = load_copied().expect("BTF copied to a memory file");
        assert_eq!(task_layout(&copied), Ok(l));
    }
}
