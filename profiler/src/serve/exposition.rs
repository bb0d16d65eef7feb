//! The exposition text of one refresh, built with prometheus-client in both formats Prometheus
//! reads: OpenMetrics, and the older text format (0.0.4) for clients that do not ask for it.
//! A pure function of a [`Frame`]; the names here are documented in README.md.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::series::Values;
use crate::counter::{Counter, Unit as CounterUnit};
use crate::sample::Command;

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The label values of the series that sums every task without a series of its own.
pub const OTHER: &str = "other";

/// The unit a counter is exported in, which the encoder appends to its name.
fn metric_unit(counter: Counter) -> Option<Unit> {
    match counter.unit() {
        CounterUnit::Bytes => Some(Unit::Bytes),
        CounterUnit::Calls => None,
        // Nanoseconds counted, seconds exported.
        CounterUnit::Nanoseconds => Some(Unit::Seconds),
    }
}

/// The name a counter is exported under, e.g. `profiler_write_chars_bytes_total`.
pub fn exported_name(counter: Counter) -> String {
    let name = counter.spec().metric;
    match metric_unit(counter) {
        Some(unit) => format!("{name}_{}_total", unit.as_str()),
        None => format!("{name}_total"),
    }
}

/// A task with a series of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSeries {
    pub pid: u32,
    /// Set with `--per-thread`.
    pub tid: Option<u32>,
    pub command: Command,
    pub user: String,
    pub container: String,
    pub values: Values,
}

/// What the exporter says about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelfMetrics {
    pub source: String,
    /// Sources tried before, with why they did not work.
    pub fallbacks: Vec<(String, String)>,
    /// Exported counter names the source cannot measure, with why.
    pub unavailable: Vec<(String, String)>,
    /// Why the source misses the I/O of tasks that exit between samples, if it does.
    pub misses_exits: Option<String>,
    pub samples: u64,
    pub sample_errors: u64,
    pub last_sample_duration_s: f64,
    pub interval_s: f64,
    pub lost_events: Option<u64>,
    pub skipped_tasks: u64,
    pub observed_tasks: u64,
}

/// Everything one exposition shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    pub per_thread: bool,
    pub tasks: Vec<TaskSeries>,
    pub other: Values,
    pub meta: SelfMetrics,
}

