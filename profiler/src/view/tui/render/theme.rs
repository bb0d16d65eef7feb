//! The colours of the view, from the settings: none with `l`, `-l` or `NO_COLOR`; else the
//! eight ANSI colours (which every colour terminal has) on the terminal's own background, so
//! that numbers keep the terminal's own foreground and stay readable, light or dark.

use ratatui::style::{Color, Modifier, Style};

use crate::settings::Theme;
use crate::view::tui::state::ViewState;

/// The styles that carry colour; the rest of the view uses none.
#[derive(Clone, Copy, Debug)]
pub(super) struct Palette {
    colored: bool,
    theme: Theme,
}

impl Palette {
    pub(super) fn of(state: &ViewState) -> Palette {
        Palette {
            colored: state.colored(),
            theme: state.settings.theme,
        }
    }

    fn fg(self, basic: Color, extended: Color) -> Style {
        match (self.colored, self.theme) {
            (false, _) => Style::new(),
            (true, Theme::Basic) => Style::new().fg(basic),
            (true, Theme::Extended) => Style::new().fg(extended),
        }
    }

    /// The history sparkline.
    pub(super) fn history(self) -> Style {
        self.fg(Color::Cyan, Color::Indexed(39))
    }

    /// A failed refresh, a prompt's error: bold without colour.
    pub(super) fn error(self) -> Style {
        if self.colored {
            self.fg(Color::Red, Color::Indexed(196))
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    /// Notes on unavailable columns, and the status line.
    pub(super) fn note(self) -> Style {
        self.fg(Color::Yellow, Color::Indexed(214))
    }

    /// A difference between sources: bold without colour.
    pub(super) fn diff(self) -> Style {
        if self.colored {
            self.fg(Color::Yellow, Color::Indexed(214))
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }
}
