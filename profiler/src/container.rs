//! Which container a task belongs to, from its cgroup: docker, containerd/CRI (kubernetes),
//! CRI-O, podman, LXC, systemd units, or `host`. Pure classification of a cgroup path, plus the
//! lookups that find a task's cgroup path (/proc/PID/cgroup, or a cgroup v2 id from eBPF).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Label of tasks that are in no container.
pub const HOST: &str = "host";

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Strips a systemd scope/slice decoration: `docker-<id>.scope` → `<id>` for the given prefix.
fn scoped<'a>(component: &'a str, prefix: &str) -> Option<&'a str> {
    component
        .strip_prefix(prefix)?
        .strip_suffix(".scope")
        .filter(|id| is_container_id(id))
}

/// The container label of a cgroup path (as in /proc/PID/cgroup, relative to the hierarchy root).
pub fn classify(cgroup_path: &str) -> String {
    let parts: Vec<&str> = cgroup_path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts == ["init.scope"] {
        return HOST.into();
    }
    // Kubernetes: a pod component (pod<uid> or kubepods-…-pod<uid>.slice) and a container id.
    if parts.iter().any(|p| p.starts_with("kubepods")) {
        let pod = parts.iter().find_map(|p| {
            let p = p.strip_suffix(".slice").unwrap_or(p);
            let uid = p
                .rsplit_once("-pod")
                .map(|(_, u)| u)
                .or_else(|| p.strip_prefix("pod"))?;
            Some(uid.replace('_', "-"))
        });
        let container = parts.iter().rev().find_map(|p| {
            ["cri-containerd-", "crio-", "docker-"]
                .iter()
                .find_map(|prefix| scoped(p, prefix))
                .or_else(|| is_container_id(p).then_some(*p))
        });
        return match (pod, container) {
            (Some(pod), Some(c)) => format!("k8s:{}/{}", short(&pod), short(c)),
            (Some(pod), None) => format!("k8s:{}", short(&pod)),
            (None, Some(c)) => format!("k8s:{}", short(c)),
            (None, None) => "k8s".into(),
        };
    }
    for (i, p) in parts.iter().enumerate() {
        for (prefix, engine) in [
            ("docker-", "docker"),
            ("libpod-", "podman"),
            ("cri-containerd-", "containerd"),
            ("crio-", "cri-o"),
        ] {
            if let Some(id) = scoped(p, prefix) {
                return format!("{engine}:{}", short(id));
            }
        }
        // cgroupfs driver: /docker/<id>, /libpod_parent/libpod-<id>, /lxc/<name>, /lxc.payload.<name>
        if let Some(id) = p.strip_prefix("libpod-").filter(|id| is_container_id(id)) {
            return format!("podman:{}", short(id));
        }
        if i > 0 && is_container_id(p) {
            let engine = match parts[i - 1] {
                "docker" => "docker",
                "containerd" => "containerd",
                _ => "container",
            };
            return format!("{engine}:{}", short(p));
        }
        if let Some(name) = p.strip_prefix("lxc.payload.") {
            return format!("lxc:{name}");
        }
        if *p == "lxc" {
            if let Some(name) = parts.get(i + 1) {
                return format!("lxc:{name}");
            }
        }
    }
    // systemd: the innermost unit (service or scope); a slice alone is the host's.
    if let Some(unit) = parts
        .iter()
        .rev()
        .find(|p| p.ends_with(".service") || p.ends_with(".scope"))
    {
        return (*unit).to_string();
    }
    if parts.iter().all(|p| p.ends_with(".slice")) {
        return HOST.into();
    }
    // Any other group (made by hand, or by a tool we do not know): its path names it.
    parts.join("/")
}

