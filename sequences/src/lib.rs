//! takt-sequences: the cell and sequence files line engineers write, checked and compiled.
//!
//! A line engineer describes the cell (`cell.toml`: buses, devices, axes, I/O, teach points,
//! interlocks, stop categories) and its sequences (`sequences/*.toml`: steps) in TOML. This
//! crate reads them, reports *every* problem with file, line, column and a hint
//! ([`diag`]), computes the planned bus load ([`busload`]), and compiles the result into a
//! flat, index-based [`program::Program`] the real-time cycle executes without strings, maps
//! or allocation. [`schema`] prints the JSON Schemas editors use for completion.
//!
//! ```
//! use takt_sequences::{check_source, MemorySource};
//!
//! let cell = r#"
//! [cell]
//! name = "bench"
//! sequence = "main"
//! [buses.can0]
//! interface = "vcan0"
//! bitrate = "1 Mbit/s"
//! sync_period = "2 ms"
//! controller_node = 127
//! [devices.io]
//! node = 10
//! kind = "io"
//! profile = "io_8in_8out"
//! [inputs]
//! start = { device = "io", bit = 0 }
//! "#;
//! let main = r#"
//! [[step]]
//! wait = "start"
//! timeout = "10 s"
//! "#;
//! let checked = check_source("cell.toml", cell, &MemorySource::new([("main", main)]));
//! assert_eq!(checked.diagnostics.error_count(), 0);
//! let program = checked.program.unwrap();
//! assert_eq!(program.code.len(), 2); // the wait, and the end of the pass
//! ```
#![deny(missing_docs)]

pub mod busload;
mod cell;
mod compile;
pub mod diag;
pub mod expr;
pub mod pdo;
pub mod program;
pub mod quantity;
mod reader;
pub mod schema;
mod sequence;
pub mod spec;

use std::path::{Path, PathBuf};

use diag::{Diagnostics, FileId, Sources, Span};
use reader::Reader;

pub use busload::BusLoad;
pub use diag::{Diagnostic, Severity};
pub use program::Program;

/// Where sequence files come from: a folder on disk, or memory (tests).
pub trait SequenceSource {
    /// Names of the available sequences (file stems), sorted; `Err` if the folder is missing.
    fn list(&self) -> Result<Vec<String>, String>;
    /// The display name and text of one sequence.
    fn read(&self, name: &str) -> Result<(String, String), String>;
}

/// Sequences in a folder: `<dir>/<name>.toml`.
#[derive(Debug, Clone)]
pub struct DirSource {
    /// The folder.
    pub dir: PathBuf,
}

impl SequenceSource for DirSource {
    fn list(&self) -> Result<Vec<String>, String> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> Result<(String, String), String> {
        let path = self.dir.join(format!("{name}.toml"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((path.display().to_string(), text))
    }
}

/// Sequences held in memory, shown as `sequences/<name>.toml`.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    files: Vec<(String, String)>,
}

impl MemorySource {
    /// From `(name, text)` pairs.
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut files: Vec<(String, String)> = files
            .into_iter()
            .map(|(n, t)| (n.to_owned(), t.to_owned()))
            .collect();
        files.sort();
        MemorySource { files }
    }
}

impl SequenceSource for MemorySource {
    fn list(&self) -> Result<Vec<String>, String> {
        Ok(self.files.iter().map(|f| f.0.clone()).collect())
    }

    fn read(&self, name: &str) -> Result<(String, String), String> {
        self.files
            .iter()
            .find(|f| f.0 == name)
            .map(|f| (format!("sequences/{name}.toml"), f.1.clone()))
            .ok_or_else(|| format!("no sequence {name}"))
    }
}

/// What was checked, for the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Sequence names read.
    pub sequences: Vec<String>,
    /// Counts of what the cell defines.
    pub buses: usize,
    /// Devices.
    pub devices: usize,
    /// Gantry axes.
    pub axes: usize,
    /// Conveyors.
    pub conveyors: usize,
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Teach points.
    pub teach_points: usize,
    /// Interlocks.
    pub interlocks: usize,
    /// Steps over all sequences.
    pub steps: usize,
}

