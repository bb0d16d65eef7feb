//! Finding (or mounting) tracefs, and reading field offsets from tracepoint format files.

use std::path::{Path, PathBuf};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs root, mounting it at /sys/kernel/tracing when no mount exists and we may.
pub fn ensure_mounted() -> Result<PathBuf, String> {
    if let Some(found) = CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
    {
        return Ok(found);
    }
    let target = Path::new(CANDIDATES[0]);
    if !target.is_dir() {
        return Err(format!("{} does not exist", target.display()));
    }
    // SAFETY: all pointers are NUL-terminated literals that live through the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!(
            "not mounted, and mounting it at {} failed: {err}",
            target.display()
        ));
    }
    log::info!("ebpf: mounted tracefs at {}", target.display());
    Ok(target.to_path_buf())
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

/// Where the block and page-cache probes find their fields on this kernel.
pub struct DiskFormats {
    pub bio_nr_sector: u32,
    pub bio_rwbs: u32,
    pub dirty_folio_name: u32,
}

impl DiskFormats {
    pub fn read(root: &Path) -> Result<Self, String> {
        let bio = read_format(root, "block", "block_bio_queue")?;
        let folio = read_format(root, "writeback", "writeback_dirty_folio")?;
        let find = |format: &str, field: &str, tp: &str| {
            field_offset(format, field)
                .ok_or_else(|| format!("field {field} missing from {tp}/format"))
        };
        Ok(DiskFormats {
            bio_nr_sector: find(&bio, "nr_sector", "block_bio_queue")?,
            bio_rwbs: find(&bio, "rwbs", "block_bio_queue")?,
            dirty_folio_name: find(&folio, "name", "writeback_dirty_folio")?,
        })
    }
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
