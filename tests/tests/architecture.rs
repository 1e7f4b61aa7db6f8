//! The runtime's files import only downward: every file is in a layer's folder (the module
//! map at the top of `runtime/src/lib.rs`), each import goes to its own layer or a lower
//! one, and no files import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first: each is a folder of `runtime/src` (with the file that declares
/// its modules beside it).
const LAYERS: &[&str] = &[
    "util",
    "transport",
    "protocol",
    "servers",
    "backends",
    "waiting",
    "algorithm",
    "api",
    "generated",
];

/// The runtime's source files (module paths) and their text before any `#[cfg(test)]`
/// module, comments removed.
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let module = path
                .strip_prefix(&root)
                .unwrap()
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: String = code
                .lines()
                .map(|line| line.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            files.insert(module, code);
        }
    }
    files
}

/// The files `code` (of file `module`) imports, out of `modules`: every `crate::a::b`
/// path (in `use` trees too) and `super::` path, resolved to the longest module it names.
fn imports(module: &str, code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let parent: Vec<&str> = match module.rsplit_once('/') {
        Some((parent, _)) => parent.split('/').collect(),
        None => Vec::new(),
    };
    let resolve = |segments: &[&str], found: &mut BTreeSet<String>| {
        for len in (1..=segments.len()).rev() {
            let candidate = segments[..len].join("/");
            if modules.contains(&candidate) {
                if candidate != module && candidate != "lib" {
                    found.insert(candidate);
                }
                return;
            }
        }
    };
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            // A path, or a use tree: `a::b::{c, d::e}`.
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
            let mut head = base.clone();
            head.extend(&path);
            if rest[end..].starts_with('{') {
                let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
                for item in rest[end + 1..close].split(',') {
                    let mut segments = head.clone();
                    segments.extend(item.trim().split("::").filter(|s| !s.is_empty()));
                    resolve(&segments, &mut found);
                }
            }
            resolve(&head, &mut found);
        }
    }
    // A parent file that uses its child modules by name (`mod attempts;` ... `attempts::`).
    for line in code.lines() {
        let line = line.trim();
        let child = line
            .strip_prefix("mod ")
            .or_else(|| line.strip_prefix("pub(crate) mod "))
            .or_else(|| line.strip_prefix("pub mod "))
            .and_then(|rest| rest.strip_suffix(';'));
        if let Some(child) = child {
            let path = if module == "lib" {
                child.to_string()
            } else {
                format!("{module}/{child}")
            };
            if module != "lib" && modules.contains(&path) && code.contains(&format!("{child}::")) {
                found.insert(path);
            }
        }
    }
    found
}

/// A file's layer: the folder it is in (`lib.rs`, which declares the layers, is above them).
fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    if module == "lib" {
        return Some((LAYERS.len(), "lib"));
    }
    let folder = module.split('/').next()?;
    LAYERS
        .iter()
        .position(|layer| *layer == folder)
        .map(|i| (i, LAYERS[i]))
}

#[test]
fn the_runtime_imports_only_downward_and_in_no_circle() {
    let files = sources();
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let graph: BTreeMap<&str, BTreeSet<String>> = files
        .iter()
        .map(|(module, code)| (module.as_str(), imports(module, code, &modules)))
        .collect();

    let unplaced: Vec<&String> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "files outside the layers' folders (move them into one, and name them in lib.rs's module map): {unplaced:?}"
    );

    let mut upward = Vec::new();
    for (module, targets) in &graph {
        let (from, from_name) = layer_of(module).unwrap();
        for target in targets {
            let (to, to_name) = layer_of(target).unwrap();
            if to > from {
                upward.push(format!(
                    "{module} ({from_name}) imports {target} ({to_name})"
                ));
            }
        }
    }
    assert!(upward.is_empty(), "imports going up: {upward:#?}");

    // No circle: a depth-first walk finds no edge back to a file on its own path.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|m| *m == module) {
            return Some(path[i..].iter().map(|m| m.to_string()).collect());
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for target in &graph[module] {
            if let Some(cycle) = visit(target, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "files importing each other: {cycle:?}");
    }
}

#[test]
fn the_check_sees_an_import_and_a_circle() {
    let modules: BTreeSet<String> = ["a", "b", "b/c", "lib"].map(String::from).into();
    let a = imports(
        "a",
        "use crate::b::{c::Thing, other};\nfn f() { crate::lib_fn(); }",
        &modules,
    );
    assert_eq!(a, ["b", "b/c"].map(String::from).into());
    let c = imports("b/c", "use super::Item;", &modules);
    assert_eq!(c, ["b"].map(String::from).into());
    let b = imports("b", "mod c;\nfn g() { c::h() }", &modules);
    assert_eq!(b, ["b/c"].map(String::from).into());
}
