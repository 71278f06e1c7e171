//! The event backlog: batches that could not be delivered yet, kept in order until the
//! backend is back. On disk (a spool folder, one JSON Lines file per batch, each written to a
//! temporary name and renamed into place so a crash never leaves half a batch) or, when no
//! folder is configured, in memory. Both are bounded: when full, the oldest batches are
//! dropped and counted.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use haetae_core::Event;

use crate::BusError;

/// Events kept while the backend is unreachable, oldest first.
#[derive(Debug)]
pub(crate) enum Backlog {
    /// Survives restarts.
    Disk(Spool),
    /// Lost on restart; bounded by a number of events.
    Memory {
        batches: VecDeque<Vec<Event>>,
        events: u64,
        max_events: u64,
    },
}

/// What pushing a batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Events now in the backlog from this batch.
    pub kept: u64,
    /// Events dropped to make room (older ones, or this batch if it alone is too big).
    pub dropped: u64,
}

impl Backlog {
    pub(crate) fn memory(max_events: u64) -> Backlog {
        Backlog::Memory {
            batches: VecDeque::new(),
            events: 0,
            max_events: max_events.max(1),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Backlog::Disk(s) => s.files.is_empty(),
            Backlog::Memory { batches, .. } => batches.is_empty(),
        }
    }

    /// Events waiting.
    pub(crate) fn events(&self) -> u64 {
        match self {
            Backlog::Disk(s) => s.events,
            Backlog::Memory { events, .. } => *events,
        }
    }

    /// Appends a batch behind everything already waiting.
    pub(crate) fn push(&mut self, batch: &[Event]) -> Result<Pushed, BusError> {
        match self {
            Backlog::Disk(s) => s.push(batch),
            Backlog::Memory {
                batches,
                events,
                max_events,
            } => {
                let n = batch.len() as u64;
                if n > *max_events {
                    return Ok(Pushed {
                        kept: 0,
                        dropped: n,
                    });
                }
                let mut dropped = 0;
                while *events + n > *max_events {
                    let Some(old) = batches.pop_front() else {
                        break;
                    };
                    *events -= old.len() as u64;
                    dropped += old.len() as u64;
                }
                batches.push_back(batch.to_vec());
                *events += n;
                Ok(Pushed { kept: n, dropped })
            }
        }
    }

    /// The oldest batch, and how many of its events could not be read back (a damaged spool
    /// file); `None` when empty.
    pub(crate) fn front(&self) -> Result<Option<(Vec<Event>, u64)>, BusError> {
        match self {
            Backlog::Disk(s) => s.front(),
            Backlog::Memory { batches, .. } => Ok(batches.front().map(|b| (b.clone(), 0))),
        }
    }

    /// Forgets the oldest batch (after it was delivered).
    pub(crate) fn remove_front(&mut self) -> Result<(), BusError> {
        match self {
            Backlog::Disk(s) => s.remove_front(),
            Backlog::Memory {
                batches, events, ..
            } => {
                if let Some(b) = batches.pop_front() {
                    *events -= b.len() as u64;
                }
                Ok(())
            }
        }
    }
}

/// One spooled batch.
#[derive(Debug)]
struct SpoolFile {
    seq: u64,
    events: u64,
    bytes: u64,
    path: PathBuf,
}

/// A folder of spooled batches named `<sequence>-<events>.jsonl`.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<SpoolFile>,
    bytes: u64,
    events: u64,
    next_seq: u64,
}

const SUFFIX: &str = ".jsonl";
const TEMP_PREFIX: &str = ".incoming-";

fn io_error(path: &Path, source: std::io::Error) -> BusError {
    BusError::Spool {
        path: path.to_owned(),
        source,
    }
}

/// Spooled events name users, devices and addresses: the folder is readable by its owner
/// only (0700, files 0600) where the platform has modes.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// `00000000000000000042-17.jsonl` -> (42, 17).
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (seq, events) = stem.split_once('-')?;
    Some((seq.parse().ok()?, events.parse().ok()?))
}

