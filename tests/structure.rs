//! The crate's structure (issue 24), checked from its sources: imports
//! point one way, down the order `src/lib.rs` states; no file over 450
//! lines, no function over 80; `unsafe` only in `src/ffi.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

fn top_module(p: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rel = p.strip_prefix(&src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The ranks `src/lib.rs`'s dependency line gives (0: the top).
fn ranks() -> BTreeMap<String, usize> {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let line = lib
        .lines()
        .find(|l| l.starts_with("//! `{server") || l.starts_with("//! `server"))
        .expect("lib.rs states the dependency order");
    let order = line.trim_start_matches("//! ").trim_matches('`');
    let mut out = BTreeMap::new();
    for (rank, group) in order.split('→').enumerate() {
        for m in group.trim().trim_matches(['{', '}']).split(',') {
            out.insert(m.trim().to_owned(), rank);
        }
    }
    out
}

/// Every `crate::<module>` a file names (test files and test modules
/// apart: a test may reach up to start a server).
fn uses(text: &str) -> BTreeSet<String> {
    let code = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text);
    let mut out = BTreeSet::new();
    for part in code.split("crate::").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let name = match name.as_str() {
            "Error" => "error".to_owned(),
            "Config" => "config".to_owned(),
            _ => name,
        };
        out.insert(name);
    }
    out
}

#[test]
fn imports_point_down_the_order_lib_rs_states() {
    let ranks = ranks();
    let mut modules = BTreeSet::new();
    let mut wrong = Vec::new();
    for p in sources() {
        let module = top_module(&p);
        if module == "lib" || module == "main" {
            continue;
        }
        modules.insert(module.clone());
        let name = p.file_name().unwrap().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let Some(&mine) = ranks.get(&module) else {
            continue;
        };
        for used in uses(&std::fs::read_to_string(&p).unwrap()) {
            match ranks.get(&used) {
                Some(&theirs) if used != module && theirs <= mine => {
                    wrong.push(format!("{} uses crate::{used}", p.display()))
                }
                _ => {}
            }
        }
    }
    let missing: Vec<&String> = modules.iter().filter(|m| !ranks.contains_key(*m)).collect();
    assert!(missing.is_empty(), "lib.rs's order leaves out {missing:?}");
    assert!(
        wrong.is_empty(),
        "imports against the order:\n{}",
        wrong.join("\n")
    );
}

/// Lines of the longest functions of `text` (brace counting, as a reader
/// would see them).
fn long_functions(text: &str, max: usize) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
            "pub(crate) async fn ",
            "pub async fn ",
        ]
        .iter()
        .any(|p| l.starts_with(p));
        if !is_fn {
            i += 1;
            continue;
        }
        let (mut depth, mut started, mut j) = (0i64, false, i);
        while j < lines.len() {
            let code = lines[j].split("//").next().unwrap_or("");
            depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
            started |= code.contains('{');
            if (started && depth <= 0) || (!started && code.trim_end().ends_with(';')) {
                break;
            }
            j += 1;
        }
        if started && j - i + 1 > max {
            out.push((j - i + 1, l.chars().take(60).collect()));
        }
        i = j + 1;
    }
    out
}

#[test]
fn files_and_functions_stay_short_and_unsafe_stays_in_one_file() {
    let mut wrong = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap();
        let n = text.lines().count();
        if n > 450 {
            wrong.push(format!("{}: {n} lines", p.display()));
        }
        for (len, f) in long_functions(&text, 80) {
            wrong.push(format!("{}: `{f}` is {len} lines", p.display()));
        }
        let unsafe_code = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .any(|l| {
                l.contains("unsafe {") || l.contains("unsafe fn") || l.contains("unsafe impl")
            });
        if unsafe_code && !p.ends_with("src/ffi.rs") {
            wrong.push(format!("{}: unsafe outside src/ffi.rs", p.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
