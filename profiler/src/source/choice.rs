//! Which source(s) to open: `auto`, one forced, or several to compare. Parsed here, with the
//! sources, so that the session and every front end share one meaning of `--source`.

use super::SourceKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    Auto,
    /// One forced source, or several to compare.
    Given(Vec<SourceKind>),
}

/// Why a `--source` value names no choice.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("unknown source `{0}` (expected auto, taskstats, ebpf or procfs)")]
    Unknown(String),
    #[error("source `{0}` given twice")]
    Twice(String),
}

impl SourceChoice {
    /// `auto`, or source names joined by commas.
    pub fn parse(s: &str) -> Result<SourceChoice, ChoiceError> {
        if s == "auto" {
            return Ok(SourceChoice::Auto);
        }
        let mut kinds = Vec::new();
        for name in s.split(',') {
            let kind = SourceKind::from_name(name.trim())
                .ok_or_else(|| ChoiceError::Unknown(name.to_string()))?;
            if kinds.contains(&kind) {
                return Err(ChoiceError::Twice(name.to_string()));
            }
            kinds.push(kind);
        }
        Ok(SourceChoice::Given(kinds))
    }

    /// More than one source, side by side.
    pub fn compares(&self) -> bool {
        matches!(self, SourceChoice::Given(kinds) if kinds.len() > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_reject() {
        assert_eq!(SourceChoice::parse("auto"), Ok(SourceChoice::Auto));
        assert_eq!(
            SourceChoice::parse("taskstats,ebpf"),
            Ok(SourceChoice::Given(vec![
                SourceKind::Taskstats,
                SourceKind::Ebpf
            ]))
        );
        assert!(SourceChoice::parse("disk")
            .unwrap_err()
            .to_string()
            .contains("unknown source `disk`"));
        assert!(SourceChoice::parse("ebpf,ebpf").is_err());
    }
}
