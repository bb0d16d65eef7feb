//! The `/` and `u` prompts: a line editor (tui-input) and what Enter and Esc do with the line.

use crossterm::event::{Event, KeyCode, KeyEvent};
use regex::Regex;
use tui_input::backend::crossterm::to_input_request;

use super::{Action, ViewState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `/`: a regex over the command and the container label.
    Command,
    /// `u`: a user name or uid.
    User,
}

/// A line being typed at the bottom of the screen, edited as iotop-c's filter prompts are:
/// ←/→, Home/End, Ctrl-A/E, Backspace, Del, Ctrl-W and Alt-Backspace (word left), Ctrl-U
/// (clear), Ctrl-K (to the end); Enter keeps it, Esc cancels.
#[derive(Clone, Debug)]
pub struct Input {
    pub kind: InputKind,
    pub line: tui_input::Input,
    pub error: Option<String>,
    /// The command filter before editing began, for Esc: `/` filters as you type.
    before: Option<Regex>,
}

impl Input {
    fn new(kind: InputKind, text: String, before: Option<Regex>) -> Input {
        Input {
            kind,
            // The cursor starts at the end, after what was typed last time.
            line: tui_input::Input::new(text),
            error: None,
            before,
        }
    }

    pub fn text(&self) -> &str {
        self.line.value()
    }
}

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
        });
    }

    pub(super) fn on_input_key(&mut self, key: KeyEvent) -> Action {
        let Some(input) = self.input.as_mut() else {
            return Action::None;
        };
        match key.code {
            KeyCode::Esc => {
                if input.kind == InputKind::Command {
                    self.filter = input.before.take();
                }
                self.input = None;
                return Action::None;
            }
            KeyCode::Enter => {
                self.submit_input();
                return Action::None;
            }
            _ => {}
        }
        let edited = to_input_request(&Event::Key(key)).and_then(|r| input.line.handle(r));
        if !edited.is_some_and(|changed| changed.value) {
            return Action::None;
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

    fn submit_input(&mut self) {
        let Some(input) = self.input.as_mut() else {
            return;
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
                        self.input = None;
                    }
                    Err(e) => input.error = Some(e.to_string()),
                }
            }
        }
        self.scroll = 0;
    }
}

/// An empty pattern is no filter. Errors are one line: the regex crate's own are several.
fn compile_filter(pattern: &str) -> Result<Option<Regex>, String> {
    if pattern.is_empty() {
        return Ok(None);
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|e| {
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid")
                .trim();
            format!("invalid regex: {}", why.trim_start_matches("error: "))
        })
}