/// Whether `--container FILTER` keeps a task labelled `label`: the label starts with FILTER
/// (`docker:4f1c`, `host`), or FILTER names the container as its engine prints it: a prefix of
/// the id in the label (`docker ps`'s 12 digits, or fewer), the whole 64-digit id (`docker ps
/// --no-trunc`), a pod uid, or a name where the label carries one (`lxc:web1`). An engine given
/// in FILTER (`podman:<id>`) must be the label's.
pub fn label_matches(label: &str, filter: &str) -> bool {
    if label.starts_with(filter) {
        return true;
    }
    let Some((engine, rest)) = label.split_once(':') else {
        return false;
    };
    let id = match filter.split_once(':') {
        Some((e, _)) if e != engine => return false,
        Some((_, id)) => id,
        None => filter,
    };
    !id.is_empty()
        && rest.split('/').any(|part| {
            part.starts_with(id)
                // A longer id than the label shows: the label's digits must begin it.
                || (part.len() >= 12
                    && id.len() > part.len()
                    && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                    && id.starts_with(part))
        })
}

/// The `--container` filters that match none of `labels`.
pub fn unmatched<'a>(filters: &'a [String], labels: &[&str]) -> Vec<&'a str> {
    filters
        .iter()
        .filter(|f| !labels.iter().any(|l| label_matches(l, f)))
        .map(String::as_str)
        .collect()
}

/// The cgroup path that names a process's container, from the text of /proc/PID/cgroup: the
/// unified (v2) line, or on a v1-only host the name=systemd line, else the first controller's.
/// A v1-only host still lists the unified hierarchy, with every task at its root (`0::/`).
pub fn cgroup_path_from_proc(text: &str) -> Option<String> {
    let mut unified = None;
    let mut v1_systemd = None;
    let mut v1_any = None;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.is_empty() {
            unified.get_or_insert_with(|| path.to_string());
        } else if controllers == "name=systemd" {
            v1_systemd.get_or_insert_with(|| path.to_string());
        }
        if !controllers.is_empty() {
            v1_any.get_or_insert_with(|| path.to_string());
        }
    }
    let v1 = v1_systemd.or(v1_any);
    match unified {
        Some(root) if root == "/" && v1.as_ref().is_some_and(|p| p != "/") => v1,
        Some(path) => Some(path),
        None => v1,
    }
}

/// A cgroup v2 mount: where it is, and which group is its root, as mountinfo shows it (`/`
/// for a whole hierarchy; a path for one mounted from inside a cgroup namespace; `/..`-style
/// when the mount lies above this process's cgroup namespace, as the host's bound in does).
struct Cgroup2Mount {
    dir: PathBuf,
    root: String,
}

/// Finds the cgroup v2 mount, from /proc/self/mountinfo.
fn cgroup2_mount(proc_root: &Path) -> Option<Cgroup2Mount> {
    let text = std::fs::read_to_string(proc_root.join("self/mountinfo")).ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mut fields = left.split(' ').skip(3);
        let root = fields.next()?.to_owned();
        let dir = PathBuf::from(fields.next()?);
        Some(Cgroup2Mount { dir, root })
    })
}

/// Inode of the initial cgroup namespace (PROC_CGROUP_INIT_INO).
const INIT_CGROUP_NS_INO: u64 = 0xEFFF_FFFB;

fn in_initial_cgroup_namespace(proc_root: &Path) -> bool {
    // A kernel without cgroup namespaces has only the initial one.
    std::fs::metadata(proc_root.join("self/ns/cgroup"))
        .map_or(true, |ns| ns.ino() == INIT_CGROUP_NS_INO)
}

