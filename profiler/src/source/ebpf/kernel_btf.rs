//! Offsets of kernel struct fields, from the running kernel's BTF (/sys/kernel/btf/vmlinux),
//! so the probes can read the kernel's own task I/O accounting without fixed offsets.

use btf_rs::{Btf, Type};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

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

/// Byte offset of `struct_name.path` in this kernel.
pub fn offset_of(btf: &Btf, struct_name: &str, path: &[&str]) -> Option<u64> {
    let ty = btf
        .resolve_types_by_name(struct_name)
        .ok()?
        .into_iter()
        .find(|t| matches!(t, Type::Struct(_)))?;
    let bits = member_bits(btf, &ty, path)?;
    (bits % 8 == 0).then_some(u64::from(bits / 8))
}

/// This kernel's BTF, parsed once for all the offsets below.
pub fn load() -> Result<Btf, String> {
    Btf::from_file(VMLINUX).map_err(|e| format!("cannot read {VMLINUX}: {e}"))
}

/// Offset of `task_struct.ioac.read_bytes`, provided write_bytes and cancelled_write_bytes
/// follow it 8 and 16 bytes later (the probes read the three at once).
pub fn task_ioac_offset(btf: &Btf) -> Result<u64, String> {
    let field = |name: &str| {
        offset_of(btf, "task_struct", &["ioac", name])
            .ok_or_else(|| format!("task_struct.ioac.{name} not in BTF"))
    };
    let (read, write, cancelled) = (
        field("read_bytes")?,
        field("write_bytes")?,
        field("cancelled_write_bytes")?,
    );
    if write != read + 8 || cancelled != read + 16 {
        return Err(format!(
            "unexpected task_io_accounting layout ({read}, {write}, {cancelled})"
        ));
    }
    Ok(read)
}

/// Offset of `task_struct.pid`, the thread's id in the initial pid namespace.
pub fn task_pid_offset(btf: &Btf) -> Result<u32, String> {
    offset_of(btf, "task_struct", &["pid"])
        .and_then(|off| u32::try_from(off).ok())
        .ok_or_else(|| "task_struct.pid not in BTF".into())
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
        let off = task_ioac_offset(&btf).expect("task_struct.ioac in this kernel's BTF");
        assert!(off > 0 && off.is_multiple_of(8), "offset {off}");
        let pid = task_pid_offset(&btf).expect("task_struct.pid in this kernel's BTF");
        assert!(pid > 0 && pid.is_multiple_of(4), "offset {pid}");
    }
}