/// The outcome of checking a cell and its sequences.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Every file read (for rendering diagnostics).
    pub sources: Sources,
    /// Every problem found.
    pub diagnostics: Diagnostics,
    /// The compiled program, if there was no error.
    pub program: Option<Program>,
    /// Planned load of each bus.
    pub bus_loads: Vec<BusLoad>,
    /// What was checked.
    pub summary: Summary,
}

/// Checks the cell file at `path` and the sequences in its sequences folder.
pub fn check_file(path: &Path) -> Checked {
    let display = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let mut diagnostics = Diagnostics::default();
            diagnostics
                .error_nowhere("cannot-read", format!("cannot read {display}: {e}"))
                .help("give the path of the cell file, e.g. `takt check config/cell.toml`");
            return Checked {
                sources: Sources::default(),
                diagnostics,
                program: None,
                bus_loads: Vec::new(),
                summary: Summary::default(),
            };
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // The folder is only known once the cell is read; a source that reads lazily resolves it.
    let lazy = LazyDir { base };
    check_with(&display, &text, &lazy)
}

struct LazyDir {
    base: PathBuf,
}

/// Checks a cell given as text; sequences come from `sequences`.
pub fn check_source(cell_name: &str, cell_text: &str, sequences: &dyn SequenceSource) -> Checked {
    check_inner(cell_name, cell_text, &|_dir: &str| {
        Box::new(Fixed(sequences)) as Box<dyn SequenceSource + '_>
    })
}

struct Fixed<'a>(&'a dyn SequenceSource);

impl SequenceSource for Fixed<'_> {
    fn list(&self) -> Result<Vec<String>, String> {
        self.0.list()
    }
    fn read(&self, name: &str) -> Result<(String, String), String> {
        self.0.read(name)
    }
}

fn check_with(cell_name: &str, cell_text: &str, lazy: &LazyDir) -> Checked {
    check_inner(cell_name, cell_text, &|dir: &str| {
        Box::new(DirSource {
            dir: lazy.base.join(dir),
        }) as Box<dyn SequenceSource>
    })
}

type SourceFor<'s> = dyn Fn(&str) -> Box<dyn SequenceSource + 's> + 's;

