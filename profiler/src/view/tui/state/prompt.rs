//! The `/`, `f` and `i` prompts, and a replay's `j`: a line editor (tui-input) over the text, and the pattern it
//! makes.

use crossterm::event::{Event, KeyCode, KeyEvent};
use regex::Regex;
use tui_input::backend::crossterm::to_input_request;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// `/`: a regex over the command and the container label.
    Command,
    /// `f`, first: user names or uids.
    User,
    /// `f`, then: process ids.
    Pid,
    /// `i`, first: the task.
    IoniceId,
    /// `i`, then: its class.
    IoniceClass { id: u32 },
    /// `i`, last, for the realtime and best-effort classes: the level.
    IoniceLevel { id: u32, class: super::IoClass },
    /// `j` in a replay: the time to show, as `--begin` takes it.
    Time,
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
    pub fn new(kind: InputKind, text: String, before: Option<Regex>) -> Input {
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

    /// The command filter from before the prompt opened, for Esc.
    pub fn take_before(&mut self) -> Option<Regex> {
        self.before.take()
    }

    /// One key: the editing keys change the line here; Enter and Esc are for the caller.
    pub fn on_key(&mut self, key: KeyEvent) -> Edit {
        match key.code {
            KeyCode::Esc => Edit::Cancel,
            KeyCode::Enter => Edit::Submit,
            _ => match to_input_request(&Event::Key(key)).and_then(|r| self.line.handle(r)) {
                Some(changed) if changed.value => Edit::Changed,
                _ => Edit::Unchanged,
            },
        }
    }
}

/// What a key did to the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Cancel,
    Submit,
    /// The line changed.
    Changed,
    /// The cursor moved, or the key is not an editing key.
    Unchanged,
}

/// An empty pattern is no filter. Errors are one line: the regex crate's own are several.
pub fn compile_filter(pattern: &str) -> Result<Option<Regex>, String> {
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
