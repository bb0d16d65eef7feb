//! Text that fits: variants by width, truncation, word wrap, and the numbers as cells and the
//! header show them.

use crate::counter::Unit;
use crate::view::human_bytes;

/// The first of `variants` that fits in `width`, else the last one cut.
pub(super) fn fit(width: usize, variants: &[String]) -> String {
    variants
        .iter()
        .find(|v| v.chars().count() <= width)
        .cloned()
        .unwrap_or_else(|| truncate(variants.last().map_or("", String::as_str), width))
}

pub(super) fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

/// Greedy word wrap into at most `max_lines`; an overflowing last line ends in `…`.
pub(super) fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let needed = if cur.is_empty() {
            word.chars().count()
        } else {
            cur.chars().count() + 1 + word.chars().count()
        };
        if needed > width && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        while cur.chars().count() > width {
            let rest: String = cur.chars().skip(width).collect();
            lines.push(cur.chars().take(width).collect());
            cur = rest;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = truncate(&format!("{last} …"), width);
        }
    }
    lines
}

/// A byte amount or rate, a count, or a share of the interval, as the cells show it.
pub(super) fn format_value(unit: Unit, v: f64, rate: bool, kilobytes: bool) -> String {
    match unit {
        Unit::Bytes => format!(
            "{}{}",
            human_bytes(v, kilobytes),
            if rate { "/s" } else { "" }
        ),
        Unit::Nanoseconds => format!("{:.2} %", v.min(99.99)),
        Unit::Calls => format!("{v:.0}"),
    }
}

/// Three significant digits at most, for terminals too narrow for [`format_value`].
pub(super) fn format_compact(unit: Unit, v: f64, rate: bool, kilobytes: bool) -> String {
    match unit {
        Unit::Bytes => {
            let units = ["B", "K", "M", "G", "T"];
            let (mut v, mut at) = (v, 0);
            // With -k, always K: never B, never above.
            while at < units.len() - 1 && if kilobytes { at == 0 } else { v >= 1000.0 } {
                v /= 1024.0;
                at += 1;
            }
            let digits = if v < 10.0 && v != 0.0 { 1 } else { 0 };
            format!("{v:.digits$}{}{}", units[at], if rate { "/s" } else { "" })
        }
        Unit::Nanoseconds => format!("{:.0}%", v.min(99.99)),
        Unit::Calls => format!("{v:.0}"),
    }
}

/// A difference between sources, signed.
pub(super) fn format_diff(unit: Unit, d: f64, rate: bool, kilobytes: bool) -> String {
    let sign = if d < 0.0 { '-' } else { '+' };
    match unit {
        Unit::Bytes => format!("{sign}{}", format_value(unit, d.abs(), rate, kilobytes)),
        Unit::Nanoseconds => format!("{sign}{:.2} %", d.abs()),
        Unit::Calls => format!("{sign}{:.0}", d.abs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_wrap() {
        assert_eq!(fit(10, &["long variant".into(), "short".into()]), "short");
        assert_eq!(fit(3, &["long variant".into(), "short".into()]), "sh…");
        assert_eq!(wrap("a bb ccc dddd", 6, 5), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("a bb ccc dddd", 6, 2), ["a bb", "ccc …"]);
        assert_eq!(wrap("abcdefgh", 3, 5), ["abc", "def", "gh"]);
    }

    #[test]
    fn values_format_like_the_batch_view() {
        assert_eq!(format_value(Unit::Bytes, 1536.0, true, false), "1.50 K/s");
        assert_eq!(format_value(Unit::Bytes, 1536.0, false, true), "1.50 K");
        assert_eq!(
            format_value(Unit::Nanoseconds, 150.0, true, false),
            "99.99 %"
        );
        assert_eq!(format_value(Unit::Calls, 12.4, true, false), "12");
        assert_eq!(format_diff(Unit::Bytes, -2048.0, true, false), "-2.00 K/s");
        assert_eq!(format_diff(Unit::Calls, 3.0, true, false), "+3");
        assert_eq!(format_compact(Unit::Bytes, 0.0, true, false), "0B/s");
        assert_eq!(format_compact(Unit::Bytes, 1536.0, true, false), "1.5K/s");
        assert_eq!(
            format_compact(Unit::Bytes, 700.0 * 1048576.0, true, false),
            "700M/s"
        );
        assert_eq!(
            format_compact(Unit::Bytes, 3.0 * 1048576.0, false, true),
            "3072K"
        );
        assert_eq!(format_compact(Unit::Nanoseconds, 12.4, true, false), "12%");
    }
}
