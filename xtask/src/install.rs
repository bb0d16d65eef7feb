//! `cargo xtask install [--prefix /usr/local] [--destdir DIR] [--binary PATH]`: the binary, its
//! man page and shell completions (which the binary generates from its own options, so that
//! they cannot drift from them), and the systemd unit, where a system looks for each.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::exec::{build_profiler, step, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Where the files go: PREFIX/bin, PREFIX/share/man, PREFIX/lib/systemd/system, ...
    #[arg(long, default_value = "/usr/local")]
    pub prefix: PathBuf,
    /// Stage the files under DESTDIR (for packaging): DESTDIR/PREFIX/bin/profiler, ...; the
    /// unit still names PREFIX/bin/profiler
    #[arg(long)]
    pub destdir: Option<PathBuf>,
    /// Install this binary instead of building the release one
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

pub fn install(args: &Args) -> anyhow::Result<()> {
    if !args.prefix.is_absolute() {
        bail!(
            "--prefix must be an absolute path, not {}",
            args.prefix.display()
        );
    }
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => build_profiler(None)?,
    };
    let installed = install_files(&binary, &args.prefix, args.destdir.as_deref())?;
    for path in &installed {
        step(&format!("installed {}", path.display()));
    }
    if args.destdir.is_none() {
        step("as a service: systemctl daemon-reload && systemctl enable --now profiler");
    }
    Ok(())
}

/// Where each file goes under `prefix`, and its mode.
fn layout(prefix: &Path) -> Vec<(PathBuf, Source, u32)> {
    vec![
        (prefix.join("bin/profiler"), Source::Binary, 0o755),
        (
            prefix.join("share/man/man8/profiler.8"),
            Source::Generated("man"),
            0o644,
        ),
        (
            prefix.join("share/bash-completion/completions/profiler"),
            Source::Generated("bash"),
            0o644,
        ),
        (
            prefix.join("share/zsh/site-functions/_profiler"),
            Source::Generated("zsh"),
            0o644,
        ),
        (
            prefix.join("share/fish/vendor_completions.d/profiler.fish"),
            Source::Generated("fish"),
            0o644,
        ),
        // systemd reads units from PREFIX/lib/systemd/system for /usr and /usr/local.
        (
            prefix.join("lib/systemd/system/profiler.service"),
            Source::Unit("profiler.service"),
            0o644,
        ),
        (
            prefix.join("lib/systemd/system/profiler-record.service"),
            Source::Unit("profiler-record.service"),
            0o644,
        ),
    ]
}

enum Source {
    Binary,
    /// `profiler --generate WHAT`.
    Generated(&'static str),
    /// A unit in deploy/ (the exporter, the recorder), its ExecStart pointing at the installed
    /// binary.
    Unit(&'static str),
}

/// Copies and generates every file; returns the paths written (under `destdir` when given).
pub fn install_files(
    binary: &Path,
    prefix: &Path,
    destdir: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let staged = |p: &Path| match destdir {
        Some(d) => d.join(p.strip_prefix("/").unwrap_or(p)),
        None => p.to_path_buf(),
    };
    let mut written = Vec::new();
    for (path, source, mode) in layout(prefix) {
        let content = match source {
            Source::Binary => {
                std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?
            }
            Source::Generated(what) => generate(binary, what)?,
            Source::Unit(name) => unit(name, &prefix.join("bin/profiler"))?.into_bytes(),
        };
        let to = staged(&path);
        write(&to, &content, mode)?;
        written.push(to);
    }
    Ok(written)
}

fn generate(binary: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let out = Command::new(binary)
        .args(["--generate", what])
        .output()
        .with_context(|| format!("running {} --generate {what}", binary.display()))?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!(
            "{} --generate {what} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// A unit file of deploy/, starting the binary where it was installed.
fn unit(name: &str, installed_binary: &Path) -> anyhow::Result<String> {
    let source = workspace_root().join("deploy").join(name);
    let text = std::fs::read_to_string(&source)
        .with_context(|| format!("reading {}", source.display()))?;
    let from = "ExecStart=/usr/local/bin/profiler ";
    if !text.contains(from) {
        bail!(
            "{}: no `{from}` line to point at the installed binary",
            source.display()
        );
    }
    Ok(text.replace(from, &format!("ExecStart={} ", installed_binary.display())))
}

/// Writes through a temporary file renamed over the old one, so that a running binary is
/// replaced, not overwritten in place ("text file busy").
fn write(to: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = to.parent().expect("an installed file has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = to.with_extension("xtask-tmp");
    std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("moving into {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for the binary that prints what it was asked to generate: the real
    /// generation is tested with the real binary (tests/tests/iotop.rs).
    fn fake_profiler(dir: &Path) -> PathBuf {
        let path = dir.join("fake-profiler");
        write(
            &path,
            b"#!/bin/sh\n[ \"$1\" = --generate ] && echo \"generated $2\"\n",
            0o755,
        )
        .expect("writing the stand-in");
        path
    }

    #[test]
    fn installs_every_file_where_a_system_looks_for_it() {
        let root = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let binary = fake_profiler(&root);
        let destdir = root.join("stage");
        let prefix = Path::new("/opt/profiler");
        let written = install_files(&binary, prefix, Some(&destdir)).expect("installed");
        let under = |p: &str| destdir.join("opt/profiler").join(p);
        assert_eq!(
            written,
            [
                under("bin/profiler"),
                under("share/man/man8/profiler.8"),
                under("share/bash-completion/completions/profiler"),
                under("share/zsh/site-functions/_profiler"),
                under("share/fish/vendor_completions.d/profiler.fish"),
                under("lib/systemd/system/profiler.service"),
                under("lib/systemd/system/profiler-record.service"),
            ]
        );
        let read = |p: &str| std::fs::read_to_string(under(p)).expect("installed file");
        let mode = |p: &str| {
            std::fs::metadata(under(p))
                .expect("installed file")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bin/profiler"), 0o755);
        assert_eq!(read("share/man/man8/profiler.8"), "generated man\n");
        assert_eq!(mode("share/man/man8/profiler.8"), 0o644);
        assert_eq!(
            read("share/zsh/site-functions/_profiler"),
            "generated zsh\n"
        );
        let unit = read("lib/systemd/system/profiler.service");
        assert!(
            unit.contains("\nExecStart=/opt/profiler/bin/profiler serve"),
            "the unit starts the installed binary: {unit}"
        );
        let unit = read("lib/systemd/system/profiler-record.service");
        assert!(
            unit.contains("\nExecStart=/opt/profiler/bin/profiler record"),
            "the recording unit starts the installed binary: {unit}"
        );
        // Installing again replaces every file.
        install_files(&binary, prefix, Some(&destdir)).expect("installed again");
        std::fs::remove_dir_all(&root).expect("cleaned up");
    }

    #[test]
    fn a_binary_that_cannot_generate_is_an_error() {
        let root = std::env::temp_dir().join(format!("xtask-install-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let e = install_files(Path::new("/bin/false"), Path::new("/p"), Some(&root))
            .expect_err("refused");
        assert!(e.to_string().contains("--generate man"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
