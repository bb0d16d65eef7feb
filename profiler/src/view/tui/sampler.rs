//! The sampler thread: owns the session, refreshes it on a fixed schedule and sends each
//! snapshot to the event loop, with what else the screen needs from the kernel (actual disk
//! I/O from /proc/vmstat, I/O priorities of the rows on screen), so that drawing reads nothing.
//! A refresh of many thousand tasks takes tens of milliseconds or more: on a thread of its own
//! it never delays a key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::history::Timeline;
use crate::runner::{self, Consumer, Flow};
use crate::sample::Counters;
use crate::session::{Session, Snapshot};
use crate::settings::Amounts;
use crate::source::SourceError;
pub use crate::view::ioprio::{ioprio, IoPrio};

/// One refresh, as the sampler sends it.
#[derive(Clone, Debug)]
pub struct Refresh {
    pub snapshot: Snapshot,
    /// How the session grouped and based this snapshot (the user may have asked otherwise since).
    pub processes: bool,
    /// Rows are containers (see `model::group_by_container`).
    pub containers: bool,
    pub accumulated: bool,
    /// Block I/O of the whole system; None on the first refresh or without /proc/vmstat.
    pub actual: Option<ActualIo>,
    /// Replaying: this refresh's place among the recording's, from 1, and how many there are.
    pub replay: Option<(usize, usize)>,
    /// Each view's [`Model::total_delta`](crate::model::Model::total_delta), summed once here
    /// rather than over every row at each frame.
    pub totals: Vec<Counters>,
}

impl Refresh {
    pub fn new(
        snapshot: Snapshot,
        processes: bool,
        containers: bool,
        accumulated: bool,
        actual: Option<ActualIo>,
    ) -> Refresh {
        let totals = snapshot
            .models
            .iter()
            .map(|v| v.model.total_delta())
            .collect();
        Refresh {
            snapshot,
            processes,
            containers,
            accumulated,
            actual,
            replay: None,
            totals,
        }
    }
}

/// What reached the disks, as the kernel counts it for the whole system (iotop's "Actual").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActualIo {
    pub read_bytes_per_s: f64,
    pub write_bytes_per_s: f64,
}

/// What the sampler must change for the next refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SamplerCommand {
    /// What the rows are and what they count: per process, per container
    /// (`Session::group_containers`), since the start or not.
    Rows {
        processes: bool,
        containers: bool,
        amounts: Amounts,
    },
    /// Read the I/O priority of these tasks (the rows on screen), now and at each refresh.
    Prio(Vec<u32>),
    /// Replaying: show the refresh this many intervals later (earlier when negative).
    Step(i64),
    /// Replaying: show the refresh at this time (as `--begin` takes it).
    Seek(String),
}

/// What the sampler tells the event loop.
#[derive(Debug)]
pub enum SamplerEvent {
    Refresh(Box<Refresh>),
    Failed(String),
    Prio(HashMap<u32, IoPrio>),
}

/// Reads /proc/vmstat's pgpgin/pgpgout (KiB since boot) and turns two readings into rates.
pub struct Vmstat {
    path: PathBuf,
    prev: Option<(std::time::Instant, u64, u64)>,
}

/// (pgpgin, pgpgout): KiB read from and written to block devices since boot.
pub fn parse_vmstat(text: &str) -> Option<(u64, u64)> {
    let mut pgpgin = None;
    let mut pgpgout = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("pgpgin", v)) => pgpgin = v.trim().parse().ok(),
            Some(("pgpgout", v)) => pgpgout = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((pgpgin?, pgpgout?))
}

impl Vmstat {
    pub fn new(proc_root: &Path) -> Vmstat {
        Vmstat {
            path: proc_root.join("vmstat"),
            prev: None,
        }
    }

