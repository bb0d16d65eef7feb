//! The one tick loop every mode runs on: refresh the session at fixed deadlines and hand each
//! snapshot to a [`Consumer`] (batch or JSON lines, the exporter, the TUI's sampler), until the
//! consumer, its commands or a stop signal end it.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::session::{Session, Snapshot};
use crate::source::SourceError;

/// Whether the loop goes on after a refresh or a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// What a mode does with each refresh.
pub trait Consumer {
    /// What may reach the consumer between ticks (the TUI's sampler commands).
    type Command;

    /// One refresh, or why the sources failed it; `took` is how long the refresh took.
    fn refreshed(
        &mut self,
        session: &mut Session,
        refresh: Result<Snapshot, SourceError>,
        took: Duration,
    ) -> anyhow::Result<Flow>;

    /// The next command; None once no more can come, which ends the loop. None ever comes by
    /// default.
    fn command(&mut self) -> impl Future<Output = Option<Self::Command>> {
        std::future::pending()
    }

    fn on_command(
        &mut self,
        _session: &mut Session,
        _command: Self::Command,
    ) -> anyhow::Result<Flow> {
        Ok(Flow::Continue)
    }
}

/// Refreshes `session` every `delay` until the consumer says stop, its commands end, or `stop`
/// completes (a signal, the reader gone). Ticks keep absolute deadlines: a slow refresh delays
/// the next one, never shifts the ones after it, and missed ticks are skipped, not bunched.
pub async fn run<C: Consumer>(
    session: &mut Session,
    delay: Duration,
    consumer: &mut C,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval_at(Instant::now() + delay, delay);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        let flow = tokio::select! {
            _ = &mut stop => Flow::Stop,
            _ = ticks.tick() => {
                let started = std::time::Instant::now();
                let refresh = session.refresh();
                consumer.refreshed(session, refresh, started.elapsed())?
            }
            command = consumer.command() => match command {
                Some(command) => consumer.on_command(session, command)?,
                None => Flow::Stop,
            },
        };
        if flow == Flow::Stop {
            return Ok(());
        }
    }
}

/// How a replay ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Samples read from the recording, the baseline included.
    pub samples: u64,
    /// Refreshes handed to the consumer.
    pub refreshes: u64,
    /// Parts of the recording that could not be read (each said to `damaged`).
    pub damaged: u64,
}

/// Plays a recording (a session over a `record::ReplaySource`) through `consumer` as fast as
/// it takes the refreshes: no ticks, the recorded times are in the snapshots. The first
/// sample is the baseline, as live. Damage goes to `damaged` and the replay goes on with what
/// follows it; the recording's end ends the loop.
pub fn run_unpaced<C: Consumer>(
    session: &mut Session,
    consumer: &mut C,
    mut damaged: impl FnMut(&crate::record::RecordError),
) -> anyhow::Result<Replayed> {
    let mut done = Replayed::default();
    loop {
        let started = std::time::Instant::now();
        match session.refresh() {
            Ok(snapshot) => {
                done.samples += 1;
                if done.samples == 1 {
                    continue;
                }
                done.refreshes += 1;
                if consumer.refreshed(session, Ok(snapshot), started.elapsed())? == Flow::Stop {
                    return Ok(done);
                }
            }
            Err(SourceError::Replay(e)) if e.is_end() => return Ok(done),
            Err(SourceError::Replay(e)) => {
                done.damaged += 1;
                damaged(&e);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Scope, SourceChoice, SourceKind};

    /// Counts refreshes, stops after `until`, and records when each came.
    struct Counting {
        until: usize,
        at: Vec<std::time::Instant>,
    }

    impl Consumer for Counting {
        type Command = std::convert::Infallible;

        fn refreshed(
            &mut self,
            _: &mut Session,
            refresh: Result<Snapshot, SourceError>,
            _: Duration,
        ) -> anyhow::Result<Flow> {
            refresh.expect("a procfs refresh of this process");
            self.at.push(std::time::Instant::now());
            // A slow consumer: the deadlines must not move with it.
            std::thread::sleep(Duration::from_millis(30));
            Ok(if self.at.len() == self.until {
                Flow::Stop
            } else {
                Flow::Continue
            })
        }
    }

    fn own_session() -> Session {
        let scope = Scope {
            pids: [std::process::id()].into(),
            ..Scope::default()
        };
        Session::open(&SourceChoice::Given(vec![SourceKind::Procfs]), &scope)
            .expect("a procfs session of this process")
    }

    #[test]
    fn ticks_keep_their_deadlines_whatever_the_consumer_takes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let mut session = own_session();
        let mut consumer = Counting {
            until: 10,
            at: Vec::new(),
        };
        let started = std::time::Instant::now();
        let delay = Duration::from_millis(50);
        runtime
            .block_on(run(
                &mut session,
                delay,
                &mut consumer,
                std::future::pending(),
            ))
            .expect("the loop");
        // Drifting by the 30 ms each refresh takes would end after 800 ms or more.
        let took = consumer.at[9].duration_since(started);
        assert!(
            took >= delay * 10 && took < delay * 10 + Duration::from_millis(250),
            "ten ticks of 50 ms took {took:?}"
        );
    }

    #[test]
    fn stop_ends_the_loop_between_ticks() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let mut session = own_session();
        let mut consumer = Counting {
            until: usize::MAX,
            at: Vec::new(),
        };
        let started = std::time::Instant::now();
        runtime
            .block_on(run(
                &mut session,
                Duration::from_secs(3600),
                &mut consumer,
                async { tokio::time::sleep(Duration::from_millis(20)).await },
            ))
            .expect("the loop");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(consumer.at.is_empty());
    }
}
