//! The JSON Schemas: committed copies are current, and the demo files validate against them.
//!
//! The check here is a small JSON Schema draft-07 validator for the keywords the schemas use
//! (type, properties, required, additionalProperties, enum, pattern, minimum, maximum, items,
//! $ref, anyOf, oneOf, dependencies) — enough to show that what editors will be told agrees
//! with the files `takt check` accepts and rejects.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use takt_sequences::schema::{cell_schema, sequence_schema, to_text};

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

/// `takt schema --out-dir config/schema` writes exactly these texts.
#[test]
fn committed_schemas_are_current() {
    let bless = std::env::var_os("TAKT_BLESS").is_some();
    for (name, schema) in [
        ("cell.schema.json", cell_schema()),
        ("sequence.schema.json", sequence_schema()),
    ] {
        let path = config().join("schema").join(name);
        let text = to_text(&schema);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is stale: run `takt schema --out-dir config/schema`",
            path.display()
        );
    }
}

/// The example files carry the `#:schema` line editors look for, pointing at the schemas.
#[test]
fn example_files_reference_the_schemas() {
    let cell = std::fs::read_to_string(config().join("cell.toml")).unwrap();
    assert!(cell.starts_with("#:schema ./schema/cell.schema.json\n"));
    let seq = std::fs::read_to_string(config().join("sequences/pick_and_place.toml")).unwrap();
    assert!(seq.starts_with("#:schema ../schema/sequence.schema.json\n"));
    assert!(
        config()
            .join("sequences")
            .join("../schema/sequence.schema.json")
            .exists()
    );
}

fn to_json(item: &toml_edit::Item) -> Value {
    use toml_edit::{Item, Value as V};
    fn value(v: &V) -> Value {
        match v {
            V::String(s) => Value::String(s.value().clone()),
            V::Integer(i) => Value::from(*i.value()),
            V::Float(f) => Value::from(*f.value()),
            V::Boolean(b) => Value::Bool(*b.value()),
            V::Datetime(d) => Value::String(d.value().to_string()),
            V::Array(a) => Value::Array(a.iter().map(value).collect()),
            V::InlineTable(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.to_owned(), value(v))).collect())
            }
        }
    }
    match item {
        Item::None => Value::Null,
        Item::Value(v) => value(v),
        Item::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.to_owned(), to_json(v))).collect())
        }
        Item::ArrayOfTables(a) => Value::Array(
            a.iter()
                .map(|t| Value::Object(t.iter().map(|(k, v)| (k.to_owned(), to_json(v))).collect()))
                .collect(),
        ),
    }
}

fn toml_file(text: &str) -> Value {
    let doc = toml_edit::Document::parse(text.to_owned()).unwrap();
    to_json(doc.as_item())
}

/// Collects every violation of `schema` by `v` (paths in JSON pointer style).
fn validate(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let id = r.trim_start_matches("#/definitions/");
        return validate(root, &root["definitions"][id], v, path, errors);
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: not {t}"));
            return;
        }
    }
    if let Some(words) = s.get("enum").and_then(Value::as_array) {
        if !words.contains(v) {
            errors.push(format!("{path}: {v} not in enum"));
        }
    }
    if let (Some(p), Some(text)) = (s.get("pattern").and_then(Value::as_str), v.as_str()) {
        let re = regex_automata::meta::Regex::new(p).unwrap();
        if !re.is_match(text) {
            errors.push(format!("{path}: {text:?} does not match the unit pattern"));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_i64), v.as_i64()) {
        if n < min {
            errors.push(format!("{path}: {n} < {min}"));
        }
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_i64), v.as_i64()) {
        if n > max {
            errors.push(format!("{path}: {n} > {max}"));
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(root, items, x, &format!("{path}/{i}"), errors);
        }
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        if !alts.iter().any(|a| {
            let mut e = Vec::new();
            validate(root, a, v, path, &mut e);
            e.is_empty()
        }) {
            errors.push(format!("{path}: matches none of anyOf"));
        }
    }
    let empty = Map::new();
    let obj = v.as_object().unwrap_or(&empty);
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let n = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                validate(root, a, v, path, &mut e);
                e.is_empty()
            })
            .count();
        if n != 1 {
            errors.push(format!("{path}: matches {n} of oneOf"));
        }
    }
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for k in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(k) {
                errors.push(format!("{path}: missing {k}"));
            }
        }
    }
    if let Some(deps) = s.get("dependencies").and_then(Value::as_object) {
        for (k, needs) in deps {
            if obj.contains_key(k) {
                for n in needs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !obj.contains_key(n) {
                        errors.push(format!("{path}: {k} needs {n}"));
                    }
                }
            }
        }
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, x) in obj {
        match props.and_then(|p| p.get(k)) {
            Some(ps) => validate(root, ps, x, &format!("{path}/{k}"), errors),
            None => match s.get("additionalProperties") {
                Some(Value::Bool(false)) => errors.push(format!("{path}: unknown key {k}")),
                Some(extra @ Value::Object(_)) => {
                    validate(root, extra, x, &format!("{path}/{k}"), errors)
                }
                _ => {}
            },
        }
    }
}

fn errors(schema: &Value, file: &Value) -> Vec<String> {
    let mut e = Vec::new();
    validate(schema, schema, file, "", &mut e);
    e
}

#[test]
fn demo_files_validate() {
    let cell = toml_file(&std::fs::read_to_string(config().join("cell.toml")).unwrap());
    assert_eq!(errors(&cell_schema(), &cell), Vec::<String>::new());
    let seq = toml_file(
        &std::fs::read_to_string(config().join("sequences/pick_and_place.toml")).unwrap(),
    );
    assert_eq!(errors(&sequence_schema(), &seq), Vec::<String>::new());
}

#[test]
fn schema_flags_what_the_checker_flags() {
    let seq = sequence_schema();
    let bad = |text: &str| errors(&seq, &toml_file(text));
    assert!(
        bad("[[step]]\nmove = \"pick\"\nsped = \"50 %\"\n")
            .iter()
            .any(|e| e.contains("unknown key sped"))
    );
    assert!(
        bad("[[step]]\nwait = \"part\"\n")
            .iter()
            .any(|e| e.contains("wait needs timeout"))
    );
    assert!(
        bad("[[step]]\ndwell = 150\n")
            .iter()
            .any(|e| e.contains("not string"))
    );
    assert!(
        bad("[[step]]\ndwell = \"150 mm\"\n")
            .iter()
            .any(|e| e.contains("unit pattern"))
    );
    assert!(
        bad("[[step]]\nname = \"x\"\n")
            .iter()
            .any(|e| e.contains("oneOf"))
    );
    assert!(
        bad("[[step]]\nmove = \"a\"\ndwell = \"1 s\"\n")
            .iter()
            .any(|e| e.contains("oneOf"))
    );
    let cell = cell_schema();
    let e = errors(
        &cell,
        &toml_file(
            "[cell]\nname = \"c\"\nsequence = \"s\"\n[buses.can0]\ninterface = \"can0\"\nbitrate = \"1 Mbit/s\"\nsync_period = \"2 ms\"\ncontroller_node = 200\n[devices]\n",
        ),
    );
    assert!(e.iter().any(|e| e.contains("200 > 127")), "{e:?}");
}
