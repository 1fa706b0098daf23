//! JSON Schemas of the cell and sequence files, for editors.
//!
//! taplo and the Even Better TOML extension read a `#:schema ./schema/cell.schema.json` line at
//! the top of a TOML file and then offer completion, hover docs and inline errors. The schemas
//! are generated from [`spec`](crate::spec), the same description `takt check` reads files
//! against, so they agree by construction. They are JSON Schema draft-07, the draft taplo
//! supports best.
//!
//! ```
//! let cell = takt_sequences::schema::cell_schema();
//! assert_eq!(cell["title"], "takt cell file");
//! ```

use serde_json::{Map, Value, json};

use crate::quantity::Dim;
use crate::spec::{self, TableSpec, Ty};

/// The schema of `cell.toml`.
pub fn cell_schema() -> Value {
    root(&spec::CELL_FILE, "takt cell file")
}

/// The schema of a sequence file.
pub fn sequence_schema() -> Value {
    root(&spec::SEQUENCE_FILE, "takt sequence file")
}

/// A schema as the pretty-printed text `takt schema` writes and `config/schema/` holds.
pub fn to_text(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).unwrap_or_default();
    s.push('\n');
    s
}

fn root(spec: &'static TableSpec, title: &str) -> Value {
    let mut defs = Map::new();
    let body = table(spec, &mut defs);
    let mut out = Map::new();
    out.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    out.insert("title".into(), json!(title));
    if let Value::Object(b) = body {
        out.extend(b);
    }
    out.insert("definitions".into(), Value::Object(defs));
    Value::Object(out)
}

fn table(spec: &'static TableSpec, defs: &mut Map<String, Value>) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in spec.fields {
        let mut p = match ty(&f.ty, defs) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut doc = f.doc.to_owned();
        if !f.only.is_empty() {
            doc.push_str(&format!(" (for {} steps)", f.only.join(" / ")));
        }
        p.insert("description".into(), json!(doc));
        p.insert(
            "markdownDescription".into(),
            json!(format!("{doc}\n\n```toml\n{} = {}\n```", f.name, f.example)),
        );
        props.insert(f.name.into(), Value::Object(p));
        if f.required {
            required.push(f.name);
        }
    }
    let mut t = Map::new();
    t.insert("type".into(), json!("object"));
    t.insert("description".into(), json!(spec.doc));
    t.insert("properties".into(), Value::Object(props));
    t.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        t.insert("required".into(), json!(required));
    }
    if !spec.one_of.is_empty() {
        let alts: Vec<Value> = spec
            .one_of
            .iter()
            .map(|k| json!({ "required": [k] }))
            .collect();
        t.insert("oneOf".into(), Value::Array(alts));
        // Keys that need a companion: a wait needs its timeout.
        t.insert("dependencies".into(), json!({ "wait": ["timeout"] }));
    }
    Value::Object(t)
}

fn reference(spec: &'static TableSpec, defs: &mut Map<String, Value>) -> Value {
    if !defs.contains_key(spec.id) {
        // Insert a placeholder first: specs are recursive (a step holds steps).
        defs.insert(spec.id.into(), Value::Null);
        let t = table(spec, defs);
        defs.insert(spec.id.into(), t);
    }
    json!({ "$ref": format!("#/definitions/{}", spec.id) })
}

fn ty(t: &Ty, defs: &mut Map<String, Value>) -> Value {
    match t {
        Ty::Str | Ty::Name | Ty::Expr => json!({ "type": "string" }),
        Ty::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Qty(dims) => json!({
            "type": "string",
            "pattern": Dim::schema_pattern(dims),
            "description": format!("{} with its unit ({})", dims[0].describe(), Dim::some_units(dims)),
        }),
        Ty::Enum(words) => json!({ "type": "string", "enum": words }),
        Ty::Names => json!({ "type": "array", "items": { "type": "string" } }),
        Ty::Table(s) => reference(s, defs),
        Ty::Array(s) => json!({ "type": "array", "items": reference(s, defs) }),
        Ty::MapOf(inner) => json!({ "type": "object", "additionalProperties": ty(inner, defs) }),
        Ty::OneOf(alts) => json!({ "anyOf": alts.iter().map(|a| ty(a, defs)).collect::<Vec<_>>() }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        for schema in [cell_schema(), sequence_schema()] {
            let text = to_text(&schema);
            let defs = schema["definitions"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for part in text.split("\"#/definitions/").skip(1) {
                let id = part.split('"').next().unwrap_or("");
                assert!(
                    defs.get(id).is_some_and(|d| d.is_object()),
                    "dangling $ref {id}"
                );
            }
        }
    }
}
