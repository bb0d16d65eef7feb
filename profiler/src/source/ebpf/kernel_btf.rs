//! What the iterator path takes from the running kernel's BTF (/sys/kernel/btf/vmlinux): the
//! offsets of the kernel struct fields its probes read (so no kernel's layout is assumed), and
//! the type ids of its attach points, in a BTF for aya that holds nothing else.

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

/// The BTF kind aya finds an attach point by: a BTF tracepoint by the typedef
/// `btf_trace_<name>`, an iterator by the function `bpf_iter_<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachKind {
    Typedef,
    Func,
}

/// BTF kinds (`BTF_KIND_*` in include/uapi/linux/btf.h).
const KIND_PTR: u32 = 2;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC: u32 = 12;
/// Bytes of `struct btf_header`.
const HEADER_LEN: u32 = 24;

/// A BTF for aya's `BtfTracePoint::load` and `Iter::load`, which only look up the id of an
/// attach point by name and kind. Each attach point keeps its id from the kernel's BTF (the id
/// is what the kernel is given); every other id below it is a nameless `void *`, the smallest
/// record there is, and the strings are the attach points' names alone. aya parsing the whole
/// kernel BTF instead takes some 19 MB of heap at its peak. A name the kernel does not have is
/// left out: aya then says it is unknown, as it would with the whole BTF.
pub fn attach_points(btf: &Btf, wanted: &[(&str, AttachKind)]) -> Result<aya::Btf, String> {
    let mut strings = vec![0u8];
    let mut found: Vec<(u32, u32, u32)> = Vec::new(); // (id, name offset, kind)
    for &(name, kind) in wanted {
        let is_kind = |id: &u32| {
            matches!(
                (kind, btf.resolve_type_by_id(*id)),
                (AttachKind::Typedef, Ok(Type::Typedef(_))) | (AttachKind::Func, Ok(Type::Func(_)))
            )
        };
        let Some(id) = btf
            .resolve_ids_by_name(name)
            .ok()
            .and_then(|ids| ids.into_iter().find(is_kind))
        else {
            continue;
        };
        let name_off = u32::try_from(strings.len()).map_err(|_| "BTF strings too long")?;
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        let kind = match kind {
            AttachKind::Typedef => KIND_TYPEDEF,
            AttachKind::Func => KIND_FUNC,
        };
        found.push((id, name_off, kind));
    }
    found.sort_unstable();
    let last = found.last().map_or(0, |f| f.0);
    let type_len = 12 * last;
    let mut blob = Vec::with_capacity((HEADER_LEN + type_len) as usize + strings.len());
    let put = |blob: &mut Vec<u8>, v: u32| blob.extend_from_slice(&v.to_ne_bytes());
    // struct btf_header: magic, version 1, flags 0, then the type and string sections.
    blob.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
    blob.extend_from_slice(&[1, 0]);
    put(&mut blob, HEADER_LEN);
    put(&mut blob, 0);
    put(&mut blob, type_len);
    put(&mut blob, type_len);
    put(
        &mut blob,
        u32::try_from(strings.len()).map_err(|_| "BTF strings too long")?,
    );
    let mut next = found.iter().peekable();
    for id in 1..=last {
        // A record is name offset, kind in bits 24-28 of info, and the type it refers to (void).
        let (name_off, kind) = match next.peek() {
            Some(&&(at, name_off, kind)) if at == id => {
                next.next();
                (name_off, kind)
            }
            _ => (0, KIND_PTR),
        };
        put(&mut blob, name_off);
        put(&mut blob, kind << 24);
        put(&mut blob, 0);
    }
    blob.extend_from_slice(&strings);
    aya::Btf::parse(&blob, aya::Endianness::default())
        .map_err(|e| format!("building the attach points' BTF: {e}"))
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

    #[test]
    fn attach_points_keep_their_kernel_ids_and_nothing_else() {
        if !std::path::Path::new(VMLINUX).exists() {
            return;
        }
        let btf = load().expect("this kernel's BTF");
        let wanted = [
            ("btf_trace_sched_switch", AttachKind::Typedef),
            ("bpf_iter_task", AttachKind::Func),
            ("no_such_type_anywhere", AttachKind::Typedef),
        ];
        let bytes = attach_points(&btf, &wanted)
            .expect("a BTF aya parses")
            .to_bytes();
        let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        let (type_len, str_len) = (word(12) as usize, word(20) as usize);
        let strings = &bytes[24 + type_len..24 + type_len + str_len];
        let name_at = |off: usize| {
            let end = strings[off..].iter().position(|&b| b == 0).unwrap();
            std::str::from_utf8(&strings[off..off + end]).unwrap()
        };
        let mut named = Vec::new();
        for (i, record) in bytes[24..24 + type_len].chunks_exact(12).enumerate() {
            let field = |n: usize| u32::from_ne_bytes(record[4 * n..4 * n + 4].try_into().unwrap());
            if field(0) != 0 {
                named.push((i as u32 + 1, name_at(field(0) as usize), field(1) >> 24));
            } else {
                assert_eq!(field(1) >> 24, KIND_PTR, "placeholder {}", i + 1);
            }
        }
        let kernel_id = |name: &str, kind: fn(&Type) -> bool| {
            btf.resolve_ids_by_name(name)
                .unwrap()
                .into_iter()
                .find(|id| kind(&btf.resolve_type_by_id(*id).unwrap()))
                .unwrap()
        };
        let switch = kernel_id("btf_trace_sched_switch", |t| matches!(t, Type::Typedef(_)));
        let iter = kernel_id("bpf_iter_task", |t| matches!(t, Type::Func(_)));
        let mut expected = vec![
            (switch, "btf_trace_sched_switch", KIND_TYPEDEF),
            (iter, "bpf_iter_task", KIND_FUNC),
        ];
        expected.sort_unstable();
        assert_eq!(named, expected);
        assert!(
            str_len < 64,
            "only the names found are kept: {str_len} bytes"
        );
    }
}