impl Spool {
    /// Opens (creating if needed) a spool folder and takes over what an earlier run left
    /// there; half-written temporary files from a crash are removed.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<Spool, BusError> {
        create_private_dir(dir).map_err(|e| io_error(dir, e))?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.starts_with(TEMP_PREFIX) {
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                continue;
            }
            let Some((seq, events)) = parse_name(name) else {
                continue;
            };
            let bytes = entry.metadata().map_err(|e| io_error(&path, e))?.len();
            files.push(SpoolFile {
                seq,
                events,
                bytes,
                path,
            });
        }
        files.sort_by_key(|f| f.seq);
        let next_seq = files.last().map_or(0, |f| f.seq + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes: max_bytes.max(1),
            bytes: files.iter().map(|f| f.bytes).sum(),
            events: files.iter().map(|f| f.events).sum(),
            files: files.into(),
            next_seq,
        })
    }

    fn push(&mut self, batch: &[Event]) -> Result<Pushed, BusError> {
        let n = batch.len() as u64;
        let mut text = String::new();
        for event in batch {
            text.push_str(&event.to_json());
            text.push('\n');
        }
        let size = text.len() as u64;
        if size > self.max_bytes {
            tracing::warn!(
                events = n,
                bytes = size,
                max_bytes = self.max_bytes,
                "a batch larger than the whole spool was dropped"
            );
            return Ok(Pushed {
                kept: 0,
                dropped: n,
            });
        }
        let mut dropped = 0;
        while self.bytes + size > self.max_bytes {
            let Some(old) = self.files.front() else { break };
            dropped += old.events;
            self.remove_front()?;
        }
        let seq = self.next_seq;
        let name = format!("{seq:020}-{n}{SUFFIX}");
        let temp = self.dir.join(format!("{TEMP_PREFIX}{name}"));
        let path = self.dir.join(&name);
        let write = || -> std::io::Result<()> {
            let mut file = create_private_file(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
            fs::rename(&temp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&temp);
            return Err(io_error(&path, e));
        }
        self.next_seq += 1;
        self.bytes += size;
        self.events += n;
        self.files.push_back(SpoolFile {
            seq,
            events: n,
            bytes: size,
            path,
        });
        Ok(Pushed { kept: n, dropped })
    }

    fn front(&self) -> Result<Option<(Vec<Event>, u64)>, BusError> {
        let Some(file) = self.files.front() else {
            return Ok(None);
        };
        let text = fs::read_to_string(&file.path).map_err(|e| io_error(&file.path, e))?;
        let mut events = Vec::new();
        for (i, line) in text.lines().enumerate() {
            match Event::from_json(line) {
                Ok(e) => events.push(e),
                Err(e) => tracing::warn!(
                    file = %file.path.display(),
                    line = i + 1,
                    error = %e,
                    "a damaged spooled event was skipped"
                ),
            }
        }
        let unreadable = file.events.saturating_sub(events.len() as u64);
        Ok(Some((events, unreadable)))
    }

    fn remove_front(&mut self) -> Result<(), BusError> {
        let Some(file) = self.files.pop_front() else {
            return Ok(());
        };
        self.bytes -= file.bytes;
        self.events -= file.events;
        match fs::remove_file(&file.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&file.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use haetae_core::Component;

    use super::*;

    fn batch(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new(Component::Gateway, format!("test.{i}")))
            .collect()
    }

    #[test]
    fn a_spooled_batch_reads_back_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let first = batch(3);
        let second = batch(2);
        {
            let mut spool = Backlog::Disk(Spool::open(dir.path(), 1 << 20).unwrap());
            spool.push(&first).unwrap();
            spool.push(&second).unwrap();
        }
        let mut spool = Backlog::Disk(Spool::open(dir.path(), 1 << 20).unwrap());
        assert_eq!(spool.events(), 5);
        assert_eq!(spool.front().unwrap().unwrap(), (first, 0));
        spool.remove_front().unwrap();
        assert_eq!(spool.front().unwrap().unwrap(), (second, 0));
        spool.remove_front().unwrap();
        assert!(spool.is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_batches_and_counts_their_events() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(4);
        let size: u64 = one.iter().map(|e| e.to_json().len() as u64 + 1).sum();
        let mut spool = Backlog::Disk(Spool::open(dir.path(), size * 2 + size / 2).unwrap());
        assert_eq!(spool.push(&one).unwrap().dropped, 0);
        assert_eq!(spool.push(&batch(4)).unwrap().dropped, 0);
        let third = batch(4);
        assert_eq!(
            spool.push(&third).unwrap(),
            Pushed {
                kept: 4,
                dropped: 4
            }
        );
        assert_eq!(spool.events(), 8);
        assert_ne!(spool.front().unwrap().unwrap().0, one, "the oldest went");
    }

    #[cfg(unix)]
    #[test]
    fn spool_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spool");
        let mut spool = Backlog::Disk(Spool::open(&dir, 1 << 20).unwrap());
        spool.push(&batch(1)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for entry in fs::read_dir(&dir).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
    }

    #[test]
    fn half_written_files_from_a_crash_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path()
                .join(format!("{TEMP_PREFIX}00000000000000000000-1.jsonl")),
            "{\"partial",
        )
        .unwrap();
        let spool = Backlog::Disk(Spool::open(dir.path(), 1 << 20).unwrap());
        assert_eq!(spool.events(), 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_damaged_line_is_skipped_and_counted_as_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let good = batch(1);
        let text = format!("{}\nnot json\n", good[0].to_json());
        fs::write(dir.path().join("00000000000000000007-2.jsonl"), text).unwrap();
        let spool = Backlog::Disk(Spool::open(dir.path(), 1 << 20).unwrap());
        assert_eq!(spool.front().unwrap().unwrap(), (good, 1));
    }

    #[test]
    fn the_memory_backlog_is_bounded_by_events() {
        let mut backlog = Backlog::memory(5);
        backlog.push(&batch(3)).unwrap();
        let pushed = backlog.push(&batch(3)).unwrap();
        assert_eq!(
            pushed,
            Pushed {
                kept: 3,
                dropped: 3
            }
        );
        assert_eq!(backlog.events(), 3);
        assert_eq!(backlog.push(&batch(9)).unwrap().dropped, 9);
    }
}
