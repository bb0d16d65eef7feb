//! `profiler serve`: a Prometheus exporter. The session samples on the main thread at its own
//! interval and each sample is rendered once into exposition text, handed to the HTTP thread
//! through a watch channel: a scrape never waits on the kernel, and a slow scrape never delays
//! a sample.

mod backfill;
pub(crate) mod exposition;
mod http;
pub(crate) mod series;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::counter::{Counter, PerCounter};
use crate::model::{ModelOptions, Row};
use crate::runner::{self, Consumer, Flow};
use crate::session::{Session, Snapshot};
use crate::source::{SourceChoice, SourceError};
use crate::startup::{self, chain, usage_error, SignalRuntime};
use crate::users::UserNames;
pub use backfill::Backfill;
use exposition::{exported_name, Frame, SelfMetrics, TaskSeries};
use series::Tracker;

/// What `profiler serve` was asked for (see the command line for each option's meaning).
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub source: SourceChoice,
    pub delay: Duration,
    pub pids: Vec<u32>,
    pub users: Vec<String>,
    pub per_thread: bool,
    pub top: usize,
    pub token_file: Option<PathBuf>,
}

/// Why `--token-file` cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("--token-file {}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--token-file {}: the file must hold one token, without spaces (e.g. `openssl rand \
         -hex 32 > {}`)",
        path.display(),
        path.display()
    )]
    NotOneToken { path: PathBuf },
}

/// The token in `path`, or why it cannot serve as one. Says once if others may read it.
fn read_token(path: &Path) -> Result<Arc<str>, TokenError> {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(TokenError::NotOneToken {
            path: path.to_path_buf(),
        });
    }
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
        eprintln!(
            "profiler: warning: other users can read the token in {}: `chmod 600` it",
            path.display()
        );
    }
    Ok(Arc::from(token))
}

/// Runs the exporter until SIGINT or SIGTERM.
pub fn main(args: &Options) -> ExitCode {
    if args.source.compares() {
        return usage_error("serve exports one source at a time: give --source one name");
    }
    let (scope, uids) = match startup::scope_and_users(&args.pids, &args.users) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    let token = match args.token_file.as_deref().map(read_token).transpose() {
        Ok(token) => token,
        Err(e) => return usage_error(&chain(&e)),
    };
    // Before the source: a port in use should not wait for the eBPF probes to load.
    let listener = match std::net::TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("profiler: listening on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    if !args.listen.ip().is_loopback() && token.is_none() {
        eprintln!("profiler: warning: {}", exposure_warning(args.listen));
    }
    let (mut session, signals) = match startup::open(&args.source, &scope) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    session.model_options = ModelOptions {
        processes: !args.per_thread,
    };
    match run(args, session, uids, token, listener, signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("profiler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What listening beyond loopback exposes, and how to narrow it.
pub fn exposure_warning(listen: SocketAddr) -> String {
    format!(
        "listening on {listen}, not only loopback: anyone who can reach this port reads every \
         process's command, user and I/O, which the kernel would not show them; give \
         --token-file, or listen on 127.0.0.1 behind a firewall rule that only lets the \
         scraper in"
    )
}

/// The series of one refresh: the top tasks of `rows` (of the users `uids`, if any) with their
/// values, `other`, and how many rows were in scope.
pub(crate) fn select(
    tracker: &mut Tracker,
    users: &mut UserNames,
    uids: &[u32],
    per_thread: bool,
    rows: &[Row],
) -> (Vec<TaskSeries>, series::Values, usize) {
    let rows: Vec<Row> = rows
        .iter()
        .filter(|r| uids.is_empty() || r.uid.is_some_and(|u| uids.contains(&u)))
        .cloned()
        .collect();
    let selection = tracker.update(&rows);
    let tasks = selection
        .top
        .iter()
        .map(|(row, values)| TaskSeries {
            pid: row.pid,
            tid: if per_thread { row.tid } else { None },
            command: row.command.clone(),
            user: row
                .uid
                .map(|u| users.name(u).to_string())
                .unwrap_or_default(),
            container: row.container.clone().unwrap_or_default(),
            values: *values,
        })
        .collect();
    (tasks, selection.other, rows.len())
}

/// The sampler's state between samples: the series, the user names, the self-metrics.
struct Exporter {
    uids: Vec<u32>,
    tracker: Tracker,
    users: UserNames,
    /// What the next exposition shows; after a failed sample, the last good series.
    frame: Frame,
    last_ok: Instant,
    last_error: Option<String>,
    stale_after: Duration,
    token: Option<Arc<str>>,
}

impl Exporter {
    fn new(args: &Options, session: &Session, uids: Vec<u32>, token: Option<Arc<str>>) -> Exporter {
        let unavailable: Vec<(Counter, String)> = session
            .unavailable()
            .into_iter()
            .flat_map(|(_, u)| u.counters.iter().map(move |&c| (c, u.reason.clone())))
            .collect();
        let measurable = PerCounter::from_fn(|c| unavailable.iter().all(|(u, _)| *u != c));
        Exporter {
            uids,
            tracker: Tracker::new(args.top, measurable),
            users: UserNames::default(),
            frame: Frame {
                per_thread: args.per_thread,
                meta: SelfMetrics {
                    source: session.source_name(),
                    fallbacks: session
                        .fallbacks
                        .iter()
                        .map(|f| (f.kind.name().to_string(), f.error.to_string()))
                        .collect(),
                    unavailable: unavailable
                        .into_iter()
                        .map(|(c, why)| (exported_name(c), why))
                        .collect(),
                    misses_exits: session
                        .misses_exits()
                        .into_iter()
                        .next()
                        .map(|(_, why)| why),
                    interval_s: args.delay.as_secs_f64(),
                    ..SelfMetrics::default()
                },
                ..Frame::default()
            },
            last_ok: Instant::now(),
            last_error: None,
            // Three missed samples; at least 10 s, so that a short -d on a loaded machine
            // does not flap.
            stale_after: (args.delay * 3).max(Duration::from_secs(10)),
            token,
        }
    }

    fn sampled(&mut self, snapshot: &Snapshot, took: Duration) {
        let Some(view) = snapshot.models.first() else {
            return;
        };
        let model = &view.model;
        let (tasks, other, observed) = select(
            &mut self.tracker,
            &mut self.users,
            &self.uids,
            self.frame.per_thread,
            &model.rows,
        );
        self.frame.tasks = tasks;
        self.frame.other = other;
        let meta = &mut self.frame.meta;
        meta.samples += 1;
        meta.last_sample_duration_s = took.as_secs_f64();
        meta.lost_events = model.lost_events;
        meta.skipped_tasks += model.skipped_tasks;
        meta.observed_tasks = observed as u64;
        self.last_ok = Instant::now();
        self.last_error = None;
    }

    fn failed(&mut self, e: &SourceError, took: Duration) {
        let message = e.to_string();
        // Once per distinct error, not once per interval.
        if self.last_error.as_deref() != Some(message.as_str()) {
            log::warn!("sample failed (the last good values stay exported): {message}");
        }
        self.frame.meta.sample_errors += 1;
        self.frame.meta.last_sample_duration_s = took.as_secs_f64();
        self.last_error = Some(message);
    }

    fn publish(&self) -> Arc<http::Published> {
        Arc::new(http::Published {
            exposition: exposition::render(self.frame.clone()),
            source: self.frame.meta.source.clone(),
            last_ok: self.last_ok,
            last_error: self.last_error.clone(),
            stale_after: self.stale_after,
            token: self.token.clone(),
        })
    }

    fn sample(&mut self, session: &mut Session) {
        let started = Instant::now();
        let refresh = session.refresh();
        self.refreshed(refresh, started.elapsed());
    }

    fn refreshed(&mut self, refresh: Result<Snapshot, SourceError>, took: Duration) {
        match refresh {
            Ok(snapshot) => self.sampled(&snapshot, took),
            Err(e) => self.failed(&e, took),
        }
    }
}

/// The exporter as the tick loop's consumer: each sample is published to the HTTP thread.
struct Publisher {
    exporter: Exporter,
    publish: tokio::sync::watch::Sender<Arc<http::Published>>,
    server: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Consumer for Publisher {
    type Command = std::convert::Infallible;

    fn refreshed(
        &mut self,
        _: &mut Session,
        refresh: Result<Snapshot, SourceError>,
        took: Duration,
    ) -> anyhow::Result<Flow> {
        if self.server.is_finished() {
            anyhow::bail!("the HTTP server stopped");
        }
        self.exporter.refreshed(refresh, took);
        // Nobody listening only happens once the HTTP thread is gone, checked above.
        let _ = self.publish.send(self.exporter.publish());
        Ok(Flow::Continue)
    }
}

fn run(
    args: &Options,
    mut session: Session,
    uids: Vec<u32>,
    token: Option<Arc<str>>,
    listener: std::net::TcpListener,
    signals: SignalRuntime,
) -> anyhow::Result<()> {
    startup::announce(&session);
    let mut exporter = Exporter::new(args, &session, uids, token);
    // The first sample is the baseline: totals, and no deltas yet.
    exporter.sample(&mut session);
    let (publish, published) = tokio::sync::watch::channel(exporter.publish());
    // The port the kernel chose, for `--listen ADDR:0`.
    let bound = listener.local_addr().unwrap_or(args.listen);
    let server = http::spawn(listener, published).context("starting the HTTP thread")?;
    eprintln!("serving http://{bound}/metrics");

    let SignalRuntime {
        runtime,
        mut sigint,
        mut sigterm,
    } = signals;
    let mut publisher = Publisher {
        exporter,
        publish,
        server,
    };
    let result = runtime.block_on(runner::run(
        &mut session,
        args.delay,
        &mut publisher,
        SignalRuntime::stopped(&mut sigint, &mut sigterm),
    ));
    // Dropping the session detaches the eBPF programs and closes the netlink sockets.
    drop(session);
    if result.is_err() && publisher.server.is_finished() {
        if let Ok(Err(e)) = publisher.server.join() {
            return Err(e.context("HTTP server"));
        }
    }
    result
}
