//! `profiler`: per-task I/O counters from taskstats, eBPF or /proc, normalised into one
//! [`sample::Sample`], turned into deltas and rates by [`model`], shown by a [`view`].
//! Data flows one way: source → Sample → model → view.

pub mod accumulate;
pub mod config;
pub mod container;
pub mod counter;
pub mod fuzz;
#[cfg(test)]
mod golden;
pub mod history;
pub mod model;
#[cfg(test)]
mod module_graph;
pub mod privileges;
pub mod record;
pub mod runner;
pub mod sample;
pub mod serve;
pub mod session;
pub mod settings;
pub mod source;
pub mod startup;
pub mod users;
pub mod view;
