//! Diagnostics: what is wrong, where (file, line, column), and what to do about it.
//!
//! Checking collects every problem into [`Diagnostics`] instead of stopping at the first, so a
//! line engineer fixes a file in one pass. Each [`Diagnostic`] points at a byte range of one
//! source file; [`Sources`] turns that into line and column and renders it with `miette`
//! (a caret under the offending text, and a hint).
//!
//! ```
//! use takt_sequences::diag::{Diagnostics, Sources};
//!
//! let mut sources = Sources::default();
//! let file = sources.add("cell.toml", "bitrate = 1000000\n");
//! let mut diags = Diagnostics::default();
//! diags
//!     .error("bare-number", "`bitrate` needs a unit", sources.span(file, 10..17))
//!     .help("write `bitrate = \"1 Mbit/s\"`");
//! let text = sources.render_plain(&diags.list()[0], 80);
//! assert!(text.contains("cell.toml:1:11"));
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// The byte range.
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// A sub-range, given as offsets relative to this span's start, clamped to it.
    pub fn within(self, range: Range<usize>) -> Span {
        let len = self.end - self.start;
        let start = (range.start as u32).min(len);
        let end = (range.end as u32).clamp(start, len);
        Span {
            file: self.file,
            start: self.start + start,
            end: self.start + end,
        }
    }
}

/// One loaded file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in messages (the path as the user gave it).
    pub name: String,
    /// The text.
    pub text: Arc<str>,
}

/// Every file read during a check, so diagnostics can be rendered with their source.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// The file with this id.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// All files, in the order they were read.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// A span in `file`, clamped to the file's length and to char boundaries.
    pub fn span(&self, file: FileId, range: Range<usize>) -> Span {
        let text = &self.file(file).text;
        let mut start = range.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = range.end.clamp(start, text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// 1-based line and column (in characters) of a span's start.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let text = &self.file(span.file).text;
        let start = (span.start as usize).min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The source text under a span.
    pub fn text(&self, span: Span) -> &str {
        let text = &self.file(span.file).text;
        text.get(span.range()).unwrap_or("")
    }

    /// Renders a diagnostic as miette does on a terminal without colours, `width` columns
    /// wide. Golden tests compare this text.
    pub fn render_plain(&self, diag: &Diagnostic, width: usize) -> String {
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(width)
                .with_links(false);
        let mut out = String::new();
        let report = self.report(diag);
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
        out
    }

    /// A miette report of one diagnostic, carrying its source file.
    pub fn report(&self, diag: &Diagnostic) -> RenderedDiagnostic {
        let file = diag.span.map(|s| self.file(s.file));
        let mut diag = diag.clone();
        // A second place far from the first would make miette print every line in between:
        // name its line in the hint instead.
        if let Some(primary) = diag.span {
            let line = self.line_col(primary).0;
            let (near, far): (Vec<_>, Vec<_>) = diag
                .related
                .drain(..)
                .partition(|(s, _)| self.line_col(*s).0.abs_diff(line) <= 6);
            diag.related = near;
            for (s, text) in far {
                let (l, c) = self.line_col(s);
                let note = format!("{text}: line {l}, column {c}");
                diag.help = Some(match diag.help.take() {
                    Some(h) => format!("{h} ({note})"),
                    None => note,
                });
            }
        }
        RenderedDiagnostic {
            diag,
            source: file.map(|f| {
                miette::NamedSource::new(f.name.clone(), f.text.to_string()).with_language("toml")
            }),
        }
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The files are usable, but probably not as meant.
    Warning,
    /// The files must not be run.
    Error,
}

/// A problem found in a cell or sequence file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable short name, shown as `takt::<code>`.
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where; `None` only for problems with no file to point into (a missing file).
    pub span: Option<Span>,
    /// The text under the caret.
    pub label: Option<String>,
    /// Further places in the same file that explain the problem.
    pub related: Vec<(Span, String)>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// Adds a hint.
    pub fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the text under the caret.
    pub fn label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = Some(label.into());
        self
    }

    /// Points at a second place that explains the problem (ignored if in another file).
    pub fn also(&mut self, span: Span, text: impl Into<String>) -> &mut Self {
        if self.span.is_some_and(|s| s.file == span.file) {
            self.related.push((span, text.into()));
        }
        self
    }
}

/// Every problem found, in the order found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records an error.
    pub fn error(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        span: Span,
    ) -> &mut Diagnostic {
        self.push(Severity::Error, code, message.into(), Some(span))
    }

    /// Records a warning.
    pub fn warning(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
        span: Span,
    ) -> &mut Diagnostic {
        self.push(Severity::Warning, code, message.into(), Some(span))
    }

    /// Records an error with no place in a file.
    pub fn error_nowhere(
        &mut self,
        code: &'static str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Severity::Error, code, message.into(), None)
    }

    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        message: String,
        span: Option<Span>,
    ) -> &mut Diagnostic {
        self.list.push(Diagnostic {
            severity,
            code,
            message,
            span,
            label: None,
            related: Vec::new(),
            help: None,
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    /// All diagnostics, in the order found.
    pub fn list(&self) -> &[Diagnostic] {
        &self.list
    }

    /// Sorted by file and position, duplicates removed: the order to show them in.
    pub fn sorted(&self) -> Vec<Diagnostic> {
        let mut v = self.list.clone();
        v.sort_by(|a, b| {
            (
                a.span.map(|s| (s.file, s.start)),
                a.severity == Severity::Warning,
            )
                .cmp(&(
                    b.span.map(|s| (s.file, s.start)),
                    b.severity == Severity::Warning,
                ))
        });
        v.dedup_by(|a, b| a.span == b.span && a.message == b.message);
        v
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// True if there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }
}

/// A [`Diagnostic`] together with its source file, as miette wants it.
#[derive(Debug)]
pub struct RenderedDiagnostic {
    diag: Diagnostic,
    source: Option<miette::NamedSource<String>>,
}

impl fmt::Display for RenderedDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for RenderedDiagnostic {}

impl miette::Diagnostic for RenderedDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("takt::{}", self.diag.code)))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.diag.span?;
        let primary = miette::LabeledSpan::new_primary_with_span(
            self.diag.label.clone(),
            span.start as usize..span.end as usize,
        );
        let related = self.diag.related.iter().map(|(s, text)| {
            miette::LabeledSpan::new_with_span(Some(text.clone()), s.start as usize..s.end as usize)
        });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}
