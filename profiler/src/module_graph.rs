//! Keeps the crate's modules free of import cycles: no module may use one that uses it back,
//! directly or through others. Read from the sources themselves: every `crate::`, `super::`
//! and `self::` path outside test code is an edge to the module it names. A module naming its
//! own submodules is not an import (it declares them); a submodule naming its parent is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module path of each source file under `src`, with its text, test code left out.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading src") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            match parts.last().map(String::as_str) {
                // A file of tests only.
                Some("tests") => continue,
                Some("main") if parts.len() == 1 => parts = vec!["<main>".into()],
                Some("mod" | "lib") => {
                    parts.pop();
                }
                _ => {}
            }
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            let code = text
                .find("#[cfg(test)]\nmod tests {")
                .map_or(text.as_str(), |at| &text[..at]);
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), code);
        }
    }
    out
}

fn graph(modules: &BTreeMap<String, String>) -> Graph {
    let path = Regex::new(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)(::\{)?")
        .expect("a valid regex");
    let resolve = |segments: &[String]| {
        (1..=segments.len())
            .rev()
            .map(|n| segments[..n].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let mut edges = Graph::new();
    for (module, code) in modules {
        let here: Vec<String> = if module.is_empty() || module == "<main>" {
            Vec::new()
        } else {
            module.split("::").map(String::from).collect()
        };
        let mut named: Vec<Vec<String>> = Vec::new();
        for m in path.captures_iter(code) {
            let mut base = match &m[1] {
                "crate" => Vec::new(),
                "super" => here[..here.len().saturating_sub(1)].to_vec(),
                _ => here.clone(),
            };
            for segment in m[2].split("::").filter(|s| !s.is_empty()) {
                if segment == "super" {
                    base.pop();
                } else {
                    base.push(segment.to_string());
                }
            }
            let Some(open) = m.get(3) else {
                named.push(base);
                continue;
            };
            // `use a::{b, c::d, e::{f, g}}`: the first segment of each item is enough to find
            // a module.
            let rest = &code[open.end()..];
            let (mut depth, mut end) = (1, rest.len());
            for (i, c) in rest.char_indices() {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            for item in rest[..end].split([',', '{', '}']) {
                let first = item.trim().split("::").next().unwrap_or_default();
                let mut p = base.clone();
                if !first.is_empty() && first != "self" {
                    p.push(first.to_string());
                }
                named.push(p);
            }
        }
        for target in named.iter().filter_map(|p| resolve(p)) {
            let own_child = target.starts_with(&format!("{module}::"));
            if !target.is_empty() && target != *module && !own_child {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// A path from `from` back to `to`, if there is one.
fn path_back(edges: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path is never empty");
        if last == to {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in edges.get(last).into_iter().flatten() {
            let mut longer = path.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&modules(&src));
    assert!(
        edges.get("serve").is_some_and(|e| e.contains("session")),
        "the graph is read at all: {edges:?}"
    );
    let cycles: Vec<String> = edges
        .iter()
        .flat_map(|(m, targets)| targets.iter().map(move |t| (m, t)))
        .filter_map(|(m, t)| {
            path_back(&edges, t, m).map(|back| format!("{m} -> {}", back.join(" -> ")))
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn a_cycle_is_found() {
    let modules = BTreeMap::from([
        ("a".to_string(), "use crate::b::{X, c::Y};".to_string()),
        ("b".to_string(), "fn f() { crate::a::g() }".to_string()),
        ("b::c".to_string(), "use super::Z;".to_string()),
    ]);
    let edges = graph(&modules);
    assert_eq!(
        edges.get("a"),
        Some(&BTreeSet::from(["b".to_string(), "b::c".to_string()]))
    );
    assert_eq!(edges.get("b::c"), Some(&BTreeSet::from(["b".to_string()])));
    assert_eq!(
        path_back(&edges, "b", "a"),
        Some(vec!["b".to_string(), "a".to_string()])
    );
}
