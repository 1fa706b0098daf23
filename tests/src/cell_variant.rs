//! Variants of the demo cell (config/cell.toml) for tests that need another SYNC period or
//! gentler motion: the file's own text with a few lines replaced, each of which must be
//! found exactly once, so a variant never drifts from the demo cell unnoticed.
//!
//! ```no_run
//! use takt_tests::cell_variant::CellVariant;
//!
//! let path = CellVariant::demo()?.sync_period_ms(10).write("sync-10ms")?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};

/// The demo cell's text with replacements.
#[derive(Debug, Clone)]
pub struct CellVariant {
    text: String,
    changes: Vec<String>,
}

impl CellVariant {
    /// The demo cell as it is, reading its sequences from `config/sequences` wherever the
    /// variant is written.
    pub fn demo() -> io::Result<CellVariant> {
        let config = workspace().join("config");
        let text = std::fs::read_to_string(config.join("cell.toml"))?;
        let sequences = config.join("sequences");
        let mut v = CellVariant {
            text,
            changes: Vec::new(),
        };
        v.replace(
            "[cell]\n",
            &format!(
                "[cell]\nsequences_dir = {:?}\n",
                sequences.display().to_string()
            ),
        );
        v.changes.clear();
        Ok(v)
    }

    /// Replaces `old`, which must occur exactly once, by `new` (a test's mistake panics).
    fn replace(&mut self, old: &str, new: &str) {
        assert_eq!(
            self.text.matches(old).count(),
            1,
            "{old:?} must occur once in config/cell.toml"
        );
        self.text = self.text.replacen(old, new, 1);
        self.changes
            .push(format!("{} -> {}", old.trim(), new.trim()));
    }

    /// The bus's SYNC period, ms (the demo cell's is 2 ms).
    pub fn sync_period_ms(mut self, ms: u32) -> CellVariant {
        self.replace(
            "sync_period = \"2 ms\"",
            &format!("sync_period = \"{ms} ms\""),
        );
        self
    }

    /// The largest velocity of `axis` (`x`, `y` or `z`), mm/s.
    pub fn max_velocity_mm_s(mut self, axis: &str, mm_s: u32) -> CellVariant {
        let header = format!("[axes.{axis}]\n");
        let start = self
            .text
            .find(&header)
            .unwrap_or_else(|| panic!("no {header:?} in config/cell.toml"));
        let Some(offset) = self.text[start..].find("max_velocity = ") else {
            panic!("{header:?} has no max_velocity in config/cell.toml");
        };
        let line_at = start + offset;
        let line_end = line_at + self.text[line_at..].find('\n').unwrap_or(0);
        let old = self.text[line_at..line_end].to_owned();
        let new = format!("max_velocity = \"{mm_s} mm/s\"");
        self.text.replace_range(line_at..line_end, &new);
        self.changes.push(format!("axis {axis}: {old} -> {new}"));
        self
    }

    /// What differs from config/cell.toml, one change a line.
    pub fn changes(&self) -> &[String] {
        &self.changes
    }

    /// Writes the variant to the temporary directory as `takt-cell-<name>-<pid>.toml`.
    pub fn write(&self, name: &str) -> io::Result<PathBuf> {
        self.write_in(&std::env::temp_dir(), name)
    }

    /// Writes the variant into `dir` as `takt-cell-<name>-<pid>.toml`.
    pub fn write_in(&self, dir: &Path, name: &str) -> io::Result<PathBuf> {
        let path = dir.join(format!("takt-cell-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, &self.text)?;
        Ok(path)
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
