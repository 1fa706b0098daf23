//! Reading TOML against the [`spec`](crate::spec): unknown keys, missing keys, wrong types.
//!
//! The files are parsed with `toml_edit`, which keeps the byte span of every key and value. The
//! reader walks a table, checks each key against its [`TableSpec`] and each value against the
//! key's [`Ty`], records one diagnostic per problem (never stopping), and hands the semantic
//! layer a [`Tab`] of the entries that passed — so a later check never sees a value of the
//! wrong type, and never reports a problem twice.

use toml_edit::{Item, TableLike, Value};

use crate::diag::{Diagnostics, FileId, Sources, Span};
use crate::quantity::{self, Dim, Quantity, QuantityError};
use crate::spec::{Field, TableSpec, Ty};

/// Walks one file, recording diagnostics.
pub(crate) struct Reader<'a> {
    pub sources: &'a Sources,
    pub diags: &'a mut Diagnostics,
    pub file: FileId,
}

/// One key of a [`Tab`] whose value has the right type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'t> {
    pub field: &'static Field,
    pub key: Span,
    pub value: Span,
    pub item: &'t Item,
    /// For [`Ty::OneOf`]: which alternative the value is.
    pub variant: usize,
}

/// A table that was checked against its spec.
#[derive(Debug, Clone)]
pub(crate) struct Tab<'t> {
    /// Where to point for problems with the table as a whole (its header or key).
    pub span: Span,
    /// "axis `x`", for messages.
    pub what: String,
    pub entries: Vec<Entry<'t>>,
    /// Keys that were written but whose value was refused (already reported): a later check
    /// must not call them missing.
    pub refused: Vec<&'static str>,
}

/// A name with where it was written.
pub(crate) type Named = (String, Span);

impl<'t> Tab<'t> {
    pub fn get(&self, name: &str) -> Option<&Entry<'t>> {
        self.entries.iter().find(|e| e.field.name == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True if the key was written at all, even with a value that was refused.
    pub fn written(&self, name: &str) -> bool {
        self.has(name) || self.refused.contains(&name)
    }

    pub fn str(&self, name: &str) -> Option<Named> {
        let e = self.get(name)?;
        Some((e.item.as_str()?.to_owned(), e.value))
    }

    pub fn int(&self, name: &str) -> Option<(i64, Span)> {
        let e = self.get(name)?;
        Some((e.item.as_integer()?, e.value))
    }

    pub fn bool(&self, name: &str) -> Option<(bool, Span)> {
        let e = self.get(name)?;
        Some((e.item.as_bool()?, e.value))
    }

    pub fn qty(&self, name: &str) -> Option<(Quantity, Span)> {
        let e = self.get(name)?;
        Some((e.item.as_str()?.parse().ok()?, e.value))
    }

    /// An array of names, each with its own span.
    pub fn names(&self, name: &str) -> Option<Vec<Named>> {
        let e = self.get(name)?;
        let arr = e.item.as_array()?;
        Some(
            arr.iter()
                .filter_map(|v| Some((v.as_str()?.to_owned(), span_or(e.value, v.span()))))
                .collect(),
        )
    }
}

/// `span` if the parser gave one, else the fallback (implicit tables have none).
pub(crate) fn span_or(fallback: Span, range: Option<std::ops::Range<usize>>) -> Span {
    match range {
        Some(r) => Span {
            file: fallback.file,
            start: r.start as u32,
            end: r.end as u32,
        },
        None => fallback,
    }
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => value_type_name(v),
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

fn ty_name(ty: &Ty) -> String {
    match ty {
        Ty::Str => "a string in quotes".into(),
        Ty::Name => "a name in quotes".into(),
        Ty::Int { .. } => "an integer".into(),
        Ty::Bool => "`true` or `false`".into(),
        Ty::Qty(dims) => format!("{} with its unit, in quotes", dims[0].describe()),
        Ty::Enum(_) => "one of the words listed below, in quotes".into(),
        Ty::Names => "a list of names, like `[\"a\", \"b\"]`".into(),
        Ty::Expr => "a condition in quotes".into(),
        Ty::Table(_) | Ty::MapOf(_) => "a table".into(),
        Ty::Array(_) => "a list of tables".into(),
        Ty::OneOf(alts) => alts.iter().map(ty_name).collect::<Vec<_>>().join(" or "),
    }
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = word.to_lowercase();
    let candidates: Vec<&'c str> = candidates.into_iter().collect();
    let close = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 4) && d < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c);
    // `vacuum` for `vacuum_on`: a word that begins exactly one name.
    close.or_else(|| {
        let mut starts = candidates
            .iter()
            .filter(|c| lower.len() >= 4 && c.to_lowercase().starts_with(&lower));
        match (starts.next(), starts.next()) {
            (Some(c), None) => Some(*c),
            _ => None,
        }
    })
}

