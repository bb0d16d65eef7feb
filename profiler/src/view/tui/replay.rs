//! A recording in the full-screen view: which recorded refresh is on screen, and the keys that
//! move through them, as atop's: `t`/`T` one interval back/forward, `j` jumps to a time typed
//! into the header. The view stays on a refresh until a key moves it (paused: nothing plays by itself).

use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::sampler::SamplerCommand;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The refresh on screen, from 1, and how many the recording has in range.
    pub at: usize,
    pub count: usize,
    /// `j`: the time being typed.
    pub prompt: Option<String>,
}

impl Replay {
    /// None when the key is not a replay key (the view handles it); else what it asks of the
    /// sampler, if anything.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Option<SamplerCommand>> {
        if let Some(text) = &mut self.prompt {
            match key.code {
                KeyCode::Esc => self.prompt = None,
                KeyCode::Enter => {
                    let text = self.prompt.take().unwrap_or_default();
                    if !text.trim().is_empty() {
                        return Some(Some(SamplerCommand::Seek(text)));
                    }
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => text.push(c),
                _ => {}
            }
            return Some(None);
        }
        // Ctrl-T and the like are the view's keys.
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return None;
        }
        match key.code {
            KeyCode::Char('t') => Some(Some(SamplerCommand::Step(-1))),
            KeyCode::Char('T') => Some(Some(SamplerCommand::Step(1))),
            KeyCode::Char('j' | 'J') => {
                self.prompt = Some(String::new());
                Some(None)
            }
            _ => None,
        }
    }

    /// The header's part: the recorded time on screen and where it is, or the prompt.
    pub fn label(&self, time: Option<SystemTime>) -> String {
        if let Some(text) = &self.prompt {
            return format!("go to time (03:00, -1h, 2026-12-02T03:00): {text}_");
        }
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

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn t_and_shift_t_step_and_j_asks_for_a_time() {
        let mut r = Replay {
            at: 3,
            count: 9,
            prompt: None,
        };
        assert_eq!(
            r.on_key(key(KeyCode::Char('t'))),
            Some(Some(SamplerCommand::Step(-1)))
        );
        assert_eq!(
            r.on_key(key(KeyCode::Char('T'))),
            Some(Some(SamplerCommand::Step(1)))
        );
        assert_eq!(r.on_key(key(KeyCode::Char('x'))), None, "not a replay key");
        let ctrl_t = KeyEvent::new(KeyCode::Char('t'), KeyModifiers::CONTROL);
        assert_eq!(r.on_key(ctrl_t), None, "Ctrl-T is the view's");
        assert_eq!(r.on_key(key(KeyCode::Char('j'))), Some(None));
        // While typing, every key is the prompt's: `q` and `t` are text.
        for c in "03:0q".chars() {
            assert_eq!(r.on_key(key(KeyCode::Char(c))), Some(None));
        }
        r.on_key(key(KeyCode::Backspace));
        r.on_key(key(KeyCode::Char('0')));
        assert!(r.label(None).ends_with("03:00_"), "{}", r.label(None));
        assert_eq!(
            r.on_key(key(KeyCode::Enter)),
            Some(Some(SamplerCommand::Seek("03:00".into())))
        );
        assert_eq!(r.prompt, None);
        r.on_key(key(KeyCode::Char('j')));
        r.on_key(key(KeyCode::Char('1')));
        assert_eq!(r.on_key(key(KeyCode::Esc)), Some(None));
        assert_eq!(r.prompt, None, "Esc cancels");
    }

    #[test]
    fn the_header_shows_the_recorded_time_and_the_place() {
        let r = Replay {
            at: 3,
            count: 9,
            prompt: None,
        };
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
