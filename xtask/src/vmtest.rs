//! `cargo xtask vmtest`: boots Debian's 5.10 and 6.1 cloud kernels in QEMU with the profiler
//! binary and runs the checks of `vmtest/checks.rs` inside, one boot per kernel, both at once.
//! Kernels are cached (vmtest/kernel.rs); initramfs and disk are built here from local files.

mod checks;
mod guest;
mod image;
mod kernel;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::exec::{build_profiler, cargo, exec, step, workspace_root};
use crate::setup;

/// Debian packages the VM checks use: QEMU, the guest's shell and tools, the initramfs and disk
/// builders, depmod for the kernels' modules.dep.
const PACKAGES: [&str; 5] = [
    "qemu-system-x86",
    "busybox-static",
    "cpio",
    "kmod",
    "e2fsprogs",
];
/// A guest normally finishes in about a minute under TCG (several on a machine whose CPUs are
/// busy with other work); past this it is hung.
const GUEST_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(clap::Args, Default)]
pub struct Args {
    /// Boot only this kernel (default: all)
    #[arg(long, value_enum)]
    kernel: Option<kernel::Choice>,
    /// The profiler binary to test (default: build it, release)
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Print every guest console line as it arrives
    #[arg(long, short)]
    verbose: bool,
}

impl Args {
    /// Both kernels, testing `binary`.
    pub fn for_binary(binary: PathBuf) -> Args {
        Args {
            binary: Some(binary),
            ..Args::default()
        }
    }
}

pub fn vmtest(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    step(&format!(
        "vmtest: checking the VM tools ({})",
        PACKAGES.join(", ")
    ));
    setup::apt_install(&PACKAGES)?;
    guest::check_qemu()?;

    let bins = binaries(args.binary.as_deref())?;
    let work = workspace_root().join("target/vmtest");
    std::fs::create_dir_all(&work)?;
    // Two runs in one worktree would share the disk images (QEMU refuses the second).
    let _work_lock = lock(&work.join("lock"), "another vmtest run in this worktree")?;
    let choices: Vec<kernel::Choice> = match args.kernel {
        Some(k) => vec![k],
        None => kernel::Choice::ALL.to_vec(),
    };
    let kernels = choices
        .iter()
        .map(|&c| kernel::fetch(c))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let checks = checks::guest_list();
    let mut guests = Vec::new();
    for k in &kernels {
        let dir = work.join(k.choice.label());
        std::fs::create_dir_all(&dir)?;
        step(&format!(
            "vmtest: building the initramfs and ext4 disk for {} in {}",
            k.release,
            dir.display()
        ));
        let initramfs = image::initramfs(k, &bins, &checks, &dir)?;
        let disk = image::disk(&dir)?;
        guests.push((k, dir, initramfs, disk));
    }

    step(&format!(
        "vmtest: booting {} in QEMU (TCG), at most {}s each",
        kernels
            .iter()
            .map(|k| k.release.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        GUEST_TIMEOUT.as_secs()
    ));
    let results: Vec<(&kernel::Kernel, PathBuf, anyhow::Result<guest::Console>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = guests
                .iter()
                .map(|(k, dir, initramfs, disk)| {
                    let echo = args.verbose.then_some(k.choice.label());
                    let handle = s.spawn(move || {
                        guest::boot(&k.vmlinuz, initramfs, disk, GUEST_TIMEOUT, echo)
                    });
                    (*k, dir.clone(), handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(k, dir, h)| {
                    let result = h
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("the QEMU thread panicked")));
                    (k, dir, result)
                })
                .collect()
        });

    let mut failed = Vec::new();
    for (k, dir, result) in results {
        let label = k.choice.label();
        let console = match result {
            Ok(c) => c,
            Err(e) => {
                println!("vmtest {label} ({}): FAIL: {e:#}", k.release);
                failed.push(format!("{label}: the guest did not run its checks"));
                continue;
            }
        };
        let log = dir.join("console.log");
        std::fs::write(&log, &console.text)
            .with_context(|| format!("writing {}", log.display()))?;
        if let Some(reason) = &console.fatal {
            println!(
                "vmtest {label} ({}): FAIL: the guest could not set up: {reason} (console: {})",
                k.release,
                log.display()
            );
            failed.push(format!("{label}: guest set-up"));
            continue;
        }
        if let Some(reason) = &console.cut_short {
            // The checks it did finish are still judged below; the missing ones fail.
            println!(
                "vmtest {label} ({}): FAIL: {reason}; last console lines:\n{}",
                k.release,
                console.tail(15)
            );
            failed.push(format!("{label}: the guest did not finish"));
        }
        let uname = console.file("info/uname").unwrap_or("?").trim().to_string();
        let btf = console.file("info/btf").unwrap_or("?").trim().to_string();
        println!(
            "vmtest {label}: uname -r {uname}, /sys/kernel/btf/vmlinux: {btf}, {}s in the guest (console: {})",
            console.elapsed.as_secs(),
            log.display()
        );
        if uname != k.release {
            println!("  FAIL booted {uname}, expected {}", k.release);
            failed.push(format!("{label}: wrong kernel"));
        }
        for o in checks::evaluate(&k.release, &console) {
            println!(
                "  {} {:<26} {}: {}",
                if o.pass { "PASS" } else { "FAIL" },
                o.name,
                o.what,
                o.detail
            );
            if !o.pass {
                failed.push(format!("{label}: {}", o.name));
            }
        }
    }
    step(&format!("vmtest: done in {}s", started.elapsed().as_secs()));
    if !failed.is_empty() {
        bail!("{} VM check(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

/// The profiler binary to test (built release unless given) and the workload (debug: its speed
/// does not matter, and `cargo xtask test` has built it already).
fn binaries(profiler: Option<&Path>) -> anyhow::Result<image::Binaries> {
    // The workload's package depends on the profiler library, whose build compiles the probes.
    setup::toolchain()?;
    let profiler = match profiler {
        Some(p) => {
            let p = std::fs::canonicalize(p)
                .with_context(|| format!("--binary {}: no such file", p.display()))?;
            step(&format!("vmtest: testing {}", p.display()));
            p
        }
        None => {
            step("vmtest: building profiler (release)");
            build_profiler(None)?
        }
    };
    step("vmtest: building the workload");
    exec(cargo().args(["build", "--package", "profiler-tests", "--bin", "workload"]))?;
    Ok(image::Binaries {
        profiler,
        workload: workspace_root().join("target/debug/workload"),
    })
}

/// Holds an exclusive lock on `path` (created if missing) until the file is dropped, saying so
/// when `holder` has it first.
fn lock(path: &Path, holder: &str) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        step(&format!(
            "vmtest: waiting for {holder} to finish (lock {})",
            path.display()
        ));
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

/// A system tool by absolute path: /usr/sbin and /sbin are not on every PATH.
fn system_tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