/// "one of `a`, `b` or `c`".
pub(crate) fn one_of_list<'c>(items: impl IntoIterator<Item = &'c str>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| format!("`{s}`")).collect();
    match v.len() {
        0 => "nothing".into(),
        1 => v[0].clone(),
        n => format!("{} or {}", v[..n - 1].join(", "), v[n - 1]),
    }
}

impl<'a> Reader<'a> {
    pub fn whole_file(&self) -> Span {
        self.sources.span(self.file, 0..0)
    }

    pub fn span(&self, fallback: Span, range: Option<std::ops::Range<usize>>) -> Span {
        span_or(fallback, range)
    }

    /// Checks a table against its spec. `anchor` is where problems with the whole table point.
    pub fn table<'t>(
        &mut self,
        table: &'t dyn TableLike,
        spec: &'static TableSpec,
        anchor: Span,
        what: String,
    ) -> Tab<'t> {
        let mut entries = Vec::new();
        let mut refused = Vec::new();
        for (key, item) in table.iter() {
            let key_span = table
                .key(key)
                .and_then(|k| k.span())
                .map_or(anchor, |r| self.span(anchor, Some(r)));
            let value_span = self.span(key_span, item.span());
            match spec.field(key) {
                None => self.unknown_key(key, key_span, spec, &what),
                Some(field) => {
                    if let Some(variant) = self.check_value(item, &field.ty, key, field, value_span)
                    {
                        entries.push(Entry {
                            field,
                            key: key_span,
                            value: value_span,
                            item,
                            variant,
                        });
                    } else {
                        refused.push(field.name);
                    }
                }
            }
        }
        let tab = Tab {
            span: anchor,
            what,
            entries,
            refused,
        };
        self.check_presence(table, spec, &tab);
        tab
    }

    fn check_presence(&mut self, table: &dyn TableLike, spec: &'static TableSpec, tab: &Tab<'_>) {
        let kinds: Vec<&Entry<'_>> = tab
            .entries
            .iter()
            .filter(|e| spec.one_of.contains(&e.field.name))
            .collect();
        let kinds_written: Vec<&str> = spec
            .one_of
            .iter()
            .copied()
            .filter(|k| table.contains_key(k))
            .collect();
        if !spec.one_of.is_empty() {
            if kinds_written.is_empty() {
                self.diags
                    .error(
                        "step-without-kind",
                        format!("{} says nothing to do", tab.what),
                        tab.span,
                    )
                    .label("this step")
                    .help(format!(
                        "give it exactly one of {}",
                        one_of_list(spec.one_of.iter().copied())
                    ));
            } else if kinds_written.len() > 1 {
                let second = table
                    .key(kinds_written[1])
                    .and_then(|k| k.span())
                    .map_or(tab.span, |r| self.span(tab.span, Some(r)));
                self.diags
                    .error(
                        "step-with-two-kinds",
                        format!(
                            "{} is both a `{}` and a `{}` step",
                            tab.what, kinds_written[0], kinds_written[1]
                        ),
                        second,
                    )
                    .label("second kind")
                    .help("split it into two steps, one after the other");
            }
        }
        let kind = (kinds.len() == 1 && kinds_written.len() == 1).then(|| kinds[0].field.name);
        for field in spec.fields {
            if !field.only.is_empty() {
                if let (Some(kind), Some(e)) = (kind, tab.get(field.name)) {
                    if !field.only.contains(&kind) {
                        self.diags
                            .error(
                                "key-not-for-kind",
                                format!("`{}` does not apply to a `{kind}` step", field.name),
                                e.key,
                            )
                            .label("not used here")
                            .help(format!(
                                "`{}` belongs to {} steps; remove it here",
                                field.name,
                                one_of_list(field.only.iter().copied())
                            ));
                    }
                }
            }
            if field.required && !table.contains_key(field.name) {
                self.diags
                    .error(
                        "missing-key",
                        format!("{} has no `{}`", tab.what, field.name),
                        tab.span,
                    )
                    .label(format!("`{}` missing", field.name))
                    .help(missing_help(spec, field));
            }
        }
    }

    fn unknown_key(&mut self, key: &str, span: Span, spec: &'static TableSpec, what: &str) {
        let names = spec.fields.iter().map(|f| f.name);
        let help = match did_you_mean(key, names.clone()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("{} takes {}", spec.what, one_of_list(names)),
        };
        self.diags
            .error(
                "unknown-key",
                format!("unknown key `{key}` in {what}"),
                span,
            )
            .label("unknown key")
            .help(help);
    }

    /// True if the item has the shape of `ty` (without looking deeper), for [`Ty::OneOf`].
    fn shape_matches(item: &Item, ty: &Ty) -> bool {
        match ty {
            Ty::Str | Ty::Name | Ty::Expr | Ty::Enum(_) => item.is_str(),
            Ty::Qty(_) => item.is_str() || item.is_integer() || item.is_float(),
            Ty::Int { .. } => item.is_integer(),
            Ty::Bool => item.is_bool(),
            Ty::Names => item.is_array(),
            Ty::Table(_) | Ty::MapOf(_) => item.is_table_like(),
            Ty::Array(_) => item.is_array_of_tables() || item.is_array(),
            Ty::OneOf(alts) => alts.iter().any(|a| Self::shape_matches(item, a)),
        }
    }

    fn mismatch(&mut self, item: &Item, name: &str, field: &Field, ty: &Ty, span: Span) {
        self.diags
            .error(
                "wrong-type",
                format!(
                    "`{}` must be {}, not {}",
                    name,
                    ty_name(ty),
                    type_name(item)
                ),
                span,
            )
            .label(format!("{} here", type_name(item)))
            .help(format!("for example `{} = {}`", name, field.example));
    }

    /// Checks a value against its type; returns the `OneOf` alternative on success.
    pub fn check_value(
        &mut self,
        item: &Item,
        ty: &Ty,
        name: &str,
        field: &Field,
        span: Span,
    ) -> Option<usize> {
        match ty {
            Ty::OneOf(alts) => {
                let Some(i) = alts.iter().position(|a| Self::shape_matches(item, a)) else {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                };
                self.check_value(item, &alts[i], name, field, span)
                    .map(|_| i)
            }
            Ty::Str | Ty::Name | Ty::Expr => {
                if !item.is_str() {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                }
                if matches!(ty, Ty::Name) && item.as_str().is_some_and(|s| s.trim().is_empty()) {
                    self.diags
                        .error("empty-name", format!("`{}` is empty", name), span)
                        .help(format!("for example `{} = {}`", name, field.example));
                    return None;
                }
                Some(0)
            }
            Ty::Int { min, max } => {
                let Some(v) = item.as_integer() else {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                };
                if v < *min || v > *max {
                    self.diags
                        .error(
                            "out-of-range",
                            format!("`{}` is {v}, outside {min} to {max}", name),
                            span,
                        )
                        .label("out of range")
                        .help(field.doc);
                    return None;
                }
                Some(0)
            }
            Ty::Bool => {
                if !item.is_bool() {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                }
                Some(0)
            }
            Ty::Enum(words) => {
                let Some(s) = item.as_str() else {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                };
                if words.contains(&s) {
                    return Some(0);
                }
                let help = match did_you_mean(s, words.iter().copied()) {
                    Some(w) => format!("did you mean `\"{w}\"`?"),
                    None => format!("`{}` is {}", name, one_of_list(words.iter().copied())),
                };
                self.diags
                    .error("unknown-word", format!("`{}` cannot be `{s}`", name), span)
                    .label("not one of the choices")
                    .help(help);
                None
            }
            Ty::Qty(dims) => self
                .check_quantity(item, dims, name, field, span)
                .map(|_| 0),
            Ty::Names => {
                let Some(arr) = item.as_array() else {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                };
                let mut ok = true;
                for v in arr.iter() {
                    if !v.is_str() {
                        let s = span_or(span, v.span());
                        self.diags
                            .error(
                                "wrong-type",
                                format!(
                                    "`{}` lists names in quotes, not {}",
                                    name,
                                    value_type_name(v)
                                ),
                                s,
                            )
                            .help(format!("for example `{} = {}`", name, field.example));
                        ok = false;
                    }
                }
                ok.then_some(0)
            }
            Ty::Table(_) => {
                if !item.is_table_like() {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                }
                Some(0)
            }
            Ty::Array(_) => {
                if item.is_array_of_tables() {
                    return Some(0);
                }
                let Some(arr) = item.as_array() else {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                };
                let mut ok = true;
                for v in arr.iter() {
                    if !v.is_inline_table() {
                        let s = span_or(span, v.span());
                        self.diags
                            .error(
                                "wrong-type",
                                format!("`{}` lists tables, not {}", name, value_type_name(v)),
                                s,
                            )
                            .help(format!("for example `{} = {}`", name, field.example));
                        ok = false;
                    }
                }
                ok.then_some(0)
            }
            Ty::MapOf(inner) => {
                let Some(t) = item.as_table_like() else {
                    self.mismatch(item, name, field, ty, span);
                    return None;
                };
                // Only leaf values are checked here; tables inside are read by their owner.
                if matches!(inner, Ty::Table(_) | Ty::MapOf(_)) {
                    return Some(0);
                }
                let mut ok = true;
                for (k, v) in t.iter() {
                    let key_span = t
                        .key(k)
                        .and_then(|k| k.span())
                        .map_or(span, |r| span_or(span, Some(r)));
                    let vs = span_or(key_span, v.span());
                    if self.check_value(v, inner, k, field, vs).is_none() {
                        ok = false;
                    }
                }
                ok.then_some(0)
            }
        }
    }

    fn check_quantity(
        &mut self,
        item: &Item,
        dims: &[Dim],
        name: &str,
        field: &Field,
        span: Span,
    ) -> Option<Quantity> {
        let units = Dim::some_units(dims);
        let Some(s) = item.as_str() else {
            if item.is_integer() || item.is_float() {
                let number = item
                    .as_integer()
                    .map(|i| i.to_string())
                    .or_else(|| item.as_float().map(quantity::trim_float))
                    .unwrap_or_default();
                let value = item
                    .as_integer()
                    .map(|i| i as f64)
                    .or_else(|| item.as_float())
                    .unwrap_or(0.0);
                self.diags
                    .error("missing-unit", format!("`{}` needs a unit", name), span)
                    .label("a bare number")
                    .help(format!(
                        "quantities are strings with a unit: `{} = \"{}\"` ({} is {})",
                        name,
                        likely(dims[0], value, &number),
                        name,
                        dims[0].describe(),
                    ));
            } else {
                self.mismatch(item, name, field, &field.ty, span);
            }
            return None;
        };
        let raw = self.sources.text(span);
        // Map offsets in the decoded string onto the source when the string is written plainly.
        let inner = if raw.len() >= 2 && raw[1..raw.len() - 1] == *s {
            Some(span.within(1..raw.len() - 1))
        } else {
            None
        };
        let (_, unit_text, parts) = quantity::split(s);
        let unit_span = inner.map_or(span, |i| {
            i.within(parts.unit_start..parts.unit_start + unit_text.len())
        });
        match s.parse::<Quantity>() {
            Ok(q) if dims.contains(&q.dim) => Some(q),
            Ok(q) => {
                self.diags
                    .error(
                        "wrong-dimension",
                        format!(
                            "`{}` is {}, but `{}` is {}",
                            name,
                            dims[0].describe(),
                            s.trim(),
                            q.dim.describe()
                        ),
                        unit_span,
                    )
                    .label(format!("{} unit", q.dim.describe()))
                    .help(format!(
                        "use a unit like {units}: `{} = {}`",
                        name, field.example
                    ));
                None
            }
            Err(QuantityError::MissingUnit(n)) => {
                let value = n.replace('_', "").parse::<f64>().unwrap_or(0.0);
                self.diags
                    .error("missing-unit", format!("`{}` needs a unit", name), span)
                    .label("no unit")
                    .help(format!(
                        "write `{} = \"{}\"` ({} is {})",
                        name,
                        likely(dims[0], value, &n),
                        name,
                        dims[0].describe()
                    ));
                None
            }
            Err(QuantityError::UnknownUnit { unit, suggestion }) => {
                let help = match suggestion {
                    Some(sugg) => format!("did you mean `{sugg}`?"),
                    None => format!("`{}` takes {}: {units}", name, dims[0].describe()),
                };
                self.diags
                    .error("unknown-unit", format!("unknown unit `{unit}`"), unit_span)
                    .label("unknown unit")
                    .help(help);
                None
            }
            Err(e) => {
                self.diags
                    .error("bad-quantity", format!("`{}`: {e}", name), span)
                    .help(format!("for example `{} = {}`", name, field.example));
                None
            }
        }
    }

    /// The elements of an array of tables (`[[step]]` or `step = [{...}]`), with spans.
    pub fn tables_of<'t>(&self, item: &'t Item, fallback: Span) -> Vec<(&'t dyn TableLike, Span)> {
        let mut out: Vec<(&'t dyn TableLike, Span)> = Vec::new();
        if let Some(aot) = item.as_array_of_tables() {
            for t in aot.iter() {
                out.push((t as &dyn TableLike, span_or(fallback, t.span())));
            }
        } else if let Some(arr) = item.as_array() {
            for v in arr.iter() {
                if let Some(t) = v.as_inline_table() {
                    out.push((t as &dyn TableLike, span_or(fallback, t.span())));
                }
            }
        }
        out
    }

    /// The entries of a table of named things (`[axes.x]`, `[axes.y]`), with key spans.
    pub fn named<'t>(&self, item: &'t Item, fallback: Span) -> Vec<(String, Span, &'t Item)> {
        let Some(t) = item.as_table_like() else {
            return Vec::new();
        };
        t.iter()
            .map(|(k, v)| {
                let ks = t
                    .key(k)
                    .and_then(|k| k.span())
                    .map_or(fallback, |r| span_or(fallback, Some(r)));
                (k.to_owned(), ks, v)
            })
            .collect()
    }
}

