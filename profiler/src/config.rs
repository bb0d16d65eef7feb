//! The config file: [`Settings`] kept between runs, as TOML, in
//! `$XDG_CONFIG_HOME/profiler/config` (or `~/.config/profiler/config`). Read at start, written
//! by `-W` (and, later, the full-screen view's `W`). Options on the command line override it.

use std::path::{Path, PathBuf};

use crate::settings::Settings;

/// Where the config file is, from the environment's `XDG_CONFIG_HOME` and `HOME` (passed in, so
/// that tests choose them). A relative `XDG_CONFIG_HOME` is ignored, as the XDG spec says.
pub fn path(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let base = match xdg_config_home.filter(|p| p.is_absolute()) {
        Some(dir) => dir.to_path_buf(),
        None => home.filter(|p| !p.as_os_str().is_empty())?.join(".config"),
    };
    Some(base.join("profiler").join("config"))
}

/// [`path`] from this process's environment.
pub fn default_path() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).map(PathBuf::from);
    path(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref())
}

/// Why the config file could not be used. Each is one line that names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no config file: neither XDG_CONFIG_HOME nor HOME is set")]
    NoPath,
}

/// The settings in the file; the defaults when there is no file.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The settings in `text`, read from `path` (named in errors). Keys left out keep their
/// defaults; an unknown key is an error, so that a typo does not go unnoticed.
pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        ConfigError::Parse {
            path: path.to_path_buf(),
            line: text[..at.min(text.len())].matches('\n').count() + 1,
            // The message alone: toml's Display adds the line quoted over several lines.
            message: e.message().trim().replace('\n', " "),
        }
    })
}

const HEADER: &str = "\
# profiler's settings, read at start; options on the command line override them.
# Written by `profiler [OPTIONS] -W`; every key may be left out (then its default holds).
# See `man profiler` (FILES) for the keys and their values.
";

/// The file's text for `settings`.
pub fn render(settings: &Settings) -> String {
    let body = toml::to_string(settings).expect("settings are plain values TOML can hold");
    format!("{HEADER}\n{body}")
}

/// Writes `settings` to `path` (creating its directory), through a temporary file renamed
/// over it, so that a reader never sees half a file.
pub fn save(path: &Path, settings: &Settings) -> Result<(), ConfigError> {
    let err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(settings)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Amounts, Column, GraphSource, Threshold};

    #[test]
    fn xdg_config_home_wins_over_home() {
        let home = Path::new("/home/u");
        assert_eq!(
            path(Some(Path::new("/x")), Some(home)),
            Some(PathBuf::from("/x/profiler/config"))
        );
        assert_eq!(
            path(None, Some(home)),
            Some(PathBuf::from("/home/u/.config/profiler/config"))
        );
        assert_eq!(
            path(Some(Path::new("relative")), Some(home)),
            Some(PathBuf::from("/home/u/.config/profiler/config")),
            "a relative XDG_CONFIG_HOME is ignored"
        );
        assert_eq!(path(None, None), None);
    }

    #[test]
    fn settings_survive_a_round_trip() {
        let mut s = Settings {
            amounts: Amounts::AverageSinceStart,
            graph: GraphSource::ReadWrite,
            threshold: Threshold::new(4).expect("in range"),
            full_command: true,
            si: true,
            ..Settings::default()
        };
        s.columns.insert(Column::Prio, false);
        s.columns.insert(Column::Chars, true);
        let text = render(&s);
        assert!(text.contains("amounts = \"average-since-start\""), "{text}");
        assert!(text.contains("[columns]"), "{text}");
        assert_eq!(parse(Path::new("c"), &text).expect("parses"), s);
        assert_eq!(
            parse(Path::new("c"), "").expect("parses"),
            Settings::default()
        );
    }

    #[test]
    fn a_bad_file_is_one_line_naming_file_and_line() {
        for (text, line, says) in [
            ("only = true\ngraph = \"x\"\n", 2, "unknown variant `x`"),
            ("only = true\n\nthreshold = 11\n", 3, "1 to 10"),
            ("onyl = true\n", 1, "unknown field `onyl`"),
            ("only = true\n[columns]\nprio = 1\n", 3, "bool"),
            ("only = \n", 1, ""),
        ] {
            let e = parse(Path::new("/h/.config/profiler/config"), text)
                .expect_err("refused")
                .to_string();
            let prefix = format!("/h/.config/profiler/config:{line}: ");
            assert!(e.starts_with(&prefix), "{text:?}: {e}");
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn save_creates_the_directory_and_load_reads_it_back() {
        let dir = std::env::temp_dir().join(format!("profiler-config-{}", std::process::id()));
        let file = path(Some(&dir), None).expect("a path");
        assert_eq!(
            load(&file).expect("no file is the defaults"),
            Settings::default()
        );
        let s = Settings {
            only: true,
            ..Settings::default()
        };
        save(&file, &s).expect("saved");
        assert_eq!(load(&file).expect("read back"), s);
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