impl Frame {
    fn labels<'a>(
        &self,
        t: &'a TaskSeries,
        pid: &'a str,
        tid: &'a str,
    ) -> Vec<(&'static str, &'a str)> {
        let mut labels = vec![("pid", pid)];
        if self.per_thread {
            labels.push(("tid", tid));
        }
        labels.extend([
            ("command", t.command.as_str()),
            ("user", t.user.as_str()),
            ("container", t.container.as_str()),
        ]);
        labels
    }

    fn encode_io(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let other_labels: Vec<(&str, &str)> = if self.per_thread {
            vec![
                ("pid", OTHER),
                ("tid", OTHER),
                ("command", OTHER),
                ("user", ""),
                ("container", ""),
            ]
        } else {
            vec![
                ("pid", OTHER),
                ("command", OTHER),
                ("user", ""),
                ("container", ""),
            ]
        };
        for c in Counter::ALL {
            let measured =
                self.other[c].is_some() || self.tasks.iter().any(|t| t.values[c].is_some());
            if !measured {
                continue;
            }
            let (spec, unit) = (c.spec(), metric_unit(c));
            let mut metric = encoder.encode_descriptor(
                spec.metric,
                spec.help,
                unit.as_ref(),
                MetricType::Counter,
            )?;
            let encode = |metric: &mut prometheus_client::encoding::MetricEncoder,
                          labels: &Vec<(&str, &str)>,
                          v: u64| {
                let family = metric.encode_family(labels)?;
                if spec.unit == CounterUnit::Nanoseconds {
                    ConstCounter::new(v as f64 / 1e9).encode(family)
                } else {
                    ConstCounter::new(v).encode(family)
                }
            };
            for t in &self.tasks {
                let Some(v) = t.values[c] else { continue };
                let (pid, tid) = (
                    t.pid.to_string(),
                    t.tid.map(|t| t.to_string()).unwrap_or_default(),
                );
                encode(&mut metric, &self.labels(t, &pid, &tid), v)?;
            }
            if let Some(v) = self.other[c] {
                encode(&mut metric, &other_labels, v)?;
            }
        }
        Ok(())
    }

    fn encode_self(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.meta;
        encoder
            .encode_descriptor(
                "profiler_build",
                "The profiler's version",
                None,
                MetricType::Info,
            )?
            .encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        encoder
            .encode_descriptor(
                "profiler_source",
                "The source the counters come from",
                None,
                MetricType::Info,
            )?
            .encode_info(&[("source", m.source.as_str())])?;
        let mut fallback = encoder.encode_descriptor(
            "profiler_source_fallback",
            "A source tried before the one in use, and why it did not work",
            None,
            MetricType::Info,
        )?;
        for (source, reason) in &m.fallbacks {
            fallback.encode_info(&[("source", source.as_str()), ("reason", reason.as_str())])?;
        }
        let mut unavailable = encoder.encode_descriptor(
            "profiler_unmeasured_metric",
            "A metric the source cannot measure here (no series is exported for it), and why",
            None,
            MetricType::Info,
        )?;
        for (metric, reason) in &m.unavailable {
            unavailable.encode_info(&[("metric", metric.as_str()), ("reason", reason.as_str())])?;
        }
        let mut incomplete = encoder.encode_descriptor(
            "profiler_source_incomplete",
            "The source misses the last I/O of tasks that exit between two samples (no series, \
             `other` included, counts it), and why",
            None,
            MetricType::Info,
        )?;
        if let Some(reason) = &m.misses_exits {
            incomplete
                .encode_info(&[("source", m.source.as_str()), ("reason", reason.as_str())])?;
        }
        let counters: [(&str, &str, u64); 3] = [
            (
                "profiler_samples",
                "Samples taken from the source",
                m.samples,
            ),
            (
                "profiler_sample_errors",
                "Samples that failed (the last good values stay exported)",
                m.sample_errors,
            ),
            (
                "profiler_skipped_tasks",
                "Tasks the source could not read in a sample (vanished, unparsable)",
                m.skipped_tasks,
            ),
        ];
        for (name, help, v) in counters {
            ConstCounter::new(v).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }
        if let Some(lost) = m.lost_events {
            ConstCounter::new(lost).encode(encoder.encode_descriptor(
                "profiler_lost_events",
                "Events the source lost since the profiler started (eBPF map or ring buffer full, \
                 taskstats exit notifications dropped): their I/O is missing from the counters",
                None,
                MetricType::Counter,
            )?)?;
        }
        let seconds: [(&str, &str, f64); 2] = [
            (
                "profiler_sample_duration",
                "How long the last sample took to read",
                m.last_sample_duration_s,
            ),
            (
                "profiler_sample_interval",
                "Time between samples (-d)",
                m.interval_s,
            ),
        ];
        for (name, help, v) in seconds {
            ConstGauge::new(v).encode(encoder.encode_descriptor(
                name,
                help,
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?)?;
        }
        let tasks: [(&str, &str, u64); 2] = [
            (
                "profiler_observed_tasks",
                "Tasks (processes, or threads with --per-thread) in the last sample",
                m.observed_tasks,
            ),
            (
                "profiler_exported_tasks",
                "Tasks with a series of their own (--top); the rest are summed in pid=\"other\"",
                self.tasks.len() as u64,
            ),
        ];
        for (name, help, v) in tasks {
            ConstGauge::new(v as i64).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

impl Collector for Frame {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_io(&mut encoder)?;
        self.encode_self(&mut encoder)
    }
}

/// A frame's I/O families alone, in OpenMetrics (without the exporter's own metrics and
/// without `# EOF`): what a recorded refresh contributes to a backfill.
pub fn io_openmetrics(frame: Frame) -> String {
    #[derive(Debug)]
    struct Io(Frame);
    impl Collector for Io {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            self.0.encode_io(&mut encoder)
        }
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Io(frame)));
    let mut text = String::new();
    // Writing into a String cannot fail, nor can a collector that only formats numbers.
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("encoding into a String");
    text.truncate(text.trim_end_matches("# EOF\n").len());
    text
}

/// A frame rendered once in each format, so that scrapes only copy a pointer.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    pub openmetrics: bytes::Bytes,
    pub text: bytes::Bytes,
}

