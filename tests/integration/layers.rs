//! The code's layout keeps the pipeline readable: the lower stages of the
//! data path (source, mask, encode) know nothing of the stages above them,
//! and no two top-level modules import each other, directly or around a
//! circle. Read from the source files, comments and tests left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it imports (`crate::x`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let top = rel.components().next().expect("a file").as_os_str().to_string_lossy().replace(".rs", "");
            if matches!(top.as_str(), "cli" | "main" | "lib") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let uses = graph.entry(top.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String =
                        line[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !name.is_empty() && name != top {
                        uses.insert(name);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn lower_stages_do_not_import_the_stages_above_them() {
    let graph = imports();
    let allowed: &[(&str, &[&str])] = &[
        ("source", &["conn", "pgtools", "schema_script", "sql", "error"]),
        ("mask", &["copy_text", "error"]),
        ("encode", &[]),
        ("copy_text", &[]),
    ];
    for (stage, may) in allowed {
        let uses = graph.get(*stage).cloned().unwrap_or_default();
        let beyond: Vec<&String> = uses.iter().filter(|m| !may.contains(&m.as_str())).collect();
        assert!(beyond.is_empty(), "src/{stage} imports {beyond:?}, which it may not");
    }
}

#[test]
fn no_import_circles_between_modules() {
    let graph = imports();
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            panic!("import circle: {}", [&path[at..], &[node.to_string()]].concat().join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}
