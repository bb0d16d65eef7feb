//! Finding (or mounting, for as long as the probes are being attached) tracefs, and reading
//! field offsets from tracepoint format files. Only the classic tracepoints need it: once a
//! tracepoint is attached, the kernel no longer needs the mount.

use std::path::{Path, PathBuf};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Held while a mount made here is in use, so that two sources opening at once in one process
/// do not unmount it under each other.
static IN_USE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A tracefs root; unmounted on drop when this process mounted it.
pub struct Tracefs {
    pub root: PathBuf,
    mounted_here: bool,
    _in_use: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Tracefs {
    fn drop(&mut self) {
        if !self.mounted_here {
            return;
        }
        match rustix::mount::unmount(&self.root, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => log::info!("ebpf: unmounted tracefs from {}", self.root.display()),
            Err(e) => log::warn!(
                "ebpf: could not unmount the tracefs mounted at {}: {e}",
                self.root.display()
            ),
        }
    }
}

/// The tracefs root, mounting it at /sys/kernel/tracing when no mount exists and we may.
pub fn ensure_mounted() -> Result<Tracefs, String> {
    let in_use = IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
    {
        return Ok(Tracefs {
            root: found,
            mounted_here: false,
            _in_use: in_use,
        });
    }
    let target = Path::new(CANDIDATES[0]);
    if !target.is_dir() {
        return Err(format!("{} does not exist", target.display()));
    }
    rustix::mount::mount(
        "nodev",
        target,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|err| {
        format!(
            "not mounted, and mounting it at {} failed: {err}",
            target.display()
        )
    })?;
    log::info!(
        "ebpf: mounted tracefs at {} to attach the probes",
        target.display()
    );
    Ok(Tracefs {
        root: target.to_path_buf(),
        mounted_here: true,
        _in_use: in_use,
    })
}

/// Offset of `field` in a tracepoint format file's text (the part after `offset:`).
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?.split(';').next()?;
        let name = decl.rsplit(' ').next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let off = line.split("offset:").nth(1)?.split(';').next()?;
        off.trim().parse().ok()
    })
}

fn read_format(root: &Path, category: &str, name: &str) -> Result<String, String> {
    let path = root.join("events").join(category).join(name).join("format");
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Where the block probe finds `nr_sector` and `rwbs` on this kernel.
pub fn bio_queue_offsets(root: &Path) -> Result<(u32, u32), String> {
    let format = read_format(root, "block", "block_bio_queue")?;
    let find = |field: &str| {
        field_offset(&format, field)
            .ok_or_else(|| format!("field {field} missing from block/block_bio_queue/format"))
    };
    Ok((find("nr_sector")?, find("rwbs")?))
}

/// The page-dirtying tracepoint this kernel has (`writeback_dirty_folio` since Linux 5.17,
/// `writeback_dirty_page` before) and the offset of its bdi `name`.
pub fn dirty_tracepoint(root: &Path) -> Result<(&'static str, u32), String> {
    let mut why = Vec::new();
    for name in ["writeback_dirty_folio", "writeback_dirty_page"] {
        match read_format(root, "writeback", name) {
            Ok(format) => {
                return field_offset(&format, "name")
                    .map(|off| (name, off))
                    .ok_or_else(|| format!("field name missing from writeback/{name}/format"))
            }
            Err(e) => why.push(e),
        }
    }
    Err(why.join("; "))
}

/// The classic sys_exit probe reads `id` at 8 and `ret` at 16; refuse a kernel where that differs.
pub fn check_sys_exit_format(root: &Path) -> Result<(), String> {
    let format = read_format(root, "raw_syscalls", "sys_exit")?;
    match (field_offset(&format, "id"), field_offset(&format, "ret")) {
        (Some(8), Some(16)) => Ok(()),
        other => Err(format!(
            "unexpected raw_syscalls/sys_exit layout (id, ret offsets {other:?})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIO: &str = "name: block_bio_queue\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:sector_t sector;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:unsigned int nr_sector;\toffset:24;\tsize:4;\tsigned:0;\n\tfield:char rwbs[10];\toffset:28;\tsize:10;\tsigned:0;\n";

    #[test]
    fn field_offsets_come_from_the_format_text() {
        assert_eq!(field_offset(BIO, "nr_sector"), Some(24));
        assert_eq!(field_offset(BIO, "rwbs"), Some(28));
        assert_eq!(field_offset(BIO, "sector"), Some(16));
        assert_eq!(field_offset(BIO, "comm"), None);
    }
}
