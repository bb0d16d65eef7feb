//! Cost of the userspace half of a refresh at 100,000 tasks: the model (deltas per thread,
//! grouped per process and per container) and the batch and JSON views, on synthetic samples.
//! No kernel involved; run: `cargo bench -p profiler --bench model`.

use std::time::{Duration, Instant};

use profiler::model::{self, ModelOptions};
use profiler::sample::{Counters, Sample, TaskSample};
use profiler::session::{Snapshot, SourceModel};
use profiler::source::SourceKind;
use profiler::view::batch::{self, BatchOptions};
use profiler::view::lookup::Lookup;
use profiler::view::{json, ViewOptions};

const TASKS: u32 = 100_000;
const THREADS_PER_PROCESS: u32 = 10;
const ROUNDS: usize = 5;

fn sample(tick: u64) -> Sample {
    let tasks = (0..TASKS)
        .map(|i| {
            let c = u64::from(i) * 10 + tick * u64::from(i % 7);
            TaskSample {
                tid: 1000 + i,
                pid: 1000 + i - i % THREADS_PER_PROCESS,
                uid: Some(i % 50),
                command: format!("task{}", i % 997).into(),
                start_time: Some(u64::from(i)),
                cgroup_id: None,
                counters: Counters {
                    rchar: Some(c),
                    wchar: Some(c / 2),
                    syscr: Some(c / 100),
                    syscw: Some(c / 200),
                    read_bytes: Some(c / 4),
                    write_bytes: Some(c / 8),
                    cancelled_write_bytes: Some(0),
                    // Unmeasured, as eBPF without BTF; so is any counter added later.
                    ..Counters::default()
                },
                exited: false,
            }
        })
        .collect();
    let mut s = Sample::new(tasks);
    s.taken_at -= Duration::from_secs(10 - tick);
    s
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

fn main() {
    let (a, b) = (sample(1), sample(2));
    let threads = || model::compute(Some(&a), &b, ModelOptions { processes: false });
    let ms_threads = median_ms(|| drop(threads()));
    let ms_processes = median_ms(|| {
        drop(model::compute(
            Some(&a),
            &b,
            ModelOptions { processes: true },
        ))
    });
    let labelled = || {
        let mut m = threads();
        for r in &mut m.rows {
            r.container = Some(format!("docker:{:012x}", r.pid % 40));
        }
        m
    };
    let ms_containers = median_ms(|| drop(model::group_by_container(labelled())));
    let snapshot = Snapshot {
        time: std::time::SystemTime::now(),
        models: vec![SourceModel {
            kind: SourceKind::Procfs,
            model: threads(),
        }],
    };
    let view = ViewOptions::default();
    let mut lookup = Lookup::default();
    let ms_batch = median_ms(|| {
        drop(batch::render(
            &snapshot,
            &view,
            &BatchOptions::default(),
            &mut lookup,
            true,
        ));
    });
    let ms_json = median_ms(|| drop(json::render(&snapshot, &view, &[], &mut lookup)));
    println!("model at {TASKS} tasks (median of {ROUNDS}):");
    println!("  deltas per thread        {ms_threads:8.1} ms");
    println!("  grouped per process      {ms_processes:8.1} ms");
    println!("  labelled and per container {ms_containers:6.1} ms (includes labelling and the thread model)");
    println!("  batch view (all rows)    {ms_batch:8.1} ms");
    println!("  JSON view (all rows)     {ms_json:8.1} ms");
}
