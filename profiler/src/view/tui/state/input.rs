//! The prompts' side of the view state: what each prompt starts with, how typing changes the
//! filters, and what Enter does (filters, the `f` questions, `i`'s three questions).

use crossterm::event::KeyEvent;

use super::prompt::{compile_filter, Edit};
use super::{Action, Grouping, Input, InputKind, ViewState};
use crate::view::tui::sampler::{IoPrio, SamplerCommand};

impl ViewState {
    /// Opens a prompt on what it filters now, the cursor at the end.
    pub(super) fn open_prompt(&mut self, kind: InputKind) {
        self.input = Some(match kind {
            InputKind::Command => {
                let text = self
                    .filter
                    .as_ref()
                    .map(|re| re.as_str().to_string())
                    .unwrap_or_default();
                Input::new(kind, text, self.filter.clone())
            }
            InputKind::User => Input::new(kind, self.user_label.clone().unwrap_or_default(), None),
            InputKind::Pid => {
                let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
                Input::new(kind, pids.join(","), None)
            }
            InputKind::IoniceId
            | InputKind::IoniceClass { .. }
            | InputKind::IoniceLevel { .. }
            | InputKind::Time => Input::new(kind, String::new(), None),
        });
    }

    /// `i`: asks which task (the first row on screen unless told), then the class, then the
    /// level, as iotop-c does.
    pub(super) fn open_ionice(&mut self, top: Option<u32>) {
        let text = top.map(|id| id.to_string()).unwrap_or_default();
        self.input = Some(Input::new(InputKind::IoniceId, text, None));
    }

    pub(super) fn on_input_key(&mut self, key: KeyEvent) -> Action {
        let Some(input) = self.input.as_mut() else {
            return Action::None;
        };
        match input.on_key(key) {
            Edit::Cancel => {
                if input.kind == InputKind::Command {
                    self.filter = input.take_before();
                }
                self.input = None;
                return Action::None;
            }
            Edit::Submit => return self.submit_input(),
            Edit::Unchanged => return Action::None,
            Edit::Changed => {}
        }
        if input.kind == InputKind::Command {
            // The filter follows the typing while the pattern is valid; the last valid one stays.
            match compile_filter(input.text()) {
                Ok(re) => {
                    input.error = None;
                    self.filter = re;
                    self.scroll = 0;
                }
                Err(e) => input.error = Some(e),
            }
        } else {
            input.error = None;
        }
        Action::None
    }

    pub(super) fn submit_input(&mut self) -> Action {
        let Some(input) = self.input.as_mut() else {
            return Action::None;
        };
        match input.kind {
            InputKind::Command => match compile_filter(input.text()) {
                Ok(re) => {
                    self.filter = re;
                    self.input = None;
                }
                Err(e) => input.error = Some(e),
            },
            InputKind::User => {
                let names: Vec<String> = input
                    .text()
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                match crate::users::resolve_users(&names) {
                    Ok(uids) => {
                        self.view.uids = uids;
                        self.user_label = (!names.is_empty()).then(|| names.join(","));
                        // iotop-c's `f` asks for the users, then the processes.
                        self.open_prompt(InputKind::Pid);
                    }
                    Err(e) => input.error = Some(e.to_string()),
                }
            }
            InputKind::Pid => match parse_pids(input.text()) {
                Ok(pids) => {
                    self.pids = pids;
                    self.input = None;
                }
                Err(e) => input.error = Some(e),
            },
            InputKind::IoniceId => match input.text().trim().parse::<u32>() {
                Ok(id) if id > 0 => {
                    self.input = Some(Input::new(InputKind::IoniceClass { id }, "be".into(), None))
                }
                _ => input.error = Some("a task id (TID, or PID in process mode)".into()),
            },
            InputKind::IoniceClass { id } => match parse_class(input.text()) {
                Some(IoClass::Idle) => {
                    self.input = None;
                    return self.ionice(id, IoPrio::Idle);
                }
                Some(class) => {
                    self.input = Some(Input::new(
                        InputKind::IoniceLevel { id, class },
                        "4".into(),
                        None,
                    ))
                }
                None => input.error = Some("rt, be or idle (1, 2 or 3)".into()),
            },
            InputKind::IoniceLevel { id, class } => match input.text().trim().parse::<u8>() {
                Ok(level @ 0..=7) => {
                    self.input = None;
                    let prio = match class {
                        IoClass::Realtime => IoPrio::Realtime(level),
                        IoClass::BestEffort => IoPrio::BestEffort(level),
                        IoClass::Idle => IoPrio::Idle,
                    };
                    return self.ionice(id, prio);
                }
                _ => input.error = Some("a level from 0 (highest) to 7".into()),
            },
            InputKind::Time => {
                let text = input.text().trim().to_string();
                self.input = None;
                if !text.is_empty() {
                    return Action::Sampler(SamplerCommand::Seek(text));
                }
            }
        }
        self.scroll = 0;
        Action::None
    }

    pub(super) fn ionice(&self, id: u32, prio: IoPrio) -> Action {
        Action::Ionice {
            id,
            process: self.grouping() == Grouping::Processes,
            prio,
        }
    }
}

/// The I/O scheduling classes, as the `i` prompt takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoClass {
    Realtime,
    BestEffort,
    Idle,
}

pub(super) fn parse_class(text: &str) -> Option<IoClass> {
    match text.trim().to_ascii_lowercase().as_str() {
        "rt" | "realtime" | "real-time" | "1" => Some(IoClass::Realtime),
        "be" | "best-effort" | "2" => Some(IoClass::BestEffort),
        "idle" | "3" => Some(IoClass::Idle),
        _ => None,
    }
}

/// `f`'s second question: process ids, by commas or spaces; empty for all.
pub(super) fn parse_pids(text: &str) -> Result<Vec<u32>, String> {
    text.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| format!("`{s}` is not a process id"))
        })
        .collect()
}
