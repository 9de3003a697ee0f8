//! The layers of `src/` (README, "Architecture") hold: each folder imports only folders below it,
//! and only the command layer speaks clap or anyhow. A change that breaks a layer fails here.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each folder (or top-level file) and what it may import besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("cmd", &["mirror", "translate", "ops", "config", "transform", "kafka", "state_dir", "error"]),
    ("mirror", &["translate", "ops", "config", "transform", "kafka", "state_dir", "error"]),
    ("translate", &["config", "kafka", "state_dir", "error"]),
    ("ops", &["config", "error"]),
    ("config", &["transform", "error"]),
    ("transform", &["error"]),
    ("kafka", &["error"]),
    ("state_dir", &["error"]),
    ("error", &[]),
];

const LAYERS: &[&str] =
    &["cmd", "mirror", "translate", "ops", "config", "transform", "kafka", "state_dir", "error"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layer a file of `src/` belongs to, or None for the crate root and the binary.
fn layer_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let layer = first.trim_end_matches(".rs").to_string();
    (layer != "lib" && layer != "main").then_some(layer)
}

/// The code of a file without its unit tests (tests may reach anywhere).
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("readable source");
    text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
}

/// The layers a piece of code names as `crate::LAYER`.
fn imported_layers(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if LAYERS.contains(&name.as_str()) {
            out.push(name);
        }
    }
    out
}

#[test]
fn every_folder_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 20, "found only {} sources under {}", files.len(), src.display());
    let mut breaches = Vec::new();
    for file in &files {
        let Some(layer) = layer_of(&src, file) else { continue };
        let may = allowed.get(layer.as_str()).unwrap_or_else(|| {
            panic!(
                "{} is in no known layer: add its folder to ALLOWED (and README's Architecture)",
                file.display()
            )
        });
        for imported in imported_layers(&code(file)) {
            if imported != layer && !may.contains(&imported.as_str()) {
                breaches.push(format!("{} ({layer}) imports crate::{imported}", file.display()));
            }
        }
    }
    breaches.sort();
    breaches.dedup();
    assert!(breaches.is_empty(), "layer breaches:\n{}", breaches.join("\n"));
}

#[test]
fn only_the_command_layer_uses_clap_and_anyhow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !matches!(layer_of(&src, f).as_deref(), Some("cmd") | None))
        .filter(|f| {
            let code = code(f);
            code.contains("clap::") || code.contains("anyhow")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "clap or anyhow below the command layer: {offenders:?}");
}

#[test]
fn the_checker_sees_an_import() {
    assert_eq!(imported_layers("use crate::mirror::shard::Shard; crate::cmd::run"), ["mirror", "cmd"]);
    assert!(imported_layers("use rdkafka::crate_like;").is_empty());
}

/// The module path of a file of `src/`: `src/mirror/shard/mod.rs` is `mirror::shard`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != "mod").collect();
    parts.join("::")
}

/// The modules of `modules` that `code` names by an absolute `crate::` path (the longest
/// module each path starts with).
fn imported_modules<'a>(code: &str, modules: &'a [String]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let path: String =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
        let best = modules
            .iter()
            .filter(|m| path == **m || path.starts_with(&format!("{m}::")))
            .max_by_key(|m| m.len());
        if let Some(m) = best {
            out.push(m.as_str());
        }
    }
    out
}

/// A cycle in `edges`, as the modules around it, if there is one.
fn find_cycle(edges: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, Vec<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node.as_str()) {
            if let Some(cycle) = visit(node, edges, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn no_two_files_import_each_other_even_by_way_of_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let files: Vec<&PathBuf> = files.iter().filter(|f| layer_of(&src, f).is_some()).collect();
    let modules: Vec<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, module) in files.iter().zip(&modules) {
        let mut imports: Vec<String> = imported_modules(&code(file), &modules)
            .into_iter()
            // A module's own children (`crate::mirror::shard` naming `crate::mirror::shard::x`)
            // and the module itself are not imports between files.
            .filter(|m| *m != module && !m.starts_with(&format!("{module}::")))
            .map(str::to_string)
            .collect();
        imports.sort();
        imports.dedup();
        edges.insert(module.clone(), imports);
    }
    assert!(edges.len() > 20, "{edges:?}");
    if let Some(cycle) = find_cycle(&edges) {
        panic!("files import each other in a circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut e: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (a, b) in pairs {
            e.entry(a.to_string()).or_default().push(b.to_string());
            e.entry(b.to_string()).or_default();
        }
        e
    };
    assert_eq!(find_cycle(&edges(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".to_string(), "b".into(), "c".into(), "a".into()])
    );
    let modules = vec!["mirror".to_string(), "mirror::shard".to_string()];
    assert_eq!(imported_modules("use crate::mirror::shard::Shard;", &modules), ["mirror::shard"]);
}