/// In a cgroup namespace of its own (a container's default on cgroup v2 hosts) the kernel
/// shows cgroup paths relative to it: another container's as `/../<id>`, this container's as
/// `/`, so labels would be wrong. With the host's pid namespace and CAP_SYS_ADMIN this joins
/// pid 1's cgroup namespace, where paths are whole again. Threads inherit it: call it before
/// any starts. Err says why it could not.
pub fn join_initial_cgroup_namespace(proc_root: &Path) -> Result<(), String> {
    if in_initial_cgroup_namespace(proc_root) {
        return Ok(());
    }
    // Pid 1 first; any task of the host's will do where pid 1's is not readable to us.
    let pids = std::fs::read_dir(proc_root)
        .map_err(|e| format!("{}: {e}", proc_root.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    let ns = std::iter::once(1)
        .chain(pids)
        .find_map(|pid| {
            let ns = std::fs::File::open(proc_root.join(format!("{pid}/ns/cgroup"))).ok()?;
            ns.metadata()
                .is_ok_and(|m| m.ino() == INIT_CGROUP_NS_INO)
                .then_some(ns)
        })
        .ok_or("no task of the host's cgroup namespace is visible (a pid namespace of its own)")?;
    // SAFETY: setns on a descriptor we own; it changes only this thread's cgroup namespace.
    let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWCGROUP) };
    if r != 0 {
        return Err(format!(
            "joining the host's cgroup namespace: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

const CGROUP_NAMESPACE_ADVICE: &str = "this process has a cgroup namespace of its own (the \
    default for containers on cgroup v2 hosts), where the kernel shows cgroup paths relative to \
    it; run the container with --cgroupns=host, or with --pid=host and CAP_SYS_ADMIN \
    (--privileged), where profiler joins the host's";

/// Labels tasks with their container. Caches per process and per cgroup id.
pub struct Containers {
    proc_root: PathBuf,
    cgroup2: Option<PathBuf>,
    /// The group at the root of the v2 mount, prefixed to the paths found under it.
    cgroup2_root: String,
    /// Cgroup paths are relative to a namespace of our own: /proc/PID/cgroup names nothing.
    relative: bool,
    /// cgroup v2 id (directory inode) → path relative to the v2 root.
    id_paths: HashMap<u64, String>,
    /// Labels of processes by pid; a pid reused within one refresh keeps the old label once.
    by_pid: HashMap<u32, String>,
    /// Labels of cgroup ids not found under the v2 mount, learnt from live tasks'
    /// /proc/PID/cgroup, so that a task that exits later keeps its label.
    learnt: HashMap<u64, String>,
    /// Said once: exited tasks whose cgroup id could not be resolved.
    warned_unresolved: bool,
    /// Labelling recorded tasks: their pids are not this host's processes now.
    recorded: bool,
    /// Labels a recording kept of its cgroup ids, which win over this host's tree (where the
    /// container may be gone, or an id reused).
    recorded_labels: HashMap<u64, String>,
}

impl Containers {
    pub fn new(proc_root: &Path) -> Self {
        let relative = !in_initial_cgroup_namespace(proc_root);
        let mount = cgroup2_mount(proc_root).filter(|m| {
            // From a namespace of our own, only a mount from above it (the host's, bound in)
            // shows whole paths; a mount made inside shows our own subtree as the root.
            !relative || m.root.starts_with("/..")
        });
        let cgroup2_root = match &mount {
            Some(m) if !m.root.contains("..") && m.root != "/" => m.root.clone(),
            _ => String::new(),
        };
        Containers {
            proc_root: proc_root.to_path_buf(),
            cgroup2: mount.map(|m| m.dir),
            cgroup2_root,
            relative,
            id_paths: HashMap::new(),
            by_pid: HashMap::new(),
            learnt: HashMap::new(),
            warned_unresolved: false,
            recorded: false,
            recorded_labels: HashMap::new(),
        }
    }

    /// For tasks of a recording: labelled from their recorded cgroup id only, since
    /// /proc/PID/cgroup now describes whatever process has that pid today.
    pub fn recorded(proc_root: &Path) -> Self {
        Containers {
            recorded: true,
            ..Containers::new(proc_root)
        }
    }

    /// With an explicit cgroup v2 root (tests use a fixture tree).
    pub fn with_cgroup2_root(proc_root: &Path, cgroup2: Option<PathBuf>) -> Self {
        Containers {
            cgroup2,
            cgroup2_root: String::new(),
            ..Containers::new(proc_root)
        }
    }

    fn rescan_ids(&mut self) {
        let Some(root) = self.cgroup2.clone() else {
            return;
        };
        self.id_paths.clear();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let rel = dir
                .strip_prefix(&root)
                .map(|p| format!("{}/{}", self.cgroup2_root, p.display()))
                .unwrap_or_default();
            let rel = if rel.len() > 1 {
                rel.trim_end_matches('/').to_owned()
            } else {
                "/".into()
            };
            self.id_paths.insert(meta.ino(), rel);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }

    /// Takes the labels a recording kept of its cgroup ids (see `recorded`).
    pub fn learn_recorded(&mut self, labels: &[(u64, String)]) {
        for (id, label) in labels {
            if self.recorded_labels.get(id) != Some(label) {
                self.recorded_labels.insert(*id, label.clone());
            }
        }
    }

    /// Container of a cgroup v2 id (what the eBPF probes capture, so exited tasks keep it).
    pub fn of_cgroup_id(&mut self, id: u64) -> Option<String> {
        if !self.id_paths.contains_key(&id) {
            self.rescan_ids();
        }
        self.id_paths.get(&id).map(|p| classify(p))
    }

    /// Container of a process, from /proc/PID/cgroup, remembered while the process is seen.
    pub fn of_pid(&mut self, pid: u32) -> Option<String> {
        if self.recorded {
            return None;
        }
        if self.relative {
            self.warn_unresolved(CGROUP_NAMESPACE_ADVICE.into());
            return None;
        }
        if let Some(c) = self.by_pid.get(&pid) {
            return Some(c.clone());
        }
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        let label = classify(&cgroup_path_from_proc(&text)?);
        self.by_pid.insert(pid, label.clone());
        Some(label)
    }

    /// Container of a task: from the cgroup v2 id the probes captured when there is one (so an
    /// exited task keeps it), else from /proc/PID/cgroup. Without the host's cgroup v2 tree
    /// (a container started without `-v /sys/fs/cgroup:/sys/fs/cgroup:ro`), ids are learnt from
    /// live tasks; an exited task whose id no live task showed stays unlabelled, said once.
    pub fn of_task(&mut self, pid: u32, cgroup_id: Option<u64>, exited: bool) -> Option<String> {
        let Some(id) = cgroup_id else {
            return self.of_pid(pid);
        };
        if let Some(label) = self.recorded_labels.get(&id) {
            return Some(label.clone());
        }
        if let Some(label) = self
            .of_cgroup_id(id)
            .or_else(|| self.learnt.get(&id).cloned())
        {
            return Some(label);
        }
        if !exited && !self.recorded {
            let by_v2 = self.v2_path_of(pid).map(|p| classify(&p));
            let label = self.of_pid(pid);
            // Learnt only where the id's own hierarchy tells containers apart: on a v1-only
            // host every task shares the unified root, and its id would name them all.
            if label.is_some() && by_v2 == label {
                self.learnt.insert(id, label.clone()?);
            }
            if label.is_some() {
                return label;
            }
        }
        if self.recorded {
            self.warn_unresolved(
                "their recorded cgroup ids are not in this host's cgroup tree (the containers \
                 are gone, or the recording was made elsewhere)"
                    .into(),
            );
            return None;
        }
        let where_ = match &self.cgroup2 {
            Some(root) => format!("the cgroup v2 tree at {}", root.display()),
            None => "any cgroup v2 tree: none is mounted here".into(),
        };
        self.warn_unresolved(format!(
            "their cgroup ids are not in {where_}; mount the host's cgroup hierarchy \
             (docker/podman run -v /sys/fs/cgroup:/sys/fs/cgroup:ro; hostPath /sys/fs/cgroup in \
             Kubernetes). Live tasks are labelled from /proc/PID/cgroup"
        ));
        None
    }

    /// Says once why some labels are missing.
    fn warn_unresolved(&mut self, why: String) {
        if !self.warned_unresolved {
            self.warned_unresolved = true;
            log::warn!("container labels of some tasks are unavailable: {why}");
        }
    }

    /// The cgroup v2 path of a live process (the unified line of /proc/PID/cgroup): the one
    /// whose id the probes capture.
    fn v2_path_of(&self, pid: u32) -> Option<String> {
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_owned)
    }

    /// The cgroup v2 id (the inode of its directory) of a live process, for a recording of a
    /// source that does not capture it: replayed, the id tells its container as the eBPF
    /// source's do. None without the host's cgroup v2 tree.
    pub fn cgroup_id_of_pid(&self, pid: u32) -> Option<u64> {
        if self.relative {
            return None;
        }
        let dir = self.cgroup2.as_ref()?;
        let path = self.v2_path_of(pid)?;
        let rel = path.strip_prefix(&self.cgroup2_root).unwrap_or(&path);
        std::fs::metadata(dir.join(rel.trim_start_matches('/')))
            .ok()
            .map(|m| m.ino())
    }

    /// Whether labels of processes are cached (see `retain_pids`).
    pub fn knows_pids(&self) -> bool {
        !self.by_pid.is_empty()
    }

    /// Forgets processes that are gone, so the cache does not grow without bound.
    pub fn retain_pids(&mut self, live: impl Fn(u32) -> bool) {
        self.by_pid.retain(|pid, _| live(*pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";

    #[test]
    fn engines_are_recognised_with_short_ids() {
        assert_eq!(classify("/"), "host");
        assert_eq!(classify("/init.scope"), "host");
        assert_eq!(
            classify(&format!("/system.slice/docker-{ID}.scope")),
            "docker:4f1c2d3e4f5a"
        );
        assert_eq!(classify(&format!("/docker/{ID}")), "docker:4f1c2d3e4f5a");
        assert_eq!(
            classify(&format!("/machine.slice/libpod-{ID}.scope/container")),
            "podman:4f1c2d3e4f5a"
        );
        assert_eq!(classify("/lxc.payload.web1"), "lxc:web1");
        assert_eq!(classify("/lxc/web2/ns"), "lxc:web2");
        assert_eq!(
            classify(&format!(
                "/system.slice/containerd.service/cri-containerd-{ID}.scope"
            )),
            "containerd:4f1c2d3e4f5a"
        );
    }

    #[test]
    fn podman_with_the_cgroupfs_manager() {
        assert_eq!(
            classify(&format!("/libpod_parent/libpod-{ID}")),
            "podman:4f1c2d3e4f5a"
        );
        assert_eq!(
            classify(&format!("/libpod_parent/libpod-{ID}/ctr")),
            "podman:4f1c2d3e4f5a"
        );
    }

    #[test]
    fn filters_take_ids_as_engines_print_them() {
        let docker = "docker:4f1c2d3e4f5a";
        for yes in [
            "docker:4f",
            "docker",
            "4f1c2d3e4f5a",
            "4f1c",
            ID,
            &format!("docker:{ID}"),
        ] {
            assert!(label_matches(docker, yes), "{yes}");
        }
        for no in ["podman:4f1c", "5f1c", "host", "4f1c2d3e4f5b0000"] {
            assert!(!label_matches(docker, no), "{no}");
        }
        assert!(label_matches("k8s:1a2b3c4d-5e6/4f1c2d3e4f5a", "4f1c2d"));
        assert!(label_matches(
            "k8s:1a2b3c4d-5e6/4f1c2d3e4f5a",
            "1a2b3c4d-5e6f-7a8b"
        ));
        assert!(label_matches("lxc:web1", "web1"));
        assert!(label_matches("host", "host"));
        assert!(!label_matches("host", "4f1c"));
        assert_eq!(
            unmatched(
                &["4f1c".into(), "nope".into()],
                &["host", "docker:4f1c2d3e4f5a"]
            ),
            ["nope"]
        );
    }

    #[test]
    fn kubernetes_pods_and_containers() {
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(classify(&systemd), "k8s:1a2b3c4d-5e6/4f1c2d3e4f5a");
        let cgroupfs = format!("/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/{ID}");
        assert_eq!(classify(&cgroupfs), "k8s:1a2b3c4d-5e6/4f1c2d3e4f5a");
        let crio = format!("/kubepods.slice/kubepods-pod0000aaaa_bbbb.slice/crio-{ID}.scope");
        assert_eq!(classify(&crio), "k8s:0000aaaa-bbb/4f1c2d3e4f5a");
    }

    #[test]
    fn systemd_units_and_other_groups() {
        assert_eq!(classify("/system.slice/nginx.service"), "nginx.service");
        assert_eq!(
            classify("/user.slice/user-1000.slice/session-3.scope"),
            "session-3.scope"
        );
        assert_eq!(classify("/user.slice"), "host");
        assert_eq!(classify("/profiler-test-a"), "profiler-test-a");
    }

    #[test]
    fn proc_cgroup_prefers_the_unified_line() {
        let hybrid = "9:name=systemd:/\n4:memory:/x/y\n0::/system.slice/nginx.service\n";
        assert_eq!(
            cgroup_path_from_proc(hybrid).as_deref(),
            Some("/system.slice/nginx.service")
        );
        let v1 = format!("4:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
        assert_eq!(cgroup_path_from_proc(&v1), Some(format!("/docker/{ID}")));
        // A v1-only host with a kernel that lists the unused unified hierarchy.
        let v1_with_root = format!("4:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n");
        assert_eq!(
            cgroup_path_from_proc(&v1_with_root),
            Some(format!("/docker/{ID}"))
        );
        assert_eq!(
            cgroup_path_from_proc("1:name=systemd:/\n0::/\n").as_deref(),
            Some("/")
        );
        assert_eq!(cgroup_path_from_proc(""), None);
    }

    #[test]
    fn without_a_v2_tree_ids_are_learnt_from_live_tasks() {
        let me = std::process::id();
        let text = std::fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
        let v2 = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a unified cgroup line");
        let mut c = Containers::with_cgroup2_root(Path::new("/proc"), None);
        // Exited before any live task of its cgroup was seen: unknown, not a wrong label.
        assert_eq!(c.of_task(me, Some(77), true), None);
        let label = c.of_task(me, Some(77), false);
        assert_eq!(label, Some(classify(v2)));
        // Pid gone (exited): the id learnt from the live task still names it.
        assert_eq!(c.of_task(u32::MAX, Some(77), true), label);
    }

    #[test]
    fn in_a_cgroup_namespace_of_its_own_nothing_is_labelled_from_proc() {
        let mut c = Containers::with_cgroup2_root(Path::new("/proc"), None);
        assert!(c.of_pid(std::process::id()).is_some());
        c.relative = true;
        c.by_pid.clear();
        // `/` there is this container, not the host: no label beats a wrong one.
        assert_eq!(c.of_pid(std::process::id()), None);
        assert_eq!(c.of_task(std::process::id(), Some(77), false), None);
    }

    #[test]
    fn cgroup_ids_resolve_through_the_v2_tree() {
        let dir = std::env::temp_dir().join(format!("profiler-cg-{}", std::process::id()));
        let group = dir.join("system.slice").join(format!("docker-{ID}.scope"));
        std::fs::create_dir_all(&group).expect("fixture tree");
        let ino = std::fs::metadata(&group).expect("stat").ino();
        let mut c = Containers::with_cgroup2_root(Path::new("/proc"), Some(dir.clone()));
        assert_eq!(c.of_cgroup_id(ino).as_deref(), Some("docker:4f1c2d3e4f5a"));
        let root_ino = std::fs::metadata(&dir).expect("stat").ino();
        assert_eq!(c.of_cgroup_id(root_ino).as_deref(), Some("host"));
        assert_eq!(c.of_cgroup_id(1), None);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
