//! Boots one guest in QEMU (TCG: KVM hangs on the machines this runs on) and collects what its
//! init script framed on the serial console. A guest that hangs is killed at the deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub const QEMU: &str = "qemu-system-x86_64";

/// What the guest reported: the framed files by name, and the whole console.
pub struct Console {
    pub files: BTreeMap<String, String>,
    pub text: String,
    /// The guest reached the end of its checks (`@@vmtest done`).
    pub done: bool,
    /// `@@vmtest fatal …`: the guest could not set itself up.
    pub fatal: Option<String>,
    /// Why the guest stopped before `done` (killed at the deadline, QEMU exited), if it did.
    pub cut_short: Option<String>,
    /// From starting QEMU to its exit.
    pub elapsed: Duration,
}

impl Console {
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }

    /// The last lines of the console, for an error about a guest that went wrong.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Fails with the reason when this machine cannot run QEMU at all.
pub fn check_qemu() -> anyhow::Result<()> {
    let out = Command::new(QEMU)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {QEMU}: install qemu-system-x86"))?;
    if !out.status.success() {
        bail!(
            "{QEMU} --version failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Boots `vmlinuz` with `initramfs` and `disk`; `echo` prefixes and prints every console line as
/// it arrives (for debugging).
pub fn boot(
    vmlinuz: &Path,
    initramfs: &Path,
    disk: &Path,
    timeout: Duration,
    echo: Option<&str>,
) -> anyhow::Result<Console> {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max", "-m", "1G"])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        // quiet + loglevel: kernel messages stay off the console the checks are read from;
        // panic=-1: a guest that panics reboots, which -no-reboot turns into QEMU exiting.
        .args(["-append", "console=ttyS0 quiet loglevel=1 panic=-1"])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {shown}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    let started = Instant::now();
    let deadline = started + timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(prefix) = echo {
                    eprintln!("[{prefix}] {line}");
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline {
            timed_out = true;
            // The guest hung: stop it so the run ends.
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait()?;
    let _ = reader.join();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    let mut console = parse(lines);
    console.elapsed = started.elapsed();
    if console.done || console.fatal.is_some() {
        return Ok(console);
    }
    console.cut_short = Some(if timed_out {
        format!(
            "the guest did not finish within {}s (killed)",
            timeout.as_secs()
        )
    } else {
        format!(
            "QEMU exited ({status}) before the guest finished its checks{}",
            if qemu_stderr.trim().is_empty() {
                String::new()
            } else {
                format!("; QEMU said: {}", qemu_stderr.trim())
            }
        )
    });
    Ok(console)
}

const MARK: &str = "@@vmtest ";

fn parse(lines: Vec<String>) -> Console {
    let mut files = BTreeMap::new();
    let mut done = false;
    let mut fatal = None;
    let mut open: Option<(String, Vec<&str>)> = None;
    for line in &lines {
        // A marker may follow other output on the same line (a file without a final newline).
        let (before, marker) = match line.find(MARK) {
            Some(at) => (&line[..at], Some(&line[at + MARK.len()..])),
            None => (line.as_str(), None),
        };
        if let Some((_, body)) = open.as_mut() {
            if marker.is_none() || !before.is_empty() {
                body.push(before);
            }
        }
        let Some(marker) = marker else { continue };
        if marker == "eof" {
            if let Some((name, mut body)) = open.take() {
                // init.sh's emit adds a newline after the file: drop the empty line it makes.
                if body.last() == Some(&"") {
                    body.pop();
                }
                files.insert(name, body.join("\n"));
            }
        } else if let Some(name) = marker.strip_prefix("file ") {
            open = Some((name.to_string(), Vec::new()));
        } else if marker == "done" {
            done = true;
        } else if let Some(reason) = marker.strip_prefix("fatal ") {
            fatal = Some(reason.to_string());
        }
    }
    Console {
        files,
        text: lines.join("\n"),
        done,
        fatal,
        cut_short: None,
        elapsed: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_into_files() {
        let console = [
            "boot noise",
            "@@vmtest file a/out",
            "line 1",
            "line 2",
            "",
            "@@vmtest eof",
            "@@vmtest file a/rc",
            "0",
            "",
            "@@vmtest eof",
            "@@vmtest file empty",
            "",
            "@@vmtest eof",
            "@@vmtest file unterminated",
            "no newline@@vmtest eof",
            "@@vmtest done",
        ]
        .map(String::from)
        .to_vec();
        let parsed = parse(console);
        assert!(parsed.done, "done marker seen");
        assert_eq!(parsed.file("a/out"), Some("line 1\nline 2"));
        assert_eq!(parsed.file("a/rc"), Some("0"));
        assert_eq!(parsed.file("empty"), Some(""));
        assert_eq!(parsed.file("unterminated"), Some("no newline"));
        assert_eq!(parsed.fatal, None);
    }
}
