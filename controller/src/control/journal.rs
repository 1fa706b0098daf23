//! The durable event journal: every operator command (who, from where), state change,
//! trip, resync, step, counter change and the rest of the cycle's events, as JSON lines
//! ([`Record`]) with a sequence number, CLOCK_MONOTONIC and wall-clock time. Written by the
//! control server's hub thread, never by the cycle.
//!
//! **Durability policy.** Each record is written with one `write(2)` of the whole line
//! (no user-space buffer), so a record that was written survives a crash of the process
//! (SIGKILL, panic, abort): it is in the kernel's page cache. Against power loss:
//! `fdatasync(2)` before any reply to an operator command is sent (so an acknowledged
//! command is on disk), at least every [`SYNC_INTERVAL`] otherwise while records are
//! pending, at rotation and at the end of the run.
//!
//! **Rotation.** When the next record would take the file past `max_bytes`, the file is
//! synced and renamed `PATH.1` (`PATH.1` → `PATH.2`, …, up to `PATH.<keep>`, the oldest
//! dropped) and a new `PATH` begins. Sequence numbers go on across files and across
//! restarts (a new run continues after the last record it finds).
//!
//! **One writer.** The journal holds an exclusive `flock(2)` on `PATH.lock` while open, so
//! two controllers never interleave their records in one journal.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::protocol::Record;

/// Longest time a written record waits for its `fdatasync` when no operator command forces
/// one sooner.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Default size at which the journal rotates.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Default number of rotated files kept beside the current one.
pub const DEFAULT_KEEP: usize = 8;

/// Why the journal failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another controller holds the journal.
    #[error("journal {0} is in use by another controller (its lock is held)")]
    Locked(PathBuf),
    /// A record could not be encoded (cannot happen for well-formed records).
    #[error("journal record not encodable: {0}")]
    Encode(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where and how big.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// The current file; rotated ones are `PATH.1` (newest) … `PATH.<keep>`.
    pub path: PathBuf,
    /// Rotate before the file would pass this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: usize,
}

impl JournalConfig {
    /// `path` with the default size and count.
    pub fn new(path: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            path: path.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        }
    }
}

/// The journal's writer.
#[derive(Debug)]
pub struct Journal {
    cfg: JournalConfig,
    file: File,
    _lock: File,
    bytes: u64,
    next_seq: u64,
    unsynced_since: Option<Instant>,
}

impl Journal {
    /// Opens (creating the directory and file) for appending, after the last record there.
    pub fn open(cfg: JournalConfig) -> Result<Journal, JournalError> {
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let lock_path = sibling(&cfg.path, ".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(JournalError::Locked(cfg.path.clone()));
        }
        let last = files(&cfg.path)
            .iter()
            .rev()
            .find_map(|f| last_seq(f).ok().flatten());
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&cfg.path)
            .map_err(io_err(&cfg.path))?;
        let bytes = file.metadata().map_err(io_err(&cfg.path))?.len();
        // A line cut off by a power loss: end it, so the next record starts clean (the
        // reader reports the cut line and goes on).
        if bytes > 0 {
            let mut tail = [0u8; 1];
            file.seek(SeekFrom::End(-1)).map_err(io_err(&cfg.path))?;
            file.read_exact(&mut tail).map_err(io_err(&cfg.path))?;
            if tail[0] != b'\n' {
                file.write_all(b"\n").map_err(io_err(&cfg.path))?;
            }
        }
        let bytes = file.metadata().map_err(io_err(&cfg.path))?.len();
        Ok(Journal {
            cfg,
            file,
            _lock: lock,
            bytes,
            next_seq: last.map_or(1, |s| s + 1),
            unsynced_since: None,
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.cfg.path
    }

    /// Numbers, stamps and writes `record` (one `write(2)`); returns its sequence number.
    /// Durable against a crash of this process once this returns; against power loss after
    /// the next [`Journal::sync`].
    pub fn append(&mut self, record: &mut Record) -> Result<u64, JournalError> {
        record.seq = self.next_seq;
        record.mono_ns = monotonic_ns();
        record.wall = rfc3339_ms(SystemTime::now());
        let mut line =
            serde_json::to_vec(&*record).map_err(|e| JournalError::Encode(e.to_string()))?;
        line.push(b'\n');
        if self.bytes > 0 && self.bytes + line.len() as u64 > self.cfg.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line).map_err(io_err(&self.cfg.path))?;
        self.bytes += line.len() as u64;
        self.next_seq += 1;
        self.unsynced_since.get_or_insert_with(Instant::now);
        Ok(record.seq)
    }

