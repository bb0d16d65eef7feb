//! Installs the eBPF toolchain from nothing, idempotently, one line per step:
//! the nightly toolchain with rust-src, Debian's LLVM development packages whose major
//! version matches the nightly's LLVM, and bpf-linker built against them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::exec::{exec, output, step};

/// The toolchain that builds the eBPF probes: `nightly`, or the one PROFILER_EBPF_TOOLCHAIN
/// names (a dated nightly, as the Dockerfile pins it); profiler's build.rs reads the same.
pub fn ebpf_toolchain() -> String {
    std::env::var("PROFILER_EBPF_TOOLCHAIN").unwrap_or_else(|_| "nightly".into())
}
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Tools the integration tests drive (tmux for the TUI, capsh and unshare for containers, bpftool
/// to check that nothing stays attached), as Debian packages.
pub const TEST_PACKAGES: [(&str, &str); 5] = [
    ("tmux", "tmux"),
    ("capsh", "libcap2-bin"),
    ("bpftool", "bpftool"),
    ("unshare", "util-linux"),
    ("prometheus", "prometheus"),
];

fn rustup() -> Command {
    Command::new("rustup")
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
}

/// LLVM major version of the toolchain that builds the eBPF crate.
fn llvm_major() -> anyhow::Result<u32> {
    let ebpf_toolchain = ebpf_toolchain();
    let vv = output(rustup().args(["run", &ebpf_toolchain, "rustc", "-vV"]))
        .with_context(|| format!("`rustc +{ebpf_toolchain} -vV` failed"))?;
    let version = vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("rustc -vV printed no LLVM version")?;
    version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .context("unparsable LLVM version")
}

/// The LLVM feature bpf-linker was installed with, from cargo's install records.
fn installed_linker_llvm() -> Option<String> {
    let records = std::fs::read_to_string(cargo_home().join(".crates2.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&records).ok()?;
    let installs = json.get("installs")?.as_object()?;
    let (_, entry) = installs
        .iter()
        .find(|(k, _)| k.starts_with(&format!("bpf-linker {BPF_LINKER_VERSION} ")))?;
    entry
        .get("features")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.starts_with("llvm-"))
        .map(String::from)
}

fn have_command(name: &str) -> bool {
    output(Command::new("sh").args(["-c", &format!("command -v {name}")])).is_some()
}

fn dpkg_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.contains("install ok installed"))
}

/// Installs Debian packages, or says exactly what to run when it cannot.
pub fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let commands = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    if !Path::new("/usr/bin/apt-get").exists() {
        bail!("missing packages {missing:?}, and this is not a Debian/Ubuntu system: install their equivalents");
    }
    if !crate::exec::is_root() {
        bail!("missing packages {missing:?}: run as root: `sudo sh -c '{commands}'`");
    }
    step(&format!("installing {} (apt-get)", missing.join(" ")));
    exec(Command::new("apt-get").args(["update", "-qq"]))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Adds `component` to the eBPF toolchain when it is missing; `why` is said on the way.
pub fn ensure_component(component: &str, why: &str) -> anyhow::Result<()> {
    let toolchain = ebpf_toolchain();
    let installed = output(rustup().args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        &toolchain,
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with(component)) {
        return Ok(());
    }
    step(&format!("adding {component} to {toolchain} ({why})"));
    exec(rustup().args(["component", "add", component, "--toolchain", &toolchain]))
}

pub fn toolchain() -> anyhow::Result<()> {
    let ebpf_toolchain = ebpf_toolchain();
    if !have_command("rustup") {
        bail!("rustup is needed to fetch the {ebpf_toolchain} toolchain that builds the eBPF probes: see https://rustup.rs");
    }
    let installed = output(rustup().args(["toolchain", "list"])).unwrap_or_default();
    if !installed.lines().any(|l| l.starts_with(&ebpf_toolchain)) {
        step(&format!(
            "installing the {ebpf_toolchain} toolchain (builds the eBPF probes)"
        ));
        exec(rustup().args([
            "toolchain",
            "install",
            &ebpf_toolchain,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }
    ensure_component("rust-src", "the eBPF build compiles core from source")?;
    let major = llvm_major()?;
    let feature = format!("llvm-{major}");
    if have_command("bpf-linker") && installed_linker_llvm().as_deref() == Some(feature.as_str()) {
        return Ok(());
    }
    step(&format!(
        "bpf-linker {BPF_LINKER_VERSION} for LLVM {major} is missing: building it"
    ));
    let prefix = format!("/usr/lib/llvm-{major}");
    if !Path::new(&prefix).join("lib").exists() || !dpkg_installed(&format!("llvm-{major}-dev")) {
        apt_install(&[&format!("llvm-{major}-dev"), &format!("libpolly-{major}-dev"), "libzstd-dev"]).with_context(|| {
            format!("bpf-linker needs LLVM {major} development files (the LLVM of rustc +{ebpf_toolchain})")
        })?;
    }
    step(&format!(
        "cargo install bpf-linker@{BPF_LINKER_VERSION} against {prefix} (about a minute)"
    ));
    exec(
        Command::new("cargo")
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--no-default-features",
            ])
            .args(["--features", &feature])
            .env("LLVM_PREFIX", &prefix)
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
}

/// The container engines the real-container tests drive, as commands and Debian packages: runc
/// runs the containers of both, busybox-static fills the test image.
const ENGINE_PACKAGES: [(&str, &str); 4] = [
    ("dockerd", "docker.io"),
    ("podman", "podman"),
    ("runc", "runc"),
    ("busybox", "busybox-static"),
];

/// Installs the container engines; Err says why they cannot be installed, and the
/// real-container tests are then skipped with that reason.
pub fn container_engines() -> Result<(), String> {
    let missing: Vec<&str> = ENGINE_PACKAGES
        .iter()
        // The test image needs the static busybox, not just any on PATH.
        .filter(|(cmd, pkg)| {
            !have_command(cmd) || (*pkg == "busybox-static" && !dpkg_installed(pkg))
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!("container engines missing: {}", missing.join(" ")));
    apt_install(&missing).map_err(|e| format!("{e:#}"))
}

/// The tools the integration tests use.
pub fn test_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .filter(|(cmd, _)| !have_command(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        step(&format!("test tools missing: {}", missing.join(" ")));
        apt_install(&missing)?;
    }
    Ok(())
}
