//! The library's modules depend on each other one way (docs/DESIGN.md "Layers"). This reads
//! every source file under src/, collects the `crate::<module>` paths outside comments and test
//! code, and fails naming the circle when a module reaches back to one that depends on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules it names, with one place each is named.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn source_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                source_files(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
            files.push(path);
        }
    }
}

/// The top-level module a file under src/ belongs to ("fit" for src/fit/isoflop.rs).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let first = relative.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    source_files(src, &mut files);
    assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
    let mut graph = Graph::new();
    for file in files {
        let me = module_of(src, &file);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // Test code may reach anywhere; it starts at the first `#[cfg(test)]`.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let target: String =
                    line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !target.is_empty() && target != me && target.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                    let place = format!("{}:{}", file.display(), number + 1);
                    graph.entry(me.clone()).or_default().entry(target).or_insert(place);
                }
            }
        }
    }
    graph
}

/// A path from `from` to `to` along the graph's edges, if there is one.
fn path(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(route) = stack.pop() {
        let last = route.last().cloned().unwrap_or_default();
        if last == to {
            return Some(route);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in graph.get(&last).into_iter().flat_map(|edges| edges.keys()) {
            let mut longer = route.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    None
}

#[test]
fn the_library_modules_depend_on_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.get("plan").is_some_and(|edges| edges.contains_key("records")), "the scan finds plan -> records");
    let mut circles = Vec::new();
    for (module, edges) in &graph {
        for (target, place) in edges {
            if let Some(back) = path(&graph, target, module) {
                circles.push(format!("{module} -> {} (named at {place})", back.join(" -> ")));
            }
        }
    }
    assert!(circles.is_empty(), "module circles:\n{}", circles.join("\n"));
}