fn check_inner(cell_name: &str, cell_text: &str, source_for: &SourceFor<'_>) -> Checked {
    let mut sources = Sources::default();
    let mut diagnostics = Diagnostics::default();
    let cell_file = sources.add(cell_name, cell_text);
    let mut summary = Summary::default();
    let Some(doc) = parse_toml(&sources, &mut diagnostics, cell_file) else {
        return Checked {
            sources,
            diagnostics,
            program: None,
            bus_loads: Vec::new(),
            summary,
        };
    };
    let cell = {
        let mut r = Reader {
            sources: &sources,
            diags: &mut diagnostics,
            file: cell_file,
        };
        r.read_cell(doc.as_table())
    };
    summary.buses = cell.buses.len();
    summary.devices = cell.devices.len();
    summary.axes = cell.axes.iter().filter(|a| !a.config.conveyor).count();
    summary.conveyors = cell.axes.iter().filter(|a| a.config.conveyor).count();
    summary.inputs = cell.inputs.len();
    summary.outputs = cell.outputs.len();
    summary.teach_points = cell.teach_points.len();
    summary.interlocks = cell.interlocks.len();

    let seq_source = source_for(&cell.sequences_dir);
    let mut seqs = Vec::new();
    let mut unparsed = Vec::new();
    match seq_source.list() {
        Err(e) => {
            let at = cell
                .sequence
                .as_ref()
                .map_or(sources.span(cell_file, 0..0), |s| s.1);
            diagnostics
                .error("no-sequences-dir", format!("cannot read the sequences folder `{}`", cell.sequences_dir), at)
                .help(format!("{e}; put the sequence files in `{}` next to the cell file, or set `sequences_dir` in `[cell]`", cell.sequences_dir));
        }
        Ok(names) => {
            for name in names {
                let (display, text) = match seq_source.read(&name) {
                    Ok(x) => x,
                    Err(e) => {
                        diagnostics.error_nowhere(
                            "cannot-read",
                            format!("cannot read sequence `{name}`: {e}"),
                        );
                        continue;
                    }
                };
                let file = sources.add(display, text);
                let Some(doc) = parse_toml(&sources, &mut diagnostics, file) else {
                    unparsed.push(name);
                    continue;
                };
                let mut r = Reader {
                    sources: &sources,
                    diags: &mut diagnostics,
                    file,
                };
                let seq = r.read_sequence(&name, doc.as_table(), &cell);
                summary.steps += sequence::count_steps(&seq);
                summary.sequences.push(name);
                seqs.push(seq);
            }
        }
    }
    let set = sequence::SequenceSet {
        cell: &cell,
        seqs,
        unparsed,
    };
    // Checks across sequences go against the cell file for the entry, and each file for the rest.
    {
        let mut r = Reader {
            sources: &sources,
            diags: &mut diagnostics,
            file: cell_file,
        };
        r.check_sequences(&set, cell.sequence.as_ref());
    }
    let entry = cell.sequence.as_ref().and_then(|(n, _)| set.find(n));
    if let Some(entry) = entry {
        warn_unused(&set, entry, &sources, &mut diagnostics);
    }
    let step_guards = resolve_step_guards(&cell, &set, &mut diagnostics);
    let program = match entry {
        Some(entry) if !diagnostics.has_errors() => {
            Some(compile::compile(&cell, &set, entry, &sources, &step_guards))
        }
        _ => None,
    };
    let bus_loads = cell.bus_loads.clone();
    Checked {
        sources,
        diagnostics,
        program,
        bus_loads,
        summary,
    }
}

fn warn_unused(
    set: &sequence::SequenceSet<'_>,
    entry: usize,
    sources: &Sources,
    diags: &mut Diagnostics,
) {
    let mut used = vec![false; set.seqs.len()];
    let mut work = vec![entry];
    while let Some(i) = work.pop() {
        if std::mem::replace(&mut used[i], true) {
            continue;
        }
        for step in &set.seqs[i].steps {
            if let sequence::Kind::Call((callee, _)) = &step.kind {
                if let Some(j) = set.find(callee) {
                    work.push(j);
                }
            }
        }
    }
    for (i, seq) in set.seqs.iter().enumerate() {
        if !used[i] {
            diags
                .warning(
                    "unused-sequence",
                    format!("sequence `{}` is never run or called", seq.name),
                    sources.span(seq.file, 0..0),
                )
                .help(format!(
                    "the cell runs `{}`; call this one from it, or remove the file",
                    set.seqs[entry].name
                ));
        }
    }
}

/// Resolves `guards = { steps = [...] }` names: `sequence.step`, or `step` if unique.
fn resolve_step_guards(
    cell: &cell::Cell,
    set: &sequence::SequenceSet<'_>,
    diags: &mut Diagnostics,
) -> Vec<Vec<(usize, sequence::StepIx)>> {
    let mut out = Vec::new();
    for il in &cell.interlocks {
        let cell::GuardsDef::Steps(names) = &il.guards else {
            continue;
        };
        let mut found = Vec::new();
        for (name, span) in names {
            let hits: Vec<(usize, sequence::StepIx)> = match name.split_once('.') {
                Some((s, step)) => set
                    .find(s)
                    .and_then(|i| set.seqs[i].by_name.get(step).map(|ix| (i, *ix)))
                    .into_iter()
                    .collect(),
                None => set
                    .seqs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.by_name.get(name).map(|ix| (i, *ix)))
                    .collect(),
            };
            match hits.len() {
                0 => {
                    let all: Vec<String> = set
                        .seqs
                        .iter()
                        .flat_map(|s| s.by_name.keys().map(move |k| format!("{}.{k}", s.name)))
                        .collect();
                    let help = reader::did_you_mean(name, all.iter().map(String::as_str))
                        .map_or("name steps as `sequence.step`".into(), |n| {
                            format!("did you mean `{n}`?")
                        });
                    diags
                        .error("unknown-step", format!("no step is called `{name}`"), *span)
                        .label("unknown step")
                        .help(help);
                }
                1 => found.extend(hits),
                _ => {
                    diags
                        .error(
                            "ambiguous-step",
                            format!("several sequences have a step `{name}`"),
                            *span,
                        )
                        .help(format!(
                            "say which: {}",
                            reader::one_of_list(hits.iter().map(|h| set.seqs[h.0].name.as_str()))
                        ));
                }
            }
        }
        out.push(found);
    }
    out
}

