//! `cargo xtask dist`: a static binary (x86_64-unknown-linux-musl, the probes embedded) that
//! runs anywhere: an Alpine, distroless or busybox container, copied in with `docker cp` or
//! `kubectl cp`. Installs the rustup target when missing; no C is compiled, so the target's
//! own musl suffices (no musl-gcc).

use std::path::PathBuf;
use std::process::Command;

use crate::exec::{build_profiler, exec, output, step};
use crate::setup;

pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Builds the static binary and returns its path.
pub fn dist() -> anyhow::Result<PathBuf> {
    setup::toolchain()?;
    let targets =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !targets.lines().any(|t| t.trim() == MUSL_TARGET) {
        step(&format!("adding the rustup target {MUSL_TARGET}"));
        exec(Command::new("rustup").args(["target", "add", MUSL_TARGET]))?;
    }
    let bin = build_profiler(Some(MUSL_TARGET))?;
    step(&format!("static binary: {}", bin.display()));
    Ok(bin)
}
