//! `--check --json`: the facts the self-test establishes, as one JSON object. The checks in
//! `check.rs` note each fact here as they print its line; with `--json` the text goes nowhere
//! and this object is printed instead. Its shape is documented in mfiguard-run(1) (JSON
//! OUTPUT) and versioned by `check_version`: fields are only ever added.

use std::cell::RefCell;

use serde_json::{Map, Value};

thread_local! {
    static FACTS: RefCell<Option<Map<String, Value>>> = const { RefCell::new(None) };
}

/// The object at `path` (`/a/b`), made where missing.
fn slot<'m>(root: &'m mut Map<String, Value>, path: &str) -> Option<&'m mut Value> {
    let mut parts = path.trim_start_matches('/').split('/').peekable();
    let mut map = root;
    loop {
        let key = parts.next()?;
        if parts.peek().is_none() {
            return Some(map.entry(key).or_insert(Value::Null));
        }
        let next = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        map = next.as_object_mut()?;
    }
}

/// Sets the fact at `path` (while facts are being collected).
pub fn set(path: &str, value: impl Into<Value>) {
    FACTS.with(|f| {
        if let Some(root) = f.borrow_mut().as_mut() {
            if let Some(v) = slot(root, path) {
                *v = value.into();
            }
        }
    });
}

/// Appends to the list at `path`.
pub fn push(path: &str, value: impl Into<Value>) {
    FACTS.with(|f| {
        if let Some(root) = f.borrow_mut().as_mut() {
            if let Some(v) = slot(root, path) {
                if !v.is_array() {
                    *v = Value::Array(Vec::new());
                }
                if let Value::Array(a) = v {
                    a.push(value.into());
                }
            }
        }
    });
}

/// Runs `f` (the self-test, its text silenced) while collecting its facts.
pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Map<String, Value>) {
    FACTS.with(|c| *c.borrow_mut() = Some(Map::new()));
    let out = crate::sys::with_stdout_silenced(f);
    let facts = FACTS.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, facts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn facts_nest_and_are_kept_only_while_collecting() {
        super::set("/a/b", 1);
        let ((), m) = super::collect(|| {
            super::set("/a/b", 2);
            super::set("/a/c", "x");
            super::push("/l", 1);
            super::push("/l", 2);
        });
        assert_eq!(
            serde_json::Value::Object(m),
            serde_json::json!({"a": {"b": 2, "c": "x"}, "l": [1, 2]})
        );
    }
}