/// Parses TOML, reporting every syntax error (not only the first).
///
/// `toml_edit` stops at the first error. To find the next, the offending line is blanked out
/// (spaces keep every byte offset, so later locations stay true) and the text parsed again,
/// up to [`MAX_SYNTAX_ERRORS`] times. A file with a syntax error is not checked further: what
/// blanking hides would show up as false "missing key" errors.
fn parse_toml(
    sources: &Sources,
    diags: &mut Diagnostics,
    file: FileId,
) -> Option<toml_edit::Document<String>> {
    let original = sources.file(file).text.to_string();
    let mut text = original.clone();
    let mut found = 0;
    let mut blanked_lines: Vec<usize> = Vec::new();
    loop {
        let error = match toml_edit::Document::parse(text.clone()) {
            Ok(doc) if found == 0 => return Some(doc),
            Ok(_) => return None,
            Err(e) => e,
        };
        let span = sources.span(file, error.span().unwrap_or(0..0));
        let message = error
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned();
        let (line, _) = sources.line_col(span);
        if blanked_lines.contains(&line) {
            return None;
        }
        diags
            .error("toml-syntax", format!("TOML syntax: {message}"), span)
            .label("here")
            .help(syntax_hint(&original, span));
        found += 1;
        if found >= MAX_SYNTAX_ERRORS {
            return None;
        }
        blanked_lines.push(line);
        let start = text[..span.start as usize].rfind('\n').map_or(0, |i| i + 1);
        let end = text[span.start as usize..]
            .find('\n')
            .map_or(text.len(), |i| span.start as usize + i);
        // One space per byte, so that every later offset stays where it was.
        let blank: String = text[start..end]
            .chars()
            .map(|c| " ".repeat(c.len_utf8()))
            .collect();
        text.replace_range(start..end, &blank);
    }
}

/// Most syntax errors reported per file; past that, one mistake is likely confusing the rest.
const MAX_SYNTAX_ERRORS: usize = 10;

fn syntax_hint(text: &str, span: Span) -> String {
    let line_start = text[..span.start as usize].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[span.start as usize..]
        .find('\n')
        .map_or(text.len(), |i| span.start as usize + i);
    let line = &text[line_start..line_end];
    if line.matches('"').count() % 2 == 1 {
        return "a string is not closed: end it with `\"` on the same line".into();
    }
    if line.contains('=') {
        let rhs = line.split_once('=').map_or("", |x| x.1).trim();
        if !rhs.is_empty()
            && !rhs.starts_with(['"', '\'', '[', '{', 't', 'f'])
            && !rhs.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        {
            return format!(
                "text values go in quotes: `{} = \"{}\"`",
                line.split_once('=').map_or("", |x| x.0).trim(),
                rhs
            );
        }
        if rhs.chars().next().is_some_and(|c| c.is_ascii_digit()) && rhs.contains(' ') {
            return format!("a quantity is a string with its unit, in quotes: `\"{rhs}\"`");
        }
    }
    "strings go in quotes, tables start with `[name]` on a line of their own".into()
}
