//! Debian's cloud kernels, fetched with an apt configuration of their own (sources list, state and
//! cache under the vmtest cache directory; the machine's apt sources are left alone), unpacked once
//! and kept: a second run finds them in the cache and downloads nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::exec::{exec, output, step};

/// A kernel the VM checks boot, as the user names it on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    #[value(name = "5.10")]
    V5_10,
    #[value(name = "6.1")]
    V6_1,
}

impl Choice {
    pub const ALL: [Choice; 2] = [Choice::V5_10, Choice::V6_1];

    pub fn label(self) -> &'static str {
        match self {
            Choice::V5_10 => "5.10",
            Choice::V6_1 => "6.1",
        }
    }

    /// The Debian suite whose `linux-image-cloud-amd64` is this kernel.
    fn suite(self) -> &'static str {
        match self {
            Choice::V5_10 => "bullseye",
            Choice::V6_1 => "bookworm",
        }
    }
}

/// An unpacked kernel package.
pub struct Kernel {
    pub choice: Choice,
    /// `uname -r` of the kernel, e.g. `5.10.0-32-cloud-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/RELEASE`, with modules.dep made by depmod.
    pub modules: PathBuf,
}

const META_PACKAGE: &str = "linux-image-cloud-amd64";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const MIRROR: &str = "http://deb.debian.org/debian";

pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("profiler-vmtest")
}

/// The kernel of `choice`, from the cache or fetched and unpacked into it.
pub fn fetch(choice: Choice) -> anyhow::Result<Kernel> {
    let suite = choice.suite();
    let unpacked = cache_dir().join("kernels").join(suite);
    let ready = unpacked.join(".ready");
    std::fs::create_dir_all(cache_dir())?;
    // Runs from other worktrees share this cache: one fetches, the others wait for it.
    let _cache_lock = super::lock(
        &cache_dir().join("lock"),
        "another vmtest run using the kernel cache",
    )?;
    if !ready.exists() {
        download_and_unpack(choice, &unpacked)?;
        std::fs::write(&ready, "")?;
    }
    let kernel = open_unpacked(choice, &unpacked)?;
    step(&format!(
        "vmtest: kernel {} ({suite}): {} (cached in {})",
        choice.label(),
        kernel.release,
        unpacked.display()
    ));
    Ok(kernel)
}

/// `apt-get`/`apt-cache` with the suite's own sources list, state and cache directories.
fn apt(tool: &str, root: &Path) -> Command {
    let mut cmd = Command::new(tool);
    let opt = |key: &str, value: &Path| format!("{key}={}", value.display());
    for (key, value) in [
        ("Dir::Etc::sourcelist", root.join("sources.list")),
        ("Dir::Etc::sourceparts", root.join("sources.list.d")),
        ("Dir::Etc::preferencesparts", root.join("preferences.d")),
        ("Dir::State", root.join("state")),
        ("Dir::State::status", root.join("state/status")),
        ("Dir::Cache", root.join("cache")),
    ] {
        cmd.args(["-o", &opt(key, &value)]);
    }
    // The files are the caller's (root's cache): downloading as _apt would only warn and fall back.
    cmd.args(["-o", "Debug::NoLocking=1", "-o", "Acquire::Languages=none"]);
    cmd.args(["-o", "APT::Sandbox::User=root"]);
    cmd
}

