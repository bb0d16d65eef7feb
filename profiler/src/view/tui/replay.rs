//! A recording in the full-screen view: which recorded refresh is on screen, and the keys that
//! move through them, as atop's: `t`/`T` one interval back/forward, `j` jumps to a time typed
//! at the prompt line. The view stays on a refresh until a key moves it (paused: nothing plays
//! by itself).

use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The refresh on screen, from 1, and how many the recording has in range.
    pub at: usize,
    pub count: usize,
}

/// What a replay key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayKey {
    /// This many intervals later (earlier when negative).
    Step(i64),
    /// A time, typed at the prompt line (as `--begin` takes it).
    AskTime,
}

/// The replay's meaning of `key`, if it has one (the view handles the others). Ctrl-T and the
/// like are the view's keys.
pub fn key(key: KeyEvent) -> Option<ReplayKey> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return None;
    }
    match key.code {
        KeyCode::Char('t') => Some(ReplayKey::Step(-1)),
        KeyCode::Char('T') => Some(ReplayKey::Step(1)),
        KeyCode::Char('j' | 'J') => Some(ReplayKey::AskTime),
        _ => None,
    }
}

impl Replay {
    /// The header's part: the recorded time on screen and where it is.
    pub fn label(&self, time: Option<SystemTime>) -> String {
        let time = time
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .map(|t| {
                t.to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| "…".into());
        format!("REPLAY {time} {}/{} (t T j)", self.at, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn t_and_shift_t_step_and_j_asks_for_a_time() {
        assert_eq!(key(plain(KeyCode::Char('t'))), Some(ReplayKey::Step(-1)));
        assert_eq!(key(plain(KeyCode::Char('T'))), Some(ReplayKey::Step(1)));
        assert_eq!(key(plain(KeyCode::Char('j'))), Some(ReplayKey::AskTime));
        assert_eq!(key(plain(KeyCode::Char('x'))), None, "not a replay key");
        let ctrl_t = KeyEvent::new(KeyCode::Char('t'), KeyModifiers::CONTROL);
        assert_eq!(key(ctrl_t), None, "Ctrl-T is the view's");
    }

    #[test]
    fn the_header_shows_the_recorded_time_and_the_place() {
        let r = Replay { at: 3, count: 9 };
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_644_400);
        let label = r.label(Some(t));
        let local = jiff::Timestamp::from_second(1_764_644_400)
            .expect("in range")
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        assert_eq!(label, format!("REPLAY {local} 3/9 (t T j)"));
    }
}
