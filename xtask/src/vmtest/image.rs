//! What a guest boots from, built here from local files only: an initramfs (cpio) with
//! busybox-static, the init script, the profiler and workload binaries with the shared libraries
//! ldd lists, and the kernel's modules for the disk; and an empty ext4 disk image.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::kernel::Kernel;
use crate::exec::{exec, output};

const INIT: &str = include_str!("../../vmtest/init.sh");
const BUSYBOX: &str = "/bin/busybox";
/// virtio_pci finds the disk, virtio_blk drives it, ext4 mounts it (built in on Debian's cloud
/// kernels, a module elsewhere).
const MODULES: [&str; 3] = ["virtio_pci", "virtio_blk", "ext4"];
const DISK_MIB: u64 = 128;

pub struct Binaries {
    pub profiler: PathBuf,
    pub workload: PathBuf,
}

/// Builds `dir/initramfs.cpio` for `kernel`, the guest running the checks in `checks` (lines of
/// init.sh's /checks.list).
pub fn initramfs(
    kernel: &Kernel,
    bins: &Binaries,
    checks: &str,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let root = dir.join("root");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    for sub in [
        "bin",
        "lib/modules/vmtest",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "mnt",
    ] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    copy_file(Path::new(BUSYBOX), &root.join("bin/busybox"), 0o755)?;
    copy_file(&bins.profiler, &root.join("bin/profiler"), 0o755)?;
    copy_file(&bins.workload, &root.join("bin/workload"), 0o755)?;
    for lib in shared_libraries(&bins.profiler)?
        .into_iter()
        .chain(shared_libraries(&bins.workload)?)
    {
        let target = root.join(lib.strip_prefix("/").unwrap_or(&lib));
        if !target.exists() {
            std::fs::create_dir_all(target.parent().expect("a library path has a parent"))?;
            copy_file(&lib, &target, 0o755)?;
        }
    }
    std::fs::write(root.join("init"), INIT)?;
    set_mode(&root.join("init"), 0o755)?;
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n")?;

    let modules = kernel.modules_to_load(&MODULES)?;
    let mut list = String::new();
    for (i, module) in modules.iter().enumerate() {
        // Flattened with an index prefix: the load order is the list's, the names stay unique.
        let file = format!("{i:02}-{}", module.rsplit('/').next().unwrap_or(module));
        copy_file(
            &kernel.modules.join(module),
            &root.join("lib/modules/vmtest").join(&file),
            0o644,
        )?;
        list.push_str(&file);
        list.push('\n');
    }
    std::fs::write(root.join("modules.list"), list)?;
    std::fs::write(root.join("checks.list"), checks)?;

    let cpio = dir.join("initramfs.cpio");
    let mut files = Vec::new();
    collect(&root, Path::new("."), &mut files)?;
    let mut child = Command::new("cpio")
        .args(["--quiet", "-o", "-H", "newc", "-R", "0:0"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(File::create(&cpio)?)
        .spawn()
        .context("could not start cpio (apt-get install cpio)")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        for f in &files {
            writeln!(stdin, "{}", f.display())?;
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cpio failed ({status}) building {}", cpio.display());
    }
    Ok(cpio)
}

/// An empty ext4 image of DISK_MIB MiB with 4 KiB blocks (mke2fs would pick 1 KiB for a disk this
/// small), every table written now so no background initialisation runs in the guest.
pub fn disk(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("disk.img");
    let file = File::create(&path)?;
    file.set_len(DISK_MIB << 20)?;
    drop(file);
    exec(
        Command::new(super::system_tool("mkfs.ext4"))
            .args([
                "-q",
                "-F",
                "-b",
                "4096",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
            ])
            .arg(&path),
    )?;
    Ok(path)
}

/// The shared libraries (and the dynamic loader) `ldd` lists for `binary`; none for a static one.
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Some(listing) = output(Command::new("ldd").arg(binary)) else {
        // ldd fails for static binaries ("not a dynamic executable").
        return Ok(Vec::new());
    };
    let mut libs = Vec::new();
    for line in listing.lines() {
        if line.contains("not found") {
            bail!(
                "{} needs a library this machine lacks: {}",
                binary.display(),
                line.trim()
            );
        }
        if let Some(path) = line.split_whitespace().find(|t| t.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

fn copy_file(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    set_mode(to, mode)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Every path under `root`, relative (`./bin/busybox`), parents before children, as cpio wants.
fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    out.push(rel.to_path_buf());
    let here = root.join(rel);
    if here.is_dir() && !here.is_symlink() {
        let mut entries: Vec<_> = std::fs::read_dir(&here)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        entries.sort();
        for name in entries {
            collect(root, &rel.join(name), out)?;
        }
    }
    Ok(())
}
