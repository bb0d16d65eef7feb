//! `profiler replay FILE --openmetrics`: a recording as OpenMetrics text with a timestamp on
//! every sample: the series `profiler serve` would have exported at each recorded refresh, in
//! the same names and labels, for `promtool tsdb create-blocks-from openmetrics` to load into
//! Prometheus. Families are not interleaved and each series' samples are in time order, as
//! the format asks.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::exposition::{self, Frame};
use super::select;
use super::series::Tracker;
use crate::container::label_matches;
use crate::counter::PerCounter;
use crate::model::Row;
use crate::runner::{Consumer, Flow};
use crate::session::{Session, Snapshot};
use crate::source::SourceError;
use crate::users::UserNames;

/// One metric family: its HELP/TYPE/UNIT lines, then each series (the sample name and labels)
/// with its `value timestamp` points, in the order they were first seen.
#[derive(Default)]
struct Family {
    header: Vec<String>,
    series: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
}

/// Collects the series of every refresh of a replay, then writes them out at once.
pub struct Backfill {
    per_thread: bool,
    uids: Vec<u32>,
    /// Only rows in containers matching one of these (as `--container` takes them); empty: all.
    containers: Vec<String>,
    tracker: Tracker,
    users: UserNames,
    families: Vec<(String, Family)>,
    index: HashMap<String, usize>,
    /// Stop after this many refreshes (`-n`).
    pub iterations: Option<u64>,
    pub refreshes: u64,
}

/// Seconds since the epoch with milliseconds, as OpenMetrics timestamps are written.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

impl Backfill {
    /// `measurable`: the counters the recorded source measured; `top`, `per_thread` and `uids`
    /// as `profiler serve` takes them, `containers` as `--container`.
    pub fn new(
        top: usize,
        per_thread: bool,
        uids: Vec<u32>,
        containers: Vec<String>,
        measurable: PerCounter<bool>,
    ) -> Self {
        Backfill {
            per_thread,
            uids,
            containers,
            tracker: Tracker::new(top, measurable),
            users: UserNames::default(),
            families: Vec::new(),
            index: HashMap::new(),
            iterations: None,
            refreshes: 0,
        }
    }

    /// Adds one refresh's series at `time`.
    pub fn add(&mut self, snapshot: &Snapshot) {
        let Some(view) = snapshot.models.first() else {
            return;
        };
        let in_containers: Vec<Row>;
        let rows = if self.containers.is_empty() {
            &view.model.rows
        } else {
            in_containers = view
                .model
                .rows
                .iter()
                .filter(|r| {
                    r.container
                        .as_ref()
                        .is_some_and(|l| self.containers.iter().any(|f| label_matches(l, f)))
                })
                .cloned()
                .collect();
            &in_containers
        };
        let (tasks, other, _) = select(
            &mut self.tracker,
            &mut self.users,
            &self.uids,
            self.per_thread,
            rows,
        );
        let text = exposition::io_openmetrics(Frame {
            per_thread: self.per_thread,
            tasks,
            other,
            ..Frame::default()
        });
        self.add_text(&text, snapshot.time);
        self.refreshes += 1;
    }

    /// Files the lines of one exposition under their families and series.
    fn add_text(&mut self, text: &str, time: SystemTime) {
        let at = timestamp(time);
        let mut family: Option<usize> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.split(' ').nth(1).unwrap_or_default().to_string();
                let i = *self.index.entry(name.clone()).or_insert_with(|| {
                    self.families.push((name, Family::default()));
                    self.families.len() - 1
                });
                let f = &mut self.families[i].1;
                if f.series.is_empty() && !f.header.iter().any(|h| h == line) {
                    f.header.push(line.to_string());
                }
                family = Some(i);
                continue;
            }
            let (Some(i), Some((series, value))) = (family, line.rsplit_once(' ')) else {
                continue;
            };
            let f = &mut self.families[i].1;
            let s = *f.index.entry(series.to_string()).or_insert_with(|| {
                f.series.push((series.to_string(), Vec::new()));
                f.series.len() - 1
            });
            f.series[s].1.push(format!("{value} {at}"));
        }
    }

    /// Every family, each series' points in time order, then `# EOF`.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        for (_, f) in &self.families {
            for h in &f.header {
                writeln!(out, "{h}")?;
            }
            for (series, points) in &f.series {
                for p in points {
                    writeln!(out, "{series} {p}")?;
                }
            }
        }
        writeln!(out, "# EOF")
    }
}

impl Consumer for Backfill {
    type Command = std::convert::Infallible;

    fn refreshed(
        &mut self,
        _: &mut Session,
        refresh: Result<Snapshot, SourceError>,
        _: Duration,
    ) -> anyhow::Result<Flow> {
        self.add(&refresh?);
        Ok(if self.iterations.is_some_and(|n| self.refreshes >= n) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_not_interleaved_and_series_are_in_time_order() {
        let mut b = Backfill::new(
            20,
            false,
            Vec::new(),
            Vec::new(),
            PerCounter::from_fn(|_| true),
        );
        let one = "# HELP a_bytes A.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\n\
                   a_bytes_total{pid=\"1\"} 10\na_bytes_total{pid=\"other\"} 0\n\
                   # HELP b B.\n# TYPE b counter\nb_total{pid=\"1\"} 3\n";
        let two = "# HELP a_bytes A.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\n\
                   a_bytes_total{pid=\"2\"} 5\na_bytes_total{pid=\"1\"} 12\n\
                   # HELP b B.\n# TYPE b counter\nb_total{pid=\"1\"} 4\n";
        b.add_text(one, UNIX_EPOCH + Duration::from_millis(1_000_250));
        b.add_text(two, UNIX_EPOCH + Duration::from_millis(1_010_250));
        let mut out = Vec::new();
        b.write(&mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "# HELP a_bytes A.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\n\
             a_bytes_total{pid=\"1\"} 10 1000.250\na_bytes_total{pid=\"1\"} 12 1010.250\n\
             a_bytes_total{pid=\"other\"} 0 1000.250\n\
             a_bytes_total{pid=\"2\"} 5 1010.250\n\
             # HELP b B.\n# TYPE b counter\n\
             b_total{pid=\"1\"} 3 1000.250\nb_total{pid=\"1\"} 4 1010.250\n# EOF\n"
        );
    }
}
