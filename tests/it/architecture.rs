//! The structure ARCHITECTURE.md promises, checked on the source: the top-level modules of
//! `src/` import each other without a cycle, and the code map names every one of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::repo_root;

/// The top-level module a source file belongs to (`src/lifecycle/guards.rs` → `lifecycle`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Unit tests may reach anywhere; the layering is about production code.
            if path.file_name().is_some_and(|n| n == "tests") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_none_or(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// `crate::<module>` names in `text`, outside comments and the `#[cfg(test)]` module at the end
/// of a file.
fn imports(text: &str) -> BTreeSet<String> {
    let before_tests = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    // Doc links (`[`crate::x`]`) are not imports.
    let production: String = before_tests
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let production = production.as_str();
    let mut out = BTreeSet::new();
    for (i, _) in production.match_indices("crate::") {
        let rest = &production[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    // `use crate::{a, b::C}` groups.
    for (i, _) in production.match_indices("use crate::{") {
        let group = &production[i + "use crate::{".len()..];
        let group = &group[..group.find("};").unwrap_or(0)];
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    graph
}

/// A cycle through `graph`, if there is one (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "read too few modules: {graph:?}");
    assert!(
        graph["lifecycle"].contains("domain"),
        "the reader must see imports: {:?}",
        graph["lifecycle"]
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between modules: {}", cycle.join(" → "));
    }
}

#[test]
fn the_pure_core_imports_nothing_that_does_io() {
    let graph = module_graph();
    let io = [
        "store", "github", "inbox", "server", "worker", "lambda", "app", "config",
    ];
    for pure in ["domain", "lifecycle", "command", "conversation", "comments"] {
        let bad: Vec<_> = io.iter().filter(|m| graph[pure].contains(**m)).collect();
        assert!(bad.is_empty(), "`{pure}` imports {bad:?}");
    }
    assert_eq!(
        graph["domain"].iter().collect::<Vec<_>>(),
        ["ids"],
        "the domain imports only ids"
    );
}

#[test]
fn the_code_map_names_every_top_level_module() {
    let map = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let lib = std::fs::read_to_string(repo_root().join("src/lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "{modules:?}");
    let missing: Vec<_> = modules
        .iter()
        .filter(|m| !map.contains(&format!("**`{m}`**")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not map {missing:?}"
    );
}
