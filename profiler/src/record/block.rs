//! One block's payload: the task dictionary, the container labels and the records that refer
//! to them, encoded as the format says (see `format`), and decoded back. Encodes any task that
//! tells its labels and counters (`EncodeTask`: a `TaskRecord`, or a sample's task as `convert`
//! reads it) and decodes into `Record`, the format's own view of a sample, so nothing here
//! depends on `Sample`'s shape.

use std::collections::{BTreeMap, HashMap};

use crate::sample::Command;

use super::format::{
    put_opt, put_str, put_varint, put_zigzag, Cursor, KIND_DELTA, KIND_GONE, KIND_SET, TAG_EXITED,
};

/// No dictionary entry (see `Slot::older`).
const NONE: u32 = u32::MAX;

/// What names a task within a block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Labels {
    pub tid: u32,
    pub pid: u32,
    pub uid: Option<u32>,
    pub command: Command,
    pub start_time: Option<u64>,
    pub cgroup_id: Option<u64>,
}

/// One task in one record; `values` in the order of the header's counter names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub labels: Labels,
    pub values: Vec<Option<u64>>,
    pub exited: bool,
}

/// One sample as the file stores it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub wall_ns: u64,
    pub mono_ns: u64,
    pub lost_events: Option<u64>,
    pub skipped_tasks: u64,
    pub denied_tasks: u64,
    pub tasks: Vec<TaskRecord>,
    /// Container labels of the cgroup ids of the block's tasks, as the recorder knew them.
    pub container_labels: Vec<(u64, String)>,
}

/// Counter values and exit flag of a task, as the decoder tracks them from record to record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    values: Vec<Option<u64>>,
    exited: bool,
}

/// What a record holds besides its tasks.
#[derive(Clone, Copy, Debug)]
pub struct RecordHead {
    pub wall_ns: u64,
    pub mono_ns: u64,
    pub lost_events: Option<u64>,
    pub skipped_tasks: u64,
    pub denied_tasks: u64,
}

impl From<&Record> for RecordHead {
    fn from(r: &Record) -> RecordHead {
        RecordHead {
            wall_ns: r.wall_ns,
            mono_ns: r.mono_ns,
            lost_events: r.lost_events,
            skipped_tasks: r.skipped_tasks,
            denied_tasks: r.denied_tasks,
        }
    }
}

/// A task as the encoder reads it: its labels, and its counters in the order of the header's
/// names. `Columns` is what the task needs to find them (nothing for a [`TaskRecord`]).
pub trait EncodeTask {
    type Columns: ?Sized;
    fn tid(&self) -> u32;
    fn start_time(&self) -> Option<u64>;
    /// Whether the task's labels are `labels`.
    fn labels_are(&self, labels: &Labels) -> bool;
    fn labels(&self) -> Labels;
    /// Writes the task's counters into `out`, which has one slot per column (0 for a counter
    /// not measured), and returns which were measured, one bit each.
    fn values(&self, columns: &Self::Columns, out: &mut [u64]) -> u64;
    fn exited(&self) -> bool;
}

impl EncodeTask for TaskRecord {
    type Columns = ();

    fn tid(&self) -> u32 {
        self.labels.tid
    }

    fn start_time(&self) -> Option<u64> {
        self.labels.start_time
    }

    fn labels_are(&self, labels: &Labels) -> bool {
        self.labels == *labels
    }

    fn labels(&self) -> Labels {
        self.labels.clone()
    }

    fn values(&self, (): &(), out: &mut [u64]) -> u64 {
        measured_into(self.values.iter().copied(), out)
    }

    fn exited(&self) -> bool {
        self.exited
    }
}

/// Writes `values` into `out`, 0 for those that are `None`; returns which are `Some`, one bit
/// each.
#[inline]
pub fn measured_into(values: impl IntoIterator<Item = Option<u64>>, out: &mut [u64]) -> u64 {
    let mut measured = 0;
    for (i, (o, v)) in out.iter_mut().zip(values).enumerate() {
        *o = v.unwrap_or(0);
        measured |= u64::from(v.is_some()) << i;
    }
    measured
}