    /// `fdatasync`s what was written.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced_since.take().is_some() {
            self.file.sync_data().map_err(io_err(&self.cfg.path))?;
        }
        Ok(())
    }

    /// Syncs when the oldest unsynced record is [`SYNC_INTERVAL`] old.
    pub fn sync_if_due(&mut self) -> Result<(), JournalError> {
        match self.unsynced_since {
            Some(t) if t.elapsed() >= SYNC_INTERVAL => self.sync(),
            _ => Ok(()),
        }
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(io_err(&self.cfg.path))?;
        self.unsynced_since = None;
        let keep = self.cfg.keep;
        if keep == 0 {
            std::fs::remove_file(&self.cfg.path).map_err(io_err(&self.cfg.path))?;
        } else {
            let oldest = numbered(&self.cfg.path, keep);
            if oldest.exists() {
                std::fs::remove_file(&oldest).map_err(io_err(&oldest))?;
            }
            for k in (1..keep).rev() {
                let from = numbered(&self.cfg.path, k);
                if from.exists() {
                    let to = numbered(&self.cfg.path, k + 1);
                    std::fs::rename(&from, &to).map_err(io_err(&from))?;
                }
            }
            let first = numbered(&self.cfg.path, 1);
            std::fs::rename(&self.cfg.path, &first).map_err(io_err(&self.cfg.path))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.cfg.path)
            .map_err(io_err(&self.cfg.path))?;
        self.bytes = 0;
        // The rename must reach the disk too, or a power loss could bring the old name back.
        if let Some(dir) = self.cfg.path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn numbered(path: &Path, k: usize) -> PathBuf {
    sibling(path, &format!(".{k}"))
}

/// The journal's files, oldest first: `PATH.<n>` … `PATH.1`, then `PATH` (those that exist).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(usize, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (
        path.parent().map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        }),
        path.file_name().and_then(|n| n.to_str()),
    ) && let Ok(entries) = std::fs::read_dir(dir)
    {
        for e in entries.flatten() {
            let file = e.file_name();
            let Some(k) = file
                .to_str()
                .and_then(|f| f.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            rotated.push((k, numbered(path, k)));
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        out.push(path.to_owned());
    }
    out
}

/// The sequence number of the last whole record of `file`.
fn last_seq(file: &Path) -> std::io::Result<Option<u64>> {
    let mut f = File::open(file)?;
    let len = f.metadata()?.len();
    // Records are short; the last one is in the file's last 64 KiB.
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    Ok(tail
        .split(|&b| b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .find_map(|l| serde_json::from_slice::<Record>(l).ok())
        .map(|r| r.seq))
}

/// A line of the journal that is not a record (a line cut off by a power loss, or damage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// Why it does not parse.
    pub error: String,
}

/// Reads every record of the journal at `path`, across its rotated files, oldest first.
/// Lines that are not records are returned apart, so a damaged line never hides the rest.
pub fn read(path: &Path) -> std::io::Result<(Vec<Record>, Vec<BadLine>)> {
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for file in files(path) {
        let f = match File::open(&file) {
            Ok(f) => f,
            // Rotated away between listing and opening: its records are in the next file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        read_lines(BufReader::new(f), &file, 0, &mut records, &mut bad)?;
    }
    Ok((records, bad))
}

/// Parses lines of `file` (numbered from `first_line` + 1) into records or bad lines.
pub fn read_lines(
    reader: impl BufRead,
    file: &Path,
    first_line: usize,
    records: &mut Vec<Record>,
    bad: &mut Vec<BadLine>,
) -> std::io::Result<usize> {
    let mut n = first_line;
    for line in reader.lines() {
        let line = line?;
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(r) => records.push(r),
            Err(e) => bad.push(BadLine {
                file: file.to_owned(),
                line: n,
                error: e.to_string(),
            }),
        }
    }
    Ok(n)
}

/// CLOCK_MONOTONIC in ns (the clock `journalctl -o short-monotonic` and the kernel use).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `2026-11-22T04:25:00.123Z`.
pub fn rfc3339_ms(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Parses what [`rfc3339_ms`] writes (and the same without fraction, or with a `+00:00`
/// offset): UTC only.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    let ms = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").get(..3)?.parse::<u64>().ok()?
    };
    let days = days_from_civil(y, m, dd);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + se;
    Some(UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms))
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian, days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("takt-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("journal.jsonl")
    }

    #[test]
    fn wall_time_round_trips() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_321_500_123);
        let s = rfc3339_ms(t);
        assert_eq!(s, "2026-11-22T04:25:00.123Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn rotation_keeps_k_files_and_numbering_goes_on_across_them_and_restarts() {
        let path = tmp("rotate");
        let cfg = JournalConfig {
            path: path.clone(),
            max_bytes: 2_000,
            keep: 2,
        };
        {
            let mut j = Journal::open(cfg.clone()).unwrap();
            assert!(matches!(
                Journal::open(cfg.clone()),
                Err(JournalError::Locked(_))
            ));
            for i in 0..60 {
                j.append(&mut Record::new("test", format!("record {i}")))
                    .unwrap();
            }
            j.sync().unwrap();
        }
        let files = files(&path);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 2_000);
        }
        let (records, bad) = read(&path).unwrap();
        assert!(bad.is_empty());
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        // The oldest files were dropped; what is left is contiguous and ends at 60.
        assert_eq!(*seqs.last().unwrap(), 60);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        // A cut-off last line (power loss mid-write): reported, and a restart goes on.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":61,\"mo")
            .unwrap();
        let mut j = Journal::open(cfg).unwrap();
        assert_eq!(j.append(&mut Record::new("test", "after")).unwrap(), 61);
        drop(j);
        let (records, bad) = read(&path).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(records.last().unwrap().text, "after");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