/// The quantity a bare number most likely meant: `150` for a dwell is 150 ms, `1000000` for a
/// bit rate is 1 Mbit/s.
fn likely(dim: Dim, value: f64, written: &str) -> String {
    match dim {
        Dim::Time if value >= 10.0 => format!("{written} ms"),
        Dim::Bitrate if value >= 1e6 => format!("{} Mbit/s", quantity::trim_float(value / 1e6)),
        Dim::Bitrate if value >= 1e3 => format!("{} kbit/s", quantity::trim_float(value / 1e3)),
        Dim::Bitrate => format!("{written} kbit/s"),
        _ => format!(
            "{written} {}",
            Dim::some_units(&[dim]).split(", ").next().unwrap_or("")
        ),
    }
}

/// How to add a missing key: top-level tables as headers, the rest as `key = value`.
fn missing_help(spec: &TableSpec, field: &Field) -> String {
    let name = field.name;
    let top = spec.id.ends_with("_file");
    match field.ty {
        Ty::MapOf(Ty::Table(t)) if top => {
            format!(
                "{} Add a `[{name}.<name>]` table for each {}.",
                field.doc, t.what
            )
        }
        Ty::Table(_) if top => format!("{} Add a `[{name}]` table.", field.doc),
        Ty::Array(_) if top => format!("{} Add `[[{name}]]` tables.", field.doc),
        _ => format!("{} Add e.g. `{name} = {}`", field.doc, field.example),
    }
}