/// What the encoder keeps of a dictionary entry from record to record, in one place, so that
/// a task costs few cache lines (its counters are in `BlockEncoder::values`).
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Which of its counters were measured in the last record it was in, one bit each.
    measured: u64,
    /// The last record that used it, to catch a task listed twice.
    used_in: u32,
    /// The entry with its tid and start time added before it, if any (`NONE`), so that
    /// `BlockEncoder::index` and these chains list every entry of a key, newest first.
    older: u32,
    /// It was in the last record; `exited`: as an exited task.
    present: bool,
    exited: bool,
    /// Another entry has its tid and start time. Those are always looked up by hash, which
    /// picks among them as the format's order of entries wants.
    shared_key: bool,
}

/// The open block: its dictionary, the state of every task as of the last record, and the
/// records encoded so far.
#[derive(Default)]
pub struct BlockEncoder {
    /// Counters per task, as the header names them.
    counters: usize,
    dict: Vec<Labels>,
    /// The newest dictionary entry of each tid and start time (cheaper to hash than every
    /// label); an entry matches only if all its labels are equal.
    index: HashMap<(u32, Option<u64>), u32>,
    /// Per dictionary entry.
    slots: Vec<Slot>,
    /// Per dictionary entry, `counters` values each: its counters in the last record it was
    /// in (0 where not measured, see `Slot::measured`).
    values: Vec<u64>,
    /// The dictionary entries of the last record's tasks, in index order.
    present: Vec<u32>,
    /// The dictionary entry of each task of the last record, in its order: sources list tasks
    /// in a stable order, so the task at the same place is usually the same, found without
    /// hashing.
    order: Vec<u32>,
    /// Container label by cgroup id, for the block's tasks; None where none was found.
    container_labels: BTreeMap<u64, Option<String>>,
    records: Vec<u8>,
    /// Reused from record to record: (dictionary entry, place in the record) of each task,
    /// the record's entries, and one task's counters.
    current: Vec<(u32, u32)>,
    next_order: Vec<u32>,
    entries: Vec<u8>,
    task_values: Vec<u64>,
    pub count: u32,
    pub first_wall_ns: u64,
    pub last_wall_ns: u64,
    last_record_wall_ns: u64,
    last_mono_ns: u64,
}

