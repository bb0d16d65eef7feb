//! The one way xtask runs commands: echo them, run them, fail with the command in the error.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// Runs `cmd` with inherited stdio; an error names the command and its exit status.
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout, or None when it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn step(msg: &str) {
    eprintln!("xtask: {msg}");
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace root")
        .to_path_buf()
}

/// `cargo` as invoked by the user (the toolchain that runs xtask).
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Builds the profiler binary (release, the probes embedded) for `target`, the host's when
/// None; returns its path.
pub fn build_profiler(target: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--package",
        "profiler",
        "--bin",
        "profiler",
    ]);
    let mut dir = workspace_root().join("target");
    if let Some(target) = target {
        cmd.args(["--target", target]);
        dir.push(target);
    }
    exec(&mut cmd)?;
    Ok(dir.join("release/profiler"))
}