    /// Rates since the previous reading; None for the first one or when vmstat is unreadable.
    pub fn next(&mut self) -> Option<ActualIo> {
        let now = std::time::Instant::now();
        let cur = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| parse_vmstat(&t));
        let prev = std::mem::replace(&mut self.prev, cur.map(|(i, o)| (now, i, o)));
        let ((then, in0, out0), (in1, out1)) = (prev?, cur?);
        let secs = now.duration_since(then).as_secs_f64();
        // A counter that went backwards (it cannot, short of a wrap) gives no rate.
        (secs > 0.0 && in1 >= in0 && out1 >= out0).then(|| ActualIo {
            read_bytes_per_s: (in1 - in0) as f64 * 1024.0 / secs,
            write_bytes_per_s: (out1 - out0) as f64 * 1024.0 / secs,
        })
    }
}

fn prio_of(ids: &[u32]) -> HashMap<u32, IoPrio> {
    ids.iter()
        .filter_map(|&id| Some((id, ioprio(id)?)))
        .collect()
}

/// How long quitting waits for a refresh under way to end, so that the session is dropped
/// (probes detached, sockets closed) before the process exits. A refresh of 10,000 threads
/// takes well under a second, even in a debug build; a sampler stuck for longer is left to the
/// exit, which closes its descriptors all the same.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The sampler's thread. Dropping it waits, up to [`STOP_TIMEOUT`], for the thread to end, which
/// it does once the event loop has dropped either end of its channels.
pub struct SamplerThread {
    handle: Option<std::thread::JoinHandle<()>>,
    /// Disconnects when the thread ends, its session dropped, even by a panic.
    done: std::sync::mpsc::Receiver<()>,
}

impl SamplerThread {
    pub fn spawn(
        session: Session,
        delay: Duration,
        proc_root: PathBuf,
        commands: UnboundedReceiver<SamplerCommand>,
        events: UnboundedSender<SamplerEvent>,
    ) -> anyhow::Result<SamplerThread> {
        // The sampler's timers run on a runtime of its own, which a slow refresh blocks alone.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("starting the sampler's runtime")?;
        let (done_tx, done) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let _done = done_tx;
                runtime.block_on(run(session, delay, proc_root, commands, events));
            })
            .context("starting the sampler")?;
        Ok(SamplerThread {
            handle: Some(handle),
            done,
        })
    }
}

impl SamplerThread {
    /// The sampler of a replay: it sends the refresh asked for (the first at once) and waits
    /// for the next command; `settings` says how to group and sum, as a live session would.
    pub fn spawn_replay(
        settings: Session,
        timeline: Timeline,
        commands: UnboundedReceiver<SamplerCommand>,
        events: UnboundedSender<SamplerEvent>,
    ) -> anyhow::Result<SamplerThread> {
        let (done_tx, done) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let _done = done_tx;
                replay(settings, &timeline, commands, &events);
            })
            .context("starting the sampler")?;
        Ok(SamplerThread {
            handle: Some(handle),
            done,
        })
    }
}

/// Sends refresh `at` of `timeline`, then moves as commands say, until the event loop hangs up.
/// Priorities are the kernel's now, not the recording's: none are read.
fn replay(
    mut settings: Session,
    timeline: &Timeline,
    mut commands: UnboundedReceiver<SamplerCommand>,
    events: &UnboundedSender<SamplerEvent>,
) {
    let last = timeline.refreshes().max(1);
    let mut at = 1;
    let mut amounts = Amounts::Current;
    loop {
        let event = match timeline.refresh(at, &settings) {
            Ok(snapshot) => {
                let mut refresh = refresh_for(&settings, snapshot, amounts, None);
                refresh.replay = Some((at, last));
                SamplerEvent::Refresh(Box::new(refresh))
            }
            Err(e) => SamplerEvent::Failed(e.to_string()),
        };
        if events.send(event).is_err() {
            return;
        }
        loop {
            let Some(command) = commands.blocking_recv() else {
                return;
            };
            match command {
                SamplerCommand::Rows {
                    processes,
                    containers,
                    amounts: asked,
                } => amounts = apply_rows(&mut settings, processes, containers, asked),
                SamplerCommand::Prio(_) => continue,
                SamplerCommand::Step(n) => {
                    at = at.saturating_add_signed(n as isize).clamp(1, last);
                }
                SamplerCommand::Seek(text) => match timeline.parse(&text) {
                    Ok(t) => at = timeline.index_at(t),
                    Err(e) => {
                        if events.send(SamplerEvent::Failed(e.to_string())).is_err() {
                            return;
                        }
                        continue;
                    }
                },
            }
            break;
        }
    }
}