impl BlockEncoder {
    /// An encoder of records whose tasks have `counters` counters each.
    pub fn new(counters: usize) -> BlockEncoder {
        BlockEncoder {
            counters,
            ..BlockEncoder::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded bytes so far, dictionary labels not counted.
    pub fn records_len(&self) -> usize {
        self.records.len()
    }

    /// Keeps the container labels of cgroup ids in the block (the first one given for an id).
    pub fn label_containers(&mut self, labels: &[(u64, String)]) {
        for (id, label) in labels {
            let known = self.container_labels.entry(*id).or_default();
            if known.is_none() {
                *known = Some(label.clone());
            }
        }
    }

    /// The dictionary entry for `t`, the `at`th task of record `stamp`: the one of the task at
    /// that place in the last record, else the one its labels hash to, else a new one. A
    /// cgroup id new to the block gets the container label `label` gives it.
    fn entry_of<T: EncodeTask>(
        &mut self,
        at: usize,
        t: &T,
        stamp: u32,
        label: &mut impl FnMut(u64) -> Option<String>,
    ) -> u32 {
        let same_place = self.order.get(at).copied().filter(|&i| {
            !self.slots[i as usize].shared_key && t.labels_are(&self.dict[i as usize])
        });
        let key = (t.tid(), t.start_time());
        let found = same_place.or_else(|| {
            let mut i = self.index.get(&key).copied().unwrap_or(NONE);
            while i != NONE && !t.labels_are(&self.dict[i as usize]) {
                i = self.slots[i as usize].older;
            }
            (i != NONE).then_some(i)
        });
        match found {
            Some(i) if self.slots[i as usize].used_in != stamp => i,
            // New, or a second task with the same labels in one sample: an entry of its own.
            _ => {
                let i = self.dict.len() as u32;
                let labels = t.labels();
                if let Some(id) = labels.cgroup_id {
                    self.container_labels.entry(id).or_insert_with(|| label(id));
                }
                self.dict.push(labels);
                let older = self.index.insert(key, i).unwrap_or(NONE);
                let mut c = older;
                while c != NONE {
                    let slot = &mut self.slots[c as usize];
                    slot.shared_key = true;
                    c = slot.older;
                }
                self.slots.push(Slot {
                    measured: 0,
                    used_in: 0,
                    older,
                    present: false,
                    exited: false,
                    shared_key: older != NONE,
                });
                self.values.extend(std::iter::repeat_n(0, self.counters));
                i
            }
        }
    }

    /// Appends one record: `head`, and `tasks` with their counters found through `columns`.
    /// `label` tells the container label of each cgroup id new to the block.
    pub fn push<T: EncodeTask>(
        &mut self,
        head: &RecordHead,
        tasks: &[T],
        columns: &T::Columns,
        mut label: impl FnMut(u64) -> Option<String>,
    ) {
        if self.count == 0 {
            self.first_wall_ns = head.wall_ns;
            self.last_wall_ns = head.wall_ns;
        }
        self.count += 1;
        let stamp = self.count;
        self.first_wall_ns = self.first_wall_ns.min(head.wall_ns);
        self.last_wall_ns = self.last_wall_ns.max(head.wall_ns);

        let mut current = std::mem::take(&mut self.current);
        let mut order = std::mem::take(&mut self.next_order);
        current.clear();
        order.clear();
        for (at, t) in tasks.iter().enumerate() {
            let idx = self.entry_of(at, t, stamp, &mut label);
            self.slots[idx as usize].used_in = stamp;
            current.push((idx, at as u32));
            order.push(idx);
        }
        self.next_order = std::mem::replace(&mut self.order, order);
        // Usually sorted already (the same tasks in the same order): checked first, as the
        // sort's code is large and, a refresh later, out of the cache.
        if !current.is_sorted_by_key(|&(i, _)| i) {
            current.sort_unstable_by_key(|&(i, _)| i);
        }

        let out = &mut self.records;
        put_zigzag(
            out,
            head.wall_ns.wrapping_sub(self.last_record_wall_ns) as i64,
        );
        put_zigzag(out, head.mono_ns.wrapping_sub(self.last_mono_ns) as i64);
        self.last_record_wall_ns = head.wall_ns;
        self.last_mono_ns = head.mono_ns;
        put_opt(out, head.lost_events);
        put_varint(out, head.skipped_tasks);
        put_varint(out, head.denied_tasks);

        // Entries, merged in index order from the tasks of the last record and of this one.
        let mut entries = std::mem::take(&mut self.entries);
        let mut new = std::mem::take(&mut self.task_values);
        entries.clear();
        new.clear();
        new.resize(self.counters, 0);
        let mut prev_idx: Option<u32> = None;
        let mut entry = |entries: &mut Vec<u8>, idx: u32| {
            put_varint(entries, u64::from(idx - prev_idx.map_or(0, |p| p + 1)));
            prev_idx = Some(idx);
        };
        let mut n_entries = 0u64;
        let (mut a, mut b) = (0, 0);
        let gone = |present: &[u32], a: usize, cur: Option<u32>| {
            present.get(a).is_some_and(|&p| cur.is_none_or(|c| p < c))
        };
        loop {
            let cur = current.get(b).map(|&(i, _)| i);
            if gone(&self.present, a, cur) {
                let idx = self.present[a];
                self.slots[idx as usize].present = false;
                entry(&mut entries, idx);
                entries.push(KIND_GONE);
                n_entries += 1;
                a += 1;
                continue;
            }
            let Some(idx) = cur else { break };
            if self.present.get(a) == Some(&idx) {
                a += 1;
            }
            let t = &tasks[current[b].1 as usize];
            b += 1;
            let measured = t.values(columns, &mut new);
            let exited = t.exited();
            let tag = if exited { TAG_EXITED } else { 0 };
            let at = idx as usize * self.counters;
            let old = &mut self.values[at..at + self.counters];
            let slot = &mut self.slots[idx as usize];
            // With the same counters measured (those not measured are 0 on both sides), a
            // change fits in a delta.
            let delta = slot.present && slot.measured == measured;
            let changed = new
                .iter()
                .zip(old.iter())
                .enumerate()
                .fold(0u64, |m, (i, (n, o))| m | u64::from(n != o) << i);
            if delta && changed == 0 && slot.exited == exited {
                continue;
            }
            entry(&mut entries, idx);
            if delta {
                entries.push(KIND_DELTA | tag);
                put_varint(&mut entries, changed);
                for (i, (n, o)) in new.iter().zip(old.iter()).enumerate() {
                    if changed & 1 << i != 0 {
                        put_zigzag(&mut entries, n.wrapping_sub(*o) as i64);
                    }
                }
            } else {
                entries.push(KIND_SET | tag);
                put_varint(&mut entries, measured);
                for (i, v) in new.iter().enumerate() {
                    if measured & 1 << i != 0 {
                        put_varint(&mut entries, *v);
                    }
                }
            }
            slot.present = true;
            slot.exited = exited;
            slot.measured = measured;
            old.copy_from_slice(&new);
            n_entries += 1;
        }
        put_varint(out, n_entries);
        out.extend_from_slice(&entries);
        self.present.clear();
        self.present.extend(current.iter().map(|&(i, _)| i));
        self.current = current;
        self.entries = entries;
        self.task_values = new;
    }

    /// Appends the payload (dictionary then records) to `out`, and makes the encoder ready
    /// for the next block; it keeps its allocations, which the next block would make again.
    pub fn take_into(&mut self, out: &mut Vec<u8>) {
        out.reserve(self.dict.len() * 16 + self.records.len() + 8);
        put_varint(out, self.dict.len() as u64);
        let mut prev_tid = 0u32;
        for l in &self.dict {
            put_zigzag(out, i64::from(l.tid) - i64::from(prev_tid));
            put_zigzag(out, i64::from(l.pid) - i64::from(l.tid));
            prev_tid = l.tid;
            let flags = u8::from(l.uid.is_some())
                | u8::from(l.start_time.is_some()) << 1
                | u8::from(l.cgroup_id.is_some()) << 2;
            out.push(flags);
            if let Some(uid) = l.uid {
                put_varint(out, u64::from(uid));
            }
            put_str(out, &l.command);
            if let Some(s) = l.start_time {
                put_varint(out, s);
            }
            if let Some(c) = l.cgroup_id {
                put_varint(out, c);
            }
        }
        let labelled = || {
            self.container_labels
                .iter()
                .filter_map(|(id, label)| Some((*id, label.as_ref()?)))
        };
        put_varint(out, labelled().count() as u64);
        for (id, label) in labelled() {
            put_varint(out, id);
            put_str(out, label);
        }
        out.extend_from_slice(&self.records);
        self.reset();
    }

    /// Empties the encoder, keeping what it allocated. Every field is named, so that a new
    /// one cannot be forgotten here.
    fn reset(&mut self) {
        let BlockEncoder {
            counters: _,
            dict,
            index,
            slots,
            values,
            present,
            order,
            container_labels,
            records,
            current,
            next_order,
            entries,
            task_values,
            count,
            first_wall_ns,
            last_wall_ns,
            last_record_wall_ns,
            last_mono_ns,
        } = self;
        dict.clear();
        index.clear();
        slots.clear();
        values.clear();
        present.clear();
        order.clear();
        container_labels.clear();
        records.clear();
        current.clear();
        next_order.clear();
        entries.clear();
        task_values.clear();
        *count = 0;
        *first_wall_ns = 0;
        *last_wall_ns = 0;
        *last_record_wall_ns = 0;
        *last_mono_ns = 0;
    }
}

/// Decodes a block's payload into its records. `counters` is the number of counters the
/// header names, `version` the file's format version. The error says what was malformed and
/// in which record.
pub fn decode(
    payload: &[u8],
    records: u32,
    counters: usize,
    version: u16,
) -> Result<Vec<Record>, String> {
    let mut c = Cursor::new(payload);
    let at = |what: &str, rec: Option<u32>| match rec {
        None => format!("task dictionary: {what}"),
        Some(r) => format!("record {} of {records} in the block: {what}", r + 1),
    };
    let n = c.count(4).map_err(|e| at(e, None))?;
    let mut dict = Vec::with_capacity(n);
    let mut prev_tid = 0i64;
    for _ in 0..n {
        let labels = (|| {
            let tid = prev_tid + c.zigzag()?;
            let pid = tid + c.zigzag()?;
            let flags = c.byte()?;
            if flags & !7 != 0 {
                return Err("unknown label flags");
            }
            let uid = if flags & 1 != 0 {
                Some(u32::try_from(c.varint()?).map_err(|_| "uid out of range")?)
            } else {
                None
            };
            let command = c.string()?;
            let start_time = if flags & 2 != 0 {
                Some(c.varint()?)
            } else {
                None
            };
            let cgroup_id = if flags & 4 != 0 {
                Some(c.varint()?)
            } else {
                None
            };
            prev_tid = tid;
            Ok(Labels {
                tid: u32::try_from(tid).map_err(|_| "tid out of range")?,
                pid: u32::try_from(pid).map_err(|_| "pid out of range")?,
                uid,
                command: command.into(),
                start_time,
                cgroup_id,
            })
        })()
        .map_err(|e| at(e, None))?;
        dict.push(labels);
    }

    let container_labels = if version >= 2 {
        (|| {
            let n = c.count(2)?;
            let mut labels = Vec::with_capacity(n);
            for _ in 0..n {
                labels.push((c.varint()?, c.string()?));
            }
            Ok(labels)
        })()
        .map_err(|e: &str| format!("container labels: {e}"))?
    } else {
        Vec::new()
    };

    let mut state: Vec<Option<State>> = vec![None; dict.len()];
    let mut out = Vec::with_capacity(records as usize);
    let (mut wall, mut mono) = (0u64, 0u64);
    let all = if counters == 64 {
        u64::MAX
    } else {
        (1u64 << counters) - 1
    };
    for r in 0..records {
        let rec = (|| {
            wall = wall.wrapping_add(c.zigzag()? as u64);
            mono = mono.wrapping_add(c.zigzag()? as u64);
            let lost_events = c.opt()?;
            let skipped_tasks = c.varint()?;
            let denied_tasks = c.varint()?;
            let entries = c.count(2)?;
            let mut next = 0u64;
            for _ in 0..entries {
                let idx = next
                    .checked_add(c.varint()?)
                    .filter(|&i| i < dict.len() as u64)
                    .ok_or("task index outside the dictionary")?;
                next = idx + 1;
                let slot = &mut state[idx as usize];
                let tag = c.byte()?;
                let exited = tag & TAG_EXITED != 0;
                match tag & !TAG_EXITED {
                    KIND_GONE if slot.is_some() && !exited => *slot = None,
                    KIND_SET => {
                        let mask = c.varint()?;
                        if mask & !all != 0 {
                            return Err("counter mask names more counters than the header");
                        }
                        let values = (0..counters)
                            .map(|i| {
                                if mask & 1 << i != 0 {
                                    c.varint().map(Some)
                                } else {
                                    Ok(None)
                                }
                            })
                            .collect::<Result<_, _>>()?;
                        *slot = Some(State { values, exited });
                    }
                    KIND_DELTA => {
                        let s = slot.as_mut().ok_or("delta for a task not in the sample")?;
                        let mask = c.varint()?;
                        for (i, v) in s.values.iter_mut().enumerate() {
                            if mask & 1 << i != 0 {
                                let old = v.ok_or("delta for an unmeasured counter")?;
                                *v = Some(old.wrapping_add(c.zigzag()? as u64));
                            }
                        }
                        if mask & !all != 0 {
                            return Err("counter mask names more counters than the header");
                        }
                        s.exited = exited;
                    }
                    _ => return Err("entry kind unknown or not valid here"),
                }
            }
            let tasks = state
                .iter()
                .zip(&dict)
                .filter_map(|(s, l)| {
                    s.as_ref().map(|s| TaskRecord {
                        labels: l.clone(),
                        values: s.values.clone(),
                        exited: s.exited,
                    })
                })
                .collect();
            Ok(Record {
                wall_ns: wall,
                mono_ns: mono,
                lost_events,
                skipped_tasks,
                denied_tasks,
                tasks,
                container_labels: container_labels.clone(),
            })
        })()
        .map_err(|e: &str| at(e, Some(r)))?;
        out.push(rec);
    }
    if !c.at_end() {
        return Err(format!(
            "{} bytes after the last record",
            payload.len() - c.pos
        ));
    }
    Ok(out)
}
