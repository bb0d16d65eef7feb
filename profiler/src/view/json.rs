//! JSON view: one object per refresh, one line each. The shape is a public interface
//! (documented in README.md): fields may be added, never renamed or removed.

use serde_json::{json, Map, Value};

use super::{join, UserNames, ViewOptions};
use crate::model::Row;
use crate::sample::{Counters, COUNTER_NAMES};
use crate::session::Snapshot;
use crate::source::Fallback;

fn counters(c: &Counters) -> Value {
    let mut m = Map::new();
    for (name, v) in COUNTER_NAMES.iter().zip(c.values()) {
        m.insert((*name).into(), v.map_or(Value::Null, Value::from));
    }
    Value::Object(m)
}

fn both(r: &Row) -> Value {
    json!({ "total": counters(&r.total), "delta": counters(&r.delta) })
}

/// The object of one refresh.
pub fn render(
    snapshot: &Snapshot,
    view: &ViewOptions,
    fallbacks: &[Fallback],
    users: &mut UserNames,
) -> Value {
    let compare = snapshot.views.len() > 1;
    let tasks: Vec<Value> = join(snapshot, view)
        .iter()
        .map(|j| {
            let label = j.label();
            let mut task = Map::new();
            if view.by_container {
                // A container entry: its label and how many processes it had.
                task.insert("container".into(), label.command.clone().into());
                task.insert("processes".into(), j.pid.into());
            } else {
                task.insert("pid".into(), j.pid.into());
                if let Some(tid) = j.tid {
                    task.insert("tid".into(), tid.into());
                }
                task.insert("uid".into(), label.uid.map_or(Value::Null, Value::from));
                task.insert(
                    "user".into(),
                    label.uid.map_or(Value::Null, |u| users.name(u).into()),
                );
                task.insert("command".into(), label.command.clone().into());
                task.insert(
                    "container".into(),
                    label.container.clone().map_or(Value::Null, Value::from),
                );
            }
            if label.exited {
                task.insert("exited".into(), true.into());
            }
            if compare {
                let mut by = Map::new();
                for (sv, row) in snapshot.views.iter().zip(&j.per_source) {
                    by.insert(sv.kind.name().into(), row.map_or(Value::Null, both));
                }
                task.insert("by_source".into(), Value::Object(by));
            } else {
                task.insert("total".into(), counters(&label.total));
                task.insert("delta".into(), counters(&label.delta));
            }
            Value::Object(task)
        })
        .collect();
    let time = jiff::Timestamp::try_from(snapshot.time)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let source: Vec<&str> = snapshot.views.iter().map(|v| v.kind.name()).collect();
    let lost: Option<u64> = snapshot
        .views
        .iter()
        .filter_map(|v| v.model.lost_events)
        .reduce(|a, b| a + b);
    json!({
        "time": time,
        "interval_s": snapshot.interval_s(),
        "source": source.join(","),
        "fallbacks": fallbacks.iter().map(|f| json!({"source": f.kind.name(), "error": f.error.to_string()})).collect::<Vec<_>>(),
        "lost_events": lost,
        "tasks": tasks,
    })
}