pub fn render(frame: Frame) -> Rendered {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(frame));
    let mut openmetrics = String::new();
    let mut text = String::new();
    // Writing into a String cannot fail, nor can a collector that only formats numbers.
    prometheus_client::encoding::text::encode(&mut openmetrics, &registry)
        .expect("encoding into a String");
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("encoding into a String");
    Rendered {
        openmetrics: openmetrics.into(),
        text: text.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(per_thread: bool) -> Frame {
        let mut values = Values::default();
        values[Counter::Wchar] = Some(4096);
        values[Counter::BlkioDelay] = Some(1_500_000_000);
        let mut other = Values::default();
        other[Counter::Wchar] = Some(10);
        Frame {
            per_thread,
            tasks: vec![TaskSeries {
                pid: 42,
                tid: per_thread.then_some(43),
                command: "a \"quoted\"\\name".into(),
                user: "root".into(),
                container: "docker:4f1c2d3e4f5a".into(),
                values,
            }],
            other,
            meta: SelfMetrics {
                source: "ebpf".into(),
                fallbacks: vec![(
                    "taskstats".into(),
                    "taskstats: no family\nsecond line".into(),
                )],
                unavailable: vec![(
                    exported_name(Counter::SwapinDelay),
                    "delay accounting is read through taskstats only".into(),
                )],
                misses_exits: Some("misses tasks that exit: no listener".into()),
                samples: 3,
                lost_events: Some(0),
                interval_s: 0.5,
                observed_tasks: 7,
                ..Default::default()
            },
        }
    }

    #[test]
    fn counters_have_units_labels_and_escaping() {
        let r = render(frame(false));
        let om = std::str::from_utf8(&r.openmetrics).expect("utf-8");
        assert!(
            om.contains("# TYPE profiler_write_chars_bytes counter\n"),
            "{om}"
        );
        assert!(
            om.contains("# UNIT profiler_write_chars_bytes bytes\n"),
            "{om}"
        );
        assert!(
            om.contains(
                "profiler_write_chars_bytes_total{pid=\"42\",command=\"a \\\"quoted\\\"\\\\name\",user=\"root\",container=\"docker:4f1c2d3e4f5a\"} 4096\n"
            ),
            "{om}"
        );
        assert!(
            om.contains("profiler_write_chars_bytes_total{pid=\"other\",command=\"other\",user=\"\",container=\"\"} 10\n"),
            "{om}"
        );
        assert!(
            om.contains("profiler_blkio_delay_seconds_total{pid=\"42\""),
            "{om}"
        );
        assert!(om.contains("} 1.5\n"), "nanoseconds become seconds: {om}");
        assert!(
            !om.contains("profiler_read_chars"),
            "unmeasured counters have no series: {om}"
        );
        assert!(
            om.contains("profiler_source_info{source=\"ebpf\"} 1\n"),
            "{om}"
        );
        assert!(
            om.contains("profiler_source_fallback_info{source=\"taskstats\",reason=\"taskstats: no family\\nsecond line\"} 1\n"),
            "{om}"
        );
        assert!(
            om.contains(
                "profiler_unmeasured_metric_info{metric=\"profiler_swapin_delay_seconds_total\""
            ),
            "{om}"
        );
        assert!(
            om.contains("profiler_source_incomplete_info{source=\"ebpf\",reason=\"misses tasks that exit: no listener\"} 1\n"),
            "{om}"
        );
        assert!(om.contains("profiler_samples_total 3\n"), "{om}");
        assert!(om.contains("profiler_lost_events_total 0\n"), "{om}");
        assert!(
            om.contains("profiler_sample_interval_seconds 0.5\n"),
            "{om}"
        );
        assert!(om.contains("profiler_exported_tasks 1\n"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }

    #[test]
    fn the_older_text_format_has_the_same_samples() {
        let r = render(frame(false));
        let text = std::str::from_utf8(&r.text).expect("utf-8");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("profiler_write_chars_bytes_total{pid=\"42\""),
            "{text}"
        );
        assert!(text.contains("profiler_samples_total 3\n"), "{text}");
        assert!(
            text.contains("profiler_source_info{source=\"ebpf\"} 1\n"),
            "{text}"
        );
    }

    /// promtool's lint rule (client_golang's promlint): a metric name names no metric type,
    /// whatever the metric's own type.
    #[test]
    fn no_metric_name_contains_a_type() {
        let r = render(frame(false));
        let text = std::str::from_utf8(&r.text).expect("utf-8");
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(families.len() > 10, "{text}");
        for name in families {
            for kind in ["counter", "gauge", "histogram", "summary", "gaugehistogram"] {
                assert!(
                    !name.contains(&format!("_{kind}_")) && !name.ends_with(&format!("_{kind}")),
                    "{name} contains the type {kind}"
                );
            }
        }
    }

    #[test]
    fn per_thread_series_carry_tid() {
        let r = render(frame(true));
        let om = std::str::from_utf8(&r.openmetrics).expect("utf-8");
        assert!(om.contains("{pid=\"42\",tid=\"43\",command="), "{om}");
        assert!(
            om.contains("{pid=\"other\",tid=\"other\",command=\"other\""),
            "{om}"
        );
    }

    #[test]
    fn exported_names() {
        // Names scrapers already store: pinned one by one, so that a new counter adds a name
        // without touching these.
        for (counter, name) in [
            (Counter::Rchar, "profiler_read_chars_bytes_total"),
            (Counter::Wchar, "profiler_write_chars_bytes_total"),
            (Counter::Syscr, "profiler_read_syscalls_total"),
            (Counter::Syscw, "profiler_write_syscalls_total"),
            (Counter::ReadBytes, "profiler_storage_read_bytes_total"),
            (Counter::WriteBytes, "profiler_storage_write_bytes_total"),
            (
                Counter::CancelledWriteBytes,
                "profiler_storage_cancelled_write_bytes_total",
            ),
            (Counter::BlkioDelay, "profiler_blkio_delay_seconds_total"),
            (Counter::SwapinDelay, "profiler_swapin_delay_seconds_total"),
        ] {
            assert_eq!(exported_name(counter), name);
        }
        let names: std::collections::HashSet<String> =
            Counter::ALL.into_iter().map(exported_name).collect();
        assert_eq!(
            names.len(),
            Counter::ALL.len(),
            "every counter has its own metric"
        );
    }
}