fn download_and_unpack(choice: Choice, unpacked: &Path) -> anyhow::Result<()> {
    let suite = choice.suite();
    let root = cache_dir().join("apt").join(suite);
    for dir in [
        "sources.list.d",
        "preferences.d",
        "state/lists/partial",
        "cache/archives/partial",
    ] {
        std::fs::create_dir_all(root.join(dir))
            .with_context(|| format!("creating {}", root.join(dir).display()))?;
    }
    std::fs::write(
        root.join("sources.list"),
        format!("deb [arch=amd64 signed-by={KEYRING}] {MIRROR} {suite} main\n"),
    )?;
    std::fs::write(root.join("state/status"), "")?;
    step(&format!(
        "vmtest: fetching the {suite} package index (own apt configuration in {})",
        root.display()
    ));
    exec(apt("apt-get", &root).args(["-qq", "update"])).with_context(|| {
        format!("apt-get update for {suite} ({MIRROR}) failed: is the Debian mirror reachable?")
    })?;
    let depends = output(apt("apt-cache", &root).args(["depends", META_PACKAGE]))
        .with_context(|| format!("apt-cache depends {META_PACKAGE} failed for {suite}"))?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-cloud-amd64"))
        .with_context(|| {
            format!("{META_PACKAGE} in {suite} depends on no linux-image-*-cloud-amd64:\n{depends}")
        })?
        .to_string();
    let debs = cache_dir().join("debs").join(suite);
    std::fs::create_dir_all(&debs)?;
    step(&format!("vmtest: downloading {package} ({suite})"));
    // apt-get download writes into the current directory.
    exec(
        apt("apt-get", &root)
            .args(["-qq", "download", &package])
            .current_dir(&debs),
    )?;
    let deb = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .with_context(|| {
            format!(
                "apt-get download left no {package}_*.deb in {}",
                debs.display()
            )
        })?;
    if unpacked.exists() {
        std::fs::remove_dir_all(unpacked)?;
    }
    std::fs::create_dir_all(unpacked)?;
    step(&format!("vmtest: unpacking {}", deb.display()));
    exec(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(unpacked))?;
    let release = release_of(unpacked)?;
    // The package ships no modules.dep (its postinst makes it): make it here, for this tree only.
    exec(
        Command::new(super::system_tool("depmod"))
            .arg("-b")
            .arg(unpacked)
            .arg(&release),
    )?;
    Ok(())
}

/// The one `lib/modules/RELEASE` directory of an unpacked kernel package.
fn release_of(unpacked: &Path) -> anyhow::Result<String> {
    let dir = unpacked.join("lib/modules");
    let mut releases: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    match releases.len() {
        1 => Ok(releases.remove(0)),
        _ => bail!(
            "expected one kernel release in {}, found {releases:?}",
            dir.display()
        ),
    }
}

fn open_unpacked(choice: Choice, unpacked: &Path) -> anyhow::Result<Kernel> {
    let release = release_of(unpacked)?;
    let vmlinuz = unpacked.join(format!("boot/vmlinuz-{release}"));
    let modules = unpacked.join("lib/modules").join(&release);
    if !vmlinuz.exists() || !modules.join("modules.dep").exists() {
        bail!(
            "the cached kernel in {} is incomplete (no {} or modules.dep): delete that directory to fetch it again",
            unpacked.display(),
            vmlinuz.display()
        );
    }
    Ok(Kernel {
        choice,
        release,
        vmlinuz,
        modules,
    })
}

fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl Kernel {
    /// The module files (relative to `self.modules`) to load, dependencies first, for `wanted`
    /// (module names); modules built into the kernel need no loading and are left out.
    pub fn modules_to_load(&self, wanted: &[&str]) -> anyhow::Result<Vec<String>> {
        let builtin_list = std::fs::read_to_string(self.modules.join("modules.builtin"))
            .with_context(|| format!("reading {}/modules.builtin", self.modules.display()))?;
        let builtin: BTreeSet<String> = builtin_list.lines().map(module_name).collect();
        let dep_list = std::fs::read_to_string(self.modules.join("modules.dep"))
            .with_context(|| format!("reading {}/modules.dep", self.modules.display()))?;
        // name -> (file, the files it depends on)
        let mut deps: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for line in dep_list.lines() {
            let Some((file, rest)) = line.split_once(':') else {
                continue;
            };
            let needs = rest.split_whitespace().map(String::from).collect();
            deps.insert(module_name(file), (file.to_string(), needs));
        }
        let mut order = Vec::new();
        for name in wanted {
            let name = name.replace('-', "_");
            if builtin.contains(&name) {
                continue;
            }
            add_with_deps(&name, &deps, &mut order, 0).with_context(|| {
                format!(
                    "kernel {} has no module {name} and does not build it in",
                    self.release
                )
            })?;
        }
        Ok(order)
    }
}

fn add_with_deps(
    name: &str,
    deps: &BTreeMap<String, (String, Vec<String>)>,
    order: &mut Vec<String>,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > 64 {
        bail!("module dependencies of {name} loop");
    }
    let (file, needs) = deps
        .get(name)
        .with_context(|| format!("{name} is not in modules.dep"))?;
    if order.contains(file) {
        return Ok(());
    }
    for need in needs {
        add_with_deps(&module_name(need), deps, order, depth + 1)?;
    }
    order.push(file.clone());
    Ok(())
}