/// `SamplerCommand::Rows` applied to the session that makes the refreshes, live or replayed;
/// returns the amounts, which the refreshes then show.
fn apply_rows(
    session: &mut Session,
    processes: bool,
    containers: bool,
    amounts: Amounts,
) -> Amounts {
    session.model_options.processes = processes;
    session.group_containers = containers;
    session.accumulated = amounts.since_start();
    amounts
}

/// What the view gets of one of `session`'s snapshots, summed as `amounts` asks.
fn refresh_for(
    session: &Session,
    snapshot: Snapshot,
    amounts: Amounts,
    actual: Option<ActualIo>,
) -> Refresh {
    Refresh::new(
        snapshot,
        session.model_options.processes,
        session.group_containers,
        // With `-A` the session sums since the start over the time since then: rates.
        session.accumulated && amounts == Amounts::Accumulated,
        actual,
    )
}

impl Drop for SamplerThread {
    fn drop(&mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        match self.done.recv_timeout(STOP_TIMEOUT) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                log::warn!("the sampler did not stop within {STOP_TIMEOUT:?}; exiting without it")
            }
            // A panic was reported by the hook already.
            _ => {
                let _ = handle.join();
            }
        }
    }
}

/// The sampler as the tick loop's consumer: each refresh goes to the event loop, with the
/// priorities of the rows on screen; commands change what the next refresh groups and sums.
struct Sampler {
    vmstat: Vmstat,
    /// Accumulated amounts, or averages since the start (the session sums for both), or rates.
    amounts: Amounts,
    on_screen: Vec<u32>,
    commands: UnboundedReceiver<SamplerCommand>,
    events: UnboundedSender<SamplerEvent>,
}

impl Sampler {
    /// Sends `event`; Stop once the event loop is gone.
    fn send(&self, event: SamplerEvent) -> Flow {
        match self.events.send(event) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }
}

impl Consumer for Sampler {
    type Command = SamplerCommand;

    fn refreshed(
        &mut self,
        session: &mut Session,
        refresh: Result<Snapshot, SourceError>,
        _: Duration,
    ) -> anyhow::Result<Flow> {
        let snapshot = match refresh {
            Ok(snapshot) => snapshot,
            Err(e) => return Ok(self.send(SamplerEvent::Failed(e.to_string()))),
        };
        let refresh = refresh_for(session, snapshot, self.amounts, self.vmstat.next());
        if self.send(SamplerEvent::Refresh(Box::new(refresh))) == Flow::Stop {
            return Ok(Flow::Stop);
        }
        // Priorities change rarely; the rows on screen get theirs with every refresh.
        if self.on_screen.is_empty() {
            return Ok(Flow::Continue);
        }
        Ok(self.send(SamplerEvent::Prio(prio_of(&self.on_screen))))
    }

    fn command(&mut self) -> impl std::future::Future<Output = Option<SamplerCommand>> {
        self.commands.recv()
    }

    fn on_command(
        &mut self,
        session: &mut Session,
        command: SamplerCommand,
    ) -> anyhow::Result<Flow> {
        match command {
            SamplerCommand::Rows {
                processes,
                containers,
                amounts,
            } => self.amounts = apply_rows(session, processes, containers, amounts),
            SamplerCommand::Prio(ids) => {
                self.on_screen = ids;
                return Ok(self.send(SamplerEvent::Prio(prio_of(&self.on_screen))));
            }
            // Live, time only goes forward.
            SamplerCommand::Step(_) | SamplerCommand::Seek(_) => {}
        }
        Ok(Flow::Continue)
    }
}

