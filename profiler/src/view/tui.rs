//! Full-screen view, iotop-style. One event loop owns the [`state::ViewState`]; the sampler
//! and keyboard threads send it messages, so a key is drawn while a refresh is still being
//! taken; drawing is a pure function of the last refresh and that state. The terminal is given
//! back on quit, on SIGINT/SIGTERM/SIGHUP and on panic.

mod effects;
pub(crate) mod render;
pub use render::KEYS;
pub(crate) mod replay;
pub(crate) mod sampler;
pub(crate) mod state;
#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Stdout};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{Event as TermEvent, KeyEventKind};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use crate::history::Timeline;
use crate::session::Session;
use crate::settings::Settings;
use crate::startup::SignalRuntime;
use crate::users::UserNames;
use crate::view::lookup::Lookup;
use crate::view::ViewOptions;
use sampler::{Refresh, SamplerCommand, SamplerEvent, SamplerThread};
use state::{Action, Geometry, Sources, ViewState};

/// Runs the full-screen view until the user quits, refreshing every `delay`.
pub fn run(
    session: Session,
    view: ViewOptions,
    settings: Settings,
    delay: Duration,
    signals: SignalRuntime,
) -> anyhow::Result<()> {
    show(session, view, settings, Feed::Live(delay), signals)
}

/// Runs the full-screen view over a recording (`session` a replay, for its description and
/// settings), on its first refresh until a key moves it (see `replay`).
pub fn replay(
    session: Session,
    timeline: Timeline,
    view: ViewOptions,
    settings: Settings,
    signals: SignalRuntime,
) -> anyhow::Result<()> {
    show(session, view, settings, Feed::Replay(timeline), signals)
}

/// Where refreshes come from: the session sampled every interval, or a recording stepped
/// through by keys.
enum Feed {
    Live(Duration),
    Replay(Timeline),
}

