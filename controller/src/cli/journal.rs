//! `takt journal [PATH]`: read the event journal, across its rotated files.
//!
//! Maintenance reads what happened, and when: `--since` (a time ago like `10m`, or a UTC
//! time like `2026-11-22T04:00:00Z`), `--kind` (`command`, `trip`, `cell_state`, …),
//! `--follow` to keep printing as the controller writes (rotation followed), `--json` for
//! the records as stored.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::control::args::default_journal_path;
use crate::control::journal::{self, BadLine, parse_rfc3339};
use crate::control::protocol::Record;

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Arguments of `takt journal`.
#[derive(Debug, clap::Args)]
pub struct JournalArgs {
    /// The journal [default: the one `takt run` writes by default].
    pub path: Option<PathBuf>,
    /// Only records from this time on: a time ago (`90s`, `10m`, `2h`, `1d`) or a UTC time
    /// (`2026-11-22T04:00:00Z`).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<SystemTime>,
    /// Only records of these kinds (repeat, or separate by commas): command, trip,
    /// cell_state, step, counted, resync, …
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Keep printing new records as they are written (follows rotation); Ctrl-C ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Print the records as stored (JSON lines).
    #[arg(long)]
    pub json: bool,
}

fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Some(t) = parse_rfc3339(text) {
        return Ok(t);
    }
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        format!("{text:?} is neither a time ago (10m, 2h) nor a UTC time (2026-11-22T04:00:00Z)")
    })?;
    let secs = match unit {
        "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    SystemTime::now()
        .checked_sub(Duration::from_secs(secs))
        .ok_or_else(|| format!("{text:?} reaches before 1970"))
}

struct Filter<'a> {
    since: Option<SystemTime>,
    kinds: &'a [String],
    json: bool,
}

impl Filter<'_> {
    fn show(&self, r: &Record) {
        if !self.kinds.is_empty() && !self.kinds.contains(&r.kind) {
            return;
        }
        if let Some(since) = self.since
            && parse_rfc3339(&r.wall).is_some_and(|t| t < since)
        {
            return;
        }
        if self.json {
            if let Ok(line) = serde_json::to_string(r) {
                println!("{line}");
            }
        } else {
            let cycle = r
                .cycle_s
                .map_or_else(String::new, |s| format!(" [{s:.3} s]"));
            println!("{}  #{:<6} {:<12} {}{cycle}", r.wall, r.seq, r.kind, r.text);
        }
    }
}

fn report_bad(bad: &[BadLine]) {
    for b in bad {
        eprintln!(
            "takt journal: {}:{}: not a record ({})",
            b.file.display(),
            b.line,
            b.error
        );
    }
}

/// Runs `takt journal`.
pub fn journal(args: JournalArgs) -> ExitCode {
    let path = args.path.clone().unwrap_or_else(default_journal_path);
    if args.follow {
        // Following a journal that a controller about to start will write.
        while journal::files(&path).is_empty() {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
    if journal::files(&path).is_empty() {
        eprintln!(
            "takt journal: no journal at {} (takt run --journal PATH writes one)",
            path.display()
        );
        return ExitCode::FAILURE;
    }
    let filter = Filter {
        since: args.since,
        kinds: &args.kind,
        json: args.json,
    };
    if args.follow {
        return match follow(&path, &filter) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("takt journal: {}: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    match journal::read(&path) {
        Ok((records, bad)) => {
            for r in &records {
                filter.show(r);
            }
            report_bad(&bad);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("takt journal: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Prints the rotated files, then the current one, then whatever is appended. When the
/// writer rotates (perhaps more than once between two looks), the rest of the old file and
/// every record past the last one printed, from the rotated files and the new current one:
/// sequence numbers say what was printed already.
fn follow(path: &Path, filter: &Filter<'_>) -> std::io::Result<()> {
    let mut last = 0u64;
    let mut emit = |(records, bad): (Vec<Record>, Vec<BadLine>)| {
        for r in &records {
            if r.seq > last {
                last = r.seq;
                filter.show(r);
            }
        }
        report_bad(&bad);
    };
    let rotated_files = || {
        journal::files(path)
            .into_iter()
            .filter(|f| f.as_path() != path)
            .collect::<Vec<_>>()
    };
    for f in rotated_files() {
        emit(read_file(&f)?);
    }
    let mut current = Current::open(path)?;
    loop {
        emit(current.read_new()?);
        let rotated = std::fs::metadata(path).is_ok_and(|m| m.ino() != current.inode);
        if rotated {
            emit(current.read_new()?);
            for f in rotated_files() {
                emit(read_file(&f)?);
            }
            current = Current::open(path)?;
            continue;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

fn read_file(f: &Path) -> std::io::Result<(Vec<Record>, Vec<BadLine>)> {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    journal::read_lines(BufReader::new(File::open(f)?), f, 0, &mut records, &mut bad)?;
    Ok((records, bad))
}

struct Current {
    path: PathBuf,
    reader: BufReader<File>,
    inode: u64,
    line: usize,
    partial: String,
}

impl Current {
    fn open(path: &Path) -> std::io::Result<Current> {
        let file = File::open(path)?;
        let inode = file.metadata()?.ino();
        Ok(Current {
            path: path.to_owned(),
            reader: BufReader::new(file),
            inode,
            line: 0,
            partial: String::new(),
        })
    }

    /// Whole lines appended since the last call (a line still being written waits).
    fn read_new(&mut self) -> std::io::Result<(Vec<Record>, Vec<BadLine>)> {
        let mut text = String::new();
        loop {
            let mut chunk = String::new();
            if self.reader.read_line(&mut chunk)? == 0 {
                break;
            }
            self.partial.push_str(&chunk);
            if self.partial.ends_with('\n') {
                text.push_str(&self.partial);
                self.partial.clear();
            }
        }
        let mut records = Vec::new();
        let mut bad = Vec::new();
        self.line = journal::read_lines(
            text.as_bytes(),
            &self.path,
            self.line,
            &mut records,
            &mut bad,
        )?;
        Ok((records, bad))
    }
}