/// Refreshes `session` every `delay` until the event loop hangs up.
async fn run(
    mut session: Session,
    delay: Duration,
    proc_root: PathBuf,
    commands: UnboundedReceiver<SamplerCommand>,
    events: UnboundedSender<SamplerEvent>,
) {
    let mut vmstat = Vmstat::new(&proc_root);
    // Primes the baseline, as session.start() did for the counters.
    vmstat.next();
    // Quitting drops the receiver at once; without this the sampler would learn of it only at
    // its next send, up to `delay` later.
    let hung_up = events.clone();
    let amounts = if session.accumulated {
        Amounts::Accumulated
    } else {
        Amounts::Current
    };
    let mut sampler = Sampler {
        vmstat,
        amounts,
        on_screen: Vec::new(),
        commands,
        events,
    };
    let stop = async move { hung_up.closed().await };
    // The sampler reports no errors of its own: a failed refresh is an event.
    let _ = runner::run(&mut session, delay, &mut sampler, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Scope, SourceChoice, SourceKind};
    use crate::view::ioprio::{IOPRIO_CLASS_SHIFT, IOPRIO_WHO_PROCESS};

    /// This process, read through /proc: a real session that needs no privileges.
    fn own_session() -> Session {
        let scope = Scope {
            pids: [std::process::id()].into(),
            ..Scope::default()
        };
        let mut session = Session::open(&SourceChoice::Given(vec![SourceKind::Procfs]), &scope)
            .expect("a procfs session of this process");
        session.start().expect("the first sample");
        session
    }

    /// The next refresh the sampler sends, within `timeout`.
    fn next_refresh(events: &mut UnboundedReceiver<SamplerEvent>, timeout: Duration) -> Refresh {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match events.try_recv() {
                Ok(SamplerEvent::Refresh(r)) => return *r,
                Ok(_) => {}
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no refresh within {timeout:?}"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("the sampler stopped: {e}"),
            }
        }
    }

    #[test]
    fn the_sampler_thread_refreshes_takes_commands_and_stops_with_the_event_loop() {
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
        let sampler = SamplerThread::spawn(
            own_session(),
            Duration::from_millis(20),
            PathBuf::from("/proc"),
            commands_rx,
            events_tx,
        )
        .expect("starting the sampler");
        let first = next_refresh(&mut events, Duration::from_secs(5));
        assert!(!first.processes);
        assert_eq!(first.totals.len(), 1, "one total per view");
        commands
            .send(SamplerCommand::Rows {
                processes: true,
                containers: false,
                amounts: Amounts::Current,
            })
            .expect("the sampler takes commands");
        // The refresh under way may have started before the command.
        let grouped = (0..3).any(|_| next_refresh(&mut events, Duration::from_secs(5)).processes);
        assert!(grouped, "the command reached the session");

        // The event loop goes: the sampler stops, its session dropped with it.
        drop(commands);
        let quitting = std::time::Instant::now();
        drop(sampler);
        assert!(
            quitting.elapsed() < STOP_TIMEOUT,
            "the sampler stopped in time"
        );
        let end = loop {
            if let Err(e) = events.try_recv() {
                break e;
            }
        };
        assert_eq!(
            end,
            tokio::sync::mpsc::error::TryRecvError::Disconnected,
            "the thread is gone, and its end of the events with it"
        );
    }

    #[test]
    fn average_since_start_is_a_rate_over_the_time_since_the_start() {
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
        let rows = |amounts| SamplerCommand::Rows {
            processes: false,
            containers: false,
            amounts,
        };
        // Sent before the thread starts, as the view does: the first refresh is -A's already.
        commands
            .send(rows(Amounts::AverageSinceStart))
            .expect("queued");
        let _sampler = SamplerThread::spawn(
            own_session(),
            Duration::from_millis(20),
            PathBuf::from("/proc"),
            commands_rx,
            events_tx,
        )
        .expect("starting the sampler");
        let intervals: Vec<(bool, f64)> = (0..4)
            .map(|_| {
                let r = next_refresh(&mut events, Duration::from_secs(5));
                (r.accumulated, r.snapshot.models[0].model.interval_s)
            })
            .collect();
        assert!(
            intervals.iter().all(|&(accumulated, _)| !accumulated),
            "rates: {intervals:?}"
        );
        assert!(
            intervals.windows(2).all(|w| w[1].1 > w[0].1) && intervals[3].1 >= 0.06,
            "over the time since the start, which grows: {intervals:?}"
        );
        commands
            .send(rows(Amounts::Accumulated))
            .expect("the sampler takes commands");
        let accumulated =
            (0..3).any(|_| next_refresh(&mut events, Duration::from_secs(5)).accumulated);
        assert!(accumulated, "amounts, not rates");
    }

    #[test]
    fn quitting_does_not_wait_for_the_next_refresh() {
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
        let sampler = SamplerThread::spawn(
            own_session(),
            Duration::from_secs(3600),
            PathBuf::from("/proc"),
            commands_rx,
            events_tx,
        )
        .expect("starting the sampler");
        // Only the receiver of its events goes: nothing to send for an hour tells the sampler.
        drop(events);
        let quitting = std::time::Instant::now();
        drop(sampler);
        assert!(quitting.elapsed() < Duration::from_secs(1));
        assert!(
            commands
                .send(SamplerCommand::Rows {
                    processes: false,
                    containers: false,
                    amounts: Amounts::Accumulated
                })
                .is_err(),
            "the sampler's end of the commands is gone with it"
        );
    }

    #[test]
    fn vmstat_pages_are_kib() {
        let text = "nr_free_pages 12\npgpgin 1000\npgpgout 2500\npswpin 0\n";
        assert_eq!(parse_vmstat(text), Some((1000, 2500)));
        assert_eq!(parse_vmstat("pgpgin 1\n"), None, "both counters are needed");
    }

    #[test]
    fn actual_io_from_two_readings() {
        let dir = std::env::temp_dir().join(format!("tui-vmstat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("vmstat"), "pgpgin 100\npgpgout 100\n").expect("writing vmstat");
        let mut v = Vmstat::new(&dir);
        assert_eq!(v.next(), None, "no rate from one reading");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.join("vmstat"), "pgpgin 100\npgpgout 110\n").expect("writing vmstat");
        let actual = v.next().expect("a rate from two readings");
        assert_eq!(actual.read_bytes_per_s, 0.0);
        assert!(actual.write_bytes_per_s > 0.0 && actual.write_bytes_per_s <= 10.0 * 1024.0 / 0.02);
        std::fs::remove_dir_all(&dir).expect("removing temp dir");
    }

    /// Sets the calling thread's I/O priority, as `ionice` would.
    fn set_own_ioprio(class: libc::c_long, level: libc::c_long) -> u32 {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        // SAFETY: ioprio_set takes three integers and touches no memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ioprio_set,
                IOPRIO_WHO_PROCESS,
                tid as libc::c_long,
                (class << IOPRIO_CLASS_SHIFT) | level,
            )
        };
        assert_eq!(r, 0, "ioprio_set: {}", std::io::Error::last_os_error());
        tid
    }

    #[test]
    fn io_priority_reads_back_what_was_set() {
        // A thread of its own, so that the rest of the tests keep their priority.
        let read = std::thread::spawn(|| {
            let tid = set_own_ioprio(2, 2);
            let be = ioprio(tid);
            set_own_ioprio(3, 0);
            let idle = ioprio(tid);
            // No class: the kernel derives one from the nice value, (nice + 20) / 5.
            set_own_ioprio(0, 0);
            // SAFETY: setpriority takes integers only; on Linux a TID names one thread.
            let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 10) };
            assert_eq!(r, 0, "setpriority: {}", std::io::Error::last_os_error());
            (be, idle, ioprio(tid))
        })
        .join()
        .expect("ioprio thread");
        assert_eq!(
            read,
            (
                Some(IoPrio::BestEffort(2)),
                Some(IoPrio::Idle),
                Some(IoPrio::BestEffort(6))
            )
        );
        assert_eq!(IoPrio::BestEffort(2).to_string(), "be/2");
        assert_eq!(IoPrio::Realtime(0).to_string(), "rt/0");
        assert_eq!(IoPrio::Idle.to_string(), "idle");
        assert_eq!(ioprio(i32::MAX as u32), None, "no such task");
    }
}