fn show(
    mut session: Session,
    view: ViewOptions,
    settings: Settings,
    feed: Feed,
    signals: SignalRuntime,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("the full-screen view needs a terminal on stdout: use -b for text output");
    }
    let sources = Sources {
        kinds: session.kinds(),
        // What the batch view says on lines of their own: sources that miss exited tasks.
        line: std::iter::once(session.source_line())
            .chain(
                session
                    .misses_exits()
                    .into_iter()
                    .map(|(kind, why)| format!("{kind}: {why}")),
            )
            .collect::<Vec<_>>()
            .join("; "),
        unavailable: session.unavailable(),
    };
    // Whoever opened the session, the rows are what the view asks for from the start.
    session.group_containers = view.by_container;
    let mut users = UserNames::default();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let settings = Settings {
        processes: session.model_options.processes,
        ..settings
    };
    let amounts = settings.amounts;
    let mut state = ViewState::new(sources, view, session.model_options.processes).with_settings(
        settings,
        crate::config::default_path(),
        no_color,
    );
    colours_asked(&state);
    if !state.view.uids.is_empty() {
        state.user_label = Some(
            state
                .view
                .uids
                .iter()
                .map(|&u| users.name(u).to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    if let Feed::Replay(timeline) = &feed {
        state.replay = Some(replay::Replay {
            at: 1,
            count: timeline.refreshes(),
        });
    } else {
        session.start().context("taking the first sample")?;
    }

    let (sampler_tx, sampler_rx) = mpsc::unbounded_channel();
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    // Taken before the first refresh: the session sums since the start for -a and -A alike.
    let _ = command_tx.send(SamplerCommand::Rows {
        processes: state.settings.processes,
        containers: state.view.by_container,
        amounts,
    });
    // Declared first, dropped last: the event loop's ends of the channels are gone by then, so
    // the sampler stops, and the session is dropped before the process exits, whether the loop
    // returned or panicked.
    let _sampler = match feed {
        Feed::Live(delay) => SamplerThread::spawn(
            session,
            delay,
            PathBuf::from("/proc"),
            command_rx,
            sampler_tx,
        )?,
        Feed::Replay(timeline) => {
            SamplerThread::spawn_replay(session, timeline, command_rx, sampler_tx)?
        }
    };
    let SignalRuntime {
        runtime,
        sigint,
        sigterm,
    } = signals;
    runtime.block_on(async move {
        let mut terminal = TerminalGuard::enter()?;
        let (key_tx, key_rx) = mpsc::unbounded_channel();
        let keyboard = spawn_keyboard(key_tx)?;
        let mut app = App {
            state,
            current: None,
            pending: None,
            users,
            lookup: Lookup::default(),
            geometry: Geometry::default(),
            on_screen: Vec::new(),
            commands: command_tx,
            redraw: false,
            delayacct: PathBuf::from(DELAYACCT),
        };
        let result = app
            .run(&mut terminal, key_rx, sampler_rx, [sigint, sigterm])
            .await;
        // The receivers are gone, which ends the keyboard thread within one poll; wait for
        // it, so that it reads nothing more once the shell has the terminal back.
        drop(app);
        let _ = keyboard.join();
        drop(terminal);
        result
    })
}

/// Everything the event loop owns.
struct App {
    state: ViewState,
    /// The refresh on screen.
    current: Option<Refresh>,
    /// The newest refresh while frozen.
    pending: Option<Refresh>,
    users: UserNames,
    /// The table as last drawn, which the scrolling keys move through.
    geometry: Geometry,
    /// Tasks whose priority the sampler was last asked for.
    on_screen: Vec<u32>,
    commands: UnboundedSender<SamplerCommand>,
    /// Command lines for `c`.
    lookup: Lookup,
    /// Ctrl-L: clear the terminal before the next frame.
    redraw: bool,
    /// `kernel.task_delayacct`, for Ctrl-T.
    delayacct: PathBuf,
}

const DELAYACCT: &str = "/proc/sys/kernel/task_delayacct";

enum Flow {
    Continue,
    Quit,
}

impl App {
    async fn run(
        &mut self,
        terminal: &mut TerminalGuard,
        mut keys: UnboundedReceiver<KeyboardEvent>,
        mut samples: UnboundedReceiver<SamplerEvent>,
        [mut sigint, mut sigterm]: [Signal; 2],
    ) -> anyhow::Result<()> {
        let mut sighup = signal(SignalKind::hangup())?;
        loop {
            if std::mem::take(&mut self.redraw) {
                terminal.terminal.clear()?;
            }
            let (mut geometry, mut ids) = terminal.draw(self.current.as_ref(), &self.state)?;
            // Command lines are read for the rows drawn; new ones are drawn at once.
            if self.look_up_cmdlines(&ids) {
                (geometry, ids) = terminal.draw(self.current.as_ref(), &self.state)?;
            }
            self.geometry = geometry;
            self.sync_prio(ids);
            // One message wakes the loop; whatever else queued meanwhile is taken before the
            // next draw, so a burst of keys or of refreshes costs one frame. Keys come before
            // refreshes: taking a refresh in is work a key need not wait for.
            let flow = tokio::select! {
                biased;
                _ = sigint.recv() => Flow::Quit,
                _ = sigterm.recv() => Flow::Quit,
                _ = sighup.recv() => Flow::Quit,
                key = keys.recv() => match key {
                    Some(k) => self.on_keyboard(k)?,
                    None => anyhow::bail!("the keyboard reader stopped"),
                },
                sample = samples.recv() => match sample {
                    Some(s) => self.on_sample(s),
                    None => anyhow::bail!("the sampler stopped"),
                },
            };
            if let Flow::Quit = flow {
                return Ok(());
            }
            loop {
                let flow = if let Ok(k) = keys.try_recv() {
                    self.on_keyboard(k)?
                } else if let Ok(s) = samples.try_recv() {
                    self.on_sample(s)
                } else {
                    break;
                };
                if let Flow::Quit = flow {
                    return Ok(());
                }
            }
        }
    }

    fn on_keyboard(&mut self, event: KeyboardEvent) -> anyhow::Result<Flow> {
        let event = event.context("reading the keyboard")?;
        let TermEvent::Key(key) = event else {
            return Ok(Flow::Continue);
        };
        if key.kind == KeyEventKind::Release {
            return Ok(Flow::Continue);
        }
        let was_frozen = self.state.frozen;
        match self.state.on_key(key, self.geometry) {
            Action::Quit => return Ok(Flow::Quit),
            Action::Sampler(command) => {
                // The sampler outlives the loop; a failed send means it is gone, which the
                // loop learns from its channel.
                let _ = self.commands.send(command);
            }
            Action::Save => {
                let status =
                    effects::save_settings(self.state.config_path.as_deref(), &self.state.settings);
                self.state.status = Some(status);
            }
            Action::Ionice { id, process, prio } => {
                let status = effects::ionice(Path::new("/proc"), id, process, prio);
                self.state.status = Some(status);
                // The PRIO column shows what the kernel has now.
                let _ = self
                    .commands
                    .send(SamplerCommand::Prio(self.on_screen.clone()));
            }
            Action::DelayAcct => {
                self.state.status = Some(effects::toggle_delayacct(&self.delayacct));
            }
            Action::Redraw => self.redraw = true,
            Action::None => {}
        }
        colours_asked(&self.state);
        if was_frozen && !self.state.frozen {
            self.state.behind = 0;
            if let Some(r) = self.pending.take() {
                self.show(r);
            }
        }
        Ok(Flow::Continue)
    }

    fn on_sample(&mut self, event: SamplerEvent) -> Flow {
        match event {
            SamplerEvent::Refresh(r) if self.state.frozen => {
                self.state.behind += 1;
                self.pending = Some(*r);
            }
            SamplerEvent::Refresh(r) => self.show(*r),
            SamplerEvent::Failed(e) => self.state.error = Some(e),
            SamplerEvent::Prio(p) => self.state.prio = p,
        }
        Flow::Continue
    }

    fn show(&mut self, refresh: Refresh) {
        // Names are looked up here, once per uid, so that drawing reads no files.
        for view in &refresh.snapshot.models {
            for uid in view.model.rows.iter().filter_map(|r| r.uid) {
                if !self.state.users.contains_key(&uid) {
                    let name = self.users.name(uid).to_string();
                    self.state.users.insert(uid, name);
                }
            }
        }
        // Command lines are kept for the tasks still there, not for every task ever drawn.
        let live: std::collections::HashSet<(u32, Option<u64>)> = refresh
            .snapshot
            .models
            .iter()
            .flat_map(|v| v.model.rows.iter().map(|r| (r.pid, r.start_time)))
            .collect();
        self.state.cmdlines.retain(|key, _| live.contains(key));
        self.lookup.forget_unused();
        if let (Some(replay), Some((at, count))) = (self.state.replay.as_mut(), refresh.replay) {
            replay.at = at;
            replay.count = count;
        }
        self.state.record(&refresh);
        self.current = Some(refresh);
    }

    /// With `c`, reads the command lines of the rows drawn that have none yet; true if it did.
    fn look_up_cmdlines(&mut self, ids: &[u32]) -> bool {
        let Some(refresh) = self
            .current
            .as_ref()
            .filter(|_| self.state.settings.full_command)
        else {
            return false;
        };
        let ids: std::collections::HashSet<u32> = ids.iter().copied().collect();
        let mut added = false;
        for view in &refresh.snapshot.models {
            for row in view.model.rows.iter().filter(|r| ids.contains(&r.id())) {
                let key = (row.pid, row.start_time);
                if !self.state.cmdlines.contains_key(&key) {
                    let line = self.lookup.command_line(row);
                    self.state.cmdlines.insert(key, line);
                    added = true;
                }
            }
        }
        added
    }

    /// Asks the sampler for the priorities of the tasks on screen when they changed.
    fn sync_prio(&mut self, ids: Vec<u32>) {
        if ids != self.on_screen {
            self.on_screen.clone_from(&ids);
            let _ = self.commands.send(SamplerCommand::Prio(ids));
        }
    }
}

/// crossterm leaves colours out under `NO_COLOR` by itself; `--color` and `l` ask for them
/// anyway.
fn colours_asked(state: &ViewState) {
    if state.colored() {
        crossterm::style::Colored::set_ansi_color_disabled(false);
    }
}

type KeyboardEvent = std::io::Result<TermEvent>;

/// Reads the terminal on a thread of its own (crossterm's reader blocks) and ends once the
/// event loop has dropped its receiver.
fn spawn_keyboard(
    tx: UnboundedSender<KeyboardEvent>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let reader = move || {
        while !tx.is_closed() {
            // Wait on the terminal ourselves: on a hung-up terminal crossterm's poll spins on
            // reads that return 0 bytes, so it is only called when input is really there.
            match wait_for_input(Duration::from_millis(50)) {
                Readiness::None => continue,
                Readiness::HungUp => {
                    let _ = tx.send(Err(std::io::Error::other("the terminal was closed")));
                    return;
                }
                Readiness::Ready => {}
            }
            // One read of the terminal can hold several keys (typed fast, pasted, sent by
            // tmux at once): crossterm keeps the rest, which the terminal no longer signals, so
            // every event it has is taken before waiting on the terminal again.
            loop {
                match crossterm::event::poll(Duration::ZERO) {
                    Ok(false) => break,
                    Ok(true) => {
                        let event = crossterm::event::read();
                        let failed = event.is_err();
                        if tx.send(event).is_err() || failed {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        }
    };
    std::thread::Builder::new()
        .name("keyboard".into())
        .spawn(reader)
        .context("starting the keyboard reader")
}

/// Whether the terminal has something to read.
enum Readiness {
    None,
    Ready,
    /// The terminal went away (window closed, ssh dropped); no SIGHUP need arrive when the
    /// profiler is not the session leader.
    HungUp,
}

fn wait_for_input(timeout: Duration) -> Readiness {
    let mut pfd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; poll only writes `revents`.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    if n <= 0 {
        return Readiness::None;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Readiness::HungUp
    } else {
        Readiness::Ready
    }
}

type PanicHook = Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Raw mode and the alternate screen, given back on drop and by the panic hook.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Option<PanicHook>,
}

/// Leaves raw mode and the alternate screen. Safe to call twice: each step is idempotent.
fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        let previous: PanicHook = Arc::from(std::panic::take_hook());
        let chained = Arc::clone(&previous);
        // A panic message printed on the alternate screen in raw mode would be lost.
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            chained(info);
        }));
        let mut guard = TerminalGuard {
            terminal: Terminal::new(CrosstermBackend::new(std::io::stdout()))?,
            previous_hook: Some(previous),
        };
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        crossterm::execute!(std::io::stdout(), EnterAlternateScreen)
            .context("entering the alternate screen")?;
        guard.terminal.hide_cursor()?;
        guard.terminal.clear()?;
        Ok(guard)
    }

    /// Draws, and returns how the table was laid out (see [`render::draw`]).
    fn draw(
        &mut self,
        refresh: Option<&Refresh>,
        state: &ViewState,
    ) -> anyhow::Result<(Geometry, Vec<u32>)> {
        let mut laid_out = Default::default();
        self.terminal
            .draw(|frame| laid_out = render::draw(frame, refresh, state))?;
        Ok(laid_out)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // The hook cannot be swapped while unwinding; ours stays, and only restores again.
        if let Some(previous) = self
            .previous_hook
            .take()
            .filter(|_| !std::thread::panicking())
        {
            let _ = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}
