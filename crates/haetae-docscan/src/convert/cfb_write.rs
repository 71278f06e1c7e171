//! A compound-file (MS-CFB) writer, and the same-format rebuild of an OLE2 or HWP 5.0
//! document that the per-format policies (`doc`, `xls`, `ppt`, `msg`, `hwp`, `ole`) drive:
//! the original read with the crate's strict reader, walked from the root, each storage and
//! stream kept or dropped (and named in `removed`), the kept streams optionally edited in
//! place, and a new file written.
//!
//! The written file is a version-3 compound file (512-byte sectors): streams of 4096 bytes
//! or more in regular sectors, smaller ones in the mini stream (64-byte sectors, the root
//! entry's chain) with a mini FAT; the FAT after the data, its sectors listed in the
//! header's 109 DIFAT slots and, past those, in DIFAT sectors (127 entries and a link each).
//! The directory holds the root, then the entries storage by storage; each storage's
//! children form a balanced binary tree in MS-CFB's name order (length first, then the
//! upper-cased UTF-16 units), all nodes black — a valid red-black tree needs equal black
//! heights, which readers do not check, and MS-CFB lets a writer colour every node black
//! only when the tree is balanced, so the tree is built from the sorted middle outwards.
//! Class ids, state bits and timestamps are carried over; nothing of the original's layout
//! (free sectors, unreachable entries, slack) is.

use std::collections::HashMap;

use super::{ConvertError, Disarmed, Removed};
use crate::container::cfb::{Cfb, DirEntry, EntryKind};
use crate::context::ScanContext;
use crate::filetype::FileType;

const SECTOR: usize = 512;
const MINI: usize = 64;
const MINI_CUTOFF: usize = 4096;
const FREE: u32 = 0xFFFF_FFFF;
const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
const FAT_SECT: u32 = 0xFFFF_FFFD;
const DIFAT_SECT: u32 = 0xFFFF_FFFC;
const NO_STREAM: u32 = 0xFFFF_FFFF;
/// The largest regular sector number (MAXREGSECT).
const MAX_SECTOR: u64 = 0xFFFF_FFFA;
/// Entries of the FAT in one sector, and FAT sector numbers in one DIFAT sector.
const PER_SECTOR: usize = SECTOR / 4;
const HEADER_DIFAT: usize = 109;

/// Class id, state bits and times of an entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Meta {
    pub clsid: [u8; 16],
    pub state_bits: u32,
    pub created: u64,
    pub modified: u64,
}

impl Meta {
    fn of(e: &DirEntry) -> Meta {
        Meta {
            clsid: e.clsid,
            state_bits: e.state_bits,
            created: e.created,
            modified: e.modified,
        }
    }
}

#[derive(Debug, Clone)]
struct Item {
    name: Vec<u16>,
    storage: bool,
    meta: Meta,
    data: Vec<u8>,
    parent: usize,
}

/// A compound file being built: item 0 is the root storage.
#[derive(Debug, Clone)]
pub(super) struct Compound {
    items: Vec<Item>,
}

/// Why a file cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum WriteError {
    /// An entry name is empty or longer than 31 UTF-16 units.
    Name(String),
    /// A stream over 4 GiB, or a file over the version-3 sector count.
    TooLarge(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Name(n) => write!(
                f,
                "the entry name {n:?} is empty or longer than 31 UTF-16 units"
            ),
            WriteError::TooLarge(what) => write!(f, "{what} is too large for a compound file"),
        }
    }
}

/// MS-CFB's name order: shorter first, then the upper-cased UTF-16 units.
fn name_order(a: &[u16], b: &[u16]) -> std::cmp::Ordering {
    let upper = |u: u16| -> u16 {
        char::from_u32(u32::from(u)).map_or(u, |c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(one), None) => u16::try_from(u32::from(one)).unwrap_or(u),
                _ => u,
            }
        })
    };
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().map(|&u| upper(u)).cmp(b.iter().map(|&u| upper(u))))
}

/// One directory entry being written.
struct Flat {
    item: usize,
    left: u32,
    right: u32,
    child: u32,
    start: u32,
    size: u64,
}

/// Sets the sibling links of the sorted `ids` as a balanced tree; returns its root.
fn balance(flat: &mut [Flat], ids: &[u32]) -> u32 {
    if ids.is_empty() {
        return NO_STREAM;
    }
    let mid = ids.len() / 2;
    let left = balance(flat, ids.get(..mid).unwrap_or_default());
    let right = balance(flat, ids.get(mid + 1..).unwrap_or_default());
    let root = ids.get(mid).copied().unwrap_or(NO_STREAM);
    if let Some(f) = flat.get_mut(root as usize) {
        f.left = left;
        f.right = right;
    }
    root
}

/// Writes `bytes` at `at` (within bounds by construction).
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = buf.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

/// Sectors of `len` bytes.
fn sectors_for(len: usize, size: usize) -> usize {
    len.div_ceil(size)
}

/// Appends a chain of `n` consecutive sectors from `start` to a FAT.
fn chain(table: &mut Vec<u32>, start: usize, n: usize) {
    for i in 0..n {
        table.push(if i + 1 == n {
            END_OF_CHAIN
        } else {
            (start + i + 1) as u32
        });
    }
}

impl Compound {
    /// An empty file whose root has this class id, state bits and times.
    pub(super) fn new(root: Meta) -> Compound {
        Compound {
            items: vec![Item {
                name: "Root Entry".encode_utf16().collect(),
                storage: true,
                meta: root,
                data: Vec::new(),
                parent: 0,
            }],
        }
    }

    fn add(
        &mut self,
        parent: usize,
        name: &str,
        storage: bool,
        meta: Meta,
        data: Vec<u8>,
    ) -> usize {
        self.items.push(Item {
            name: name.encode_utf16().collect(),
            storage,
            meta,
            data,
            parent,
        });
        self.items.len() - 1
    }

    /// Adds a storage under `parent` (0: the root); returns its index.
    pub(super) fn storage(&mut self, parent: usize, name: &str, meta: Meta) -> usize {
        self.add(parent, name, true, meta, Vec::new())
    }

    /// Adds a stream under `parent`; returns its index.
    pub(super) fn stream(&mut self, parent: usize, name: &str, meta: Meta, data: Vec<u8>) -> usize {
        self.add(parent, name, false, meta, data)
    }

    /// Writes the file.
    ///
    /// # Errors
    /// A name that is empty or over 31 units, a stream over 4 GiB or a file over the
    /// version-3 sector numbers.
    pub(super) fn write(&self) -> Result<Vec<u8>, WriteError> {
        for it in self.items.iter().skip(1) {
            if it.name.is_empty() || it.name.len() > 31 {
                return Err(WriteError::Name(String::from_utf16_lossy(&it.name)));
            }
            if u32::try_from(it.data.len()).is_err() {
                return Err(WriteError::TooLarge(format!(
                    "the stream {:?}",
                    String::from_utf16_lossy(&it.name)
                )));
            }
        }
        // Directory order: the root, then each storage's children (breadth first).
        let mut kids: Vec<Vec<usize>> = vec![Vec::new(); self.items.len()];
        for (i, it) in self.items.iter().enumerate().skip(1) {
            if let Some(k) = kids.get_mut(it.parent) {
                k.push(i);
            }
        }
        let mut flat: Vec<Flat> = vec![Flat {
            item: 0,
            left: NO_STREAM,
            right: NO_STREAM,
            child: NO_STREAM,
            start: END_OF_CHAIN,
            size: 0,
        }];
        let mut queue = std::collections::VecDeque::from([0usize]);
        while let Some(dir_id) = queue.pop_front() {
            let item = flat.get(dir_id).map_or(0, |f| f.item);
            let mut children = kids.get(item).cloned().unwrap_or_default();
            children.sort_by(|&a, &b| {
                let name = |i: usize| self.items.get(i).map_or(&[][..], |x| &x.name[..]);
                name_order(name(a), name(b))
            });
            let mut ids = Vec::with_capacity(children.len());
            for c in children {
                let id = flat.len();
                ids.push(id as u32);
                flat.push(Flat {
                    item: c,
                    left: NO_STREAM,
                    right: NO_STREAM,
                    child: NO_STREAM,
                    start: END_OF_CHAIN,
                    size: 0,
                });
                if self.items.get(c).is_some_and(|x| x.storage) {
                    queue.push_back(id);
                }
            }
            let root = balance(&mut flat, &ids);
            if let Some(f) = flat.get_mut(dir_id) {
                f.child = root;
            }
        }
        // Data: large streams in regular sectors, small ones in the mini stream.
        let mut fat: Vec<u32> = Vec::new();
        let mut body: Vec<u8> = Vec::new();
        let mut mini: Vec<u8> = Vec::new();
        let mut minifat: Vec<u32> = Vec::new();
        for f in flat.iter_mut().skip(1) {
            let Some(it) = self.items.get(f.item) else {
                continue;
            };
            if it.storage {
                f.start = 0;
                continue;
            }
            f.size = it.data.len() as u64;
            if it.data.is_empty() {
                f.start = END_OF_CHAIN;
            } else if it.data.len() >= MINI_CUTOFF {
                let start = fat.len();
                let n = sectors_for(it.data.len(), SECTOR);
                f.start = start as u32;
                chain(&mut fat, start, n);
                body.extend_from_slice(&it.data);
                body.resize(fat.len() * SECTOR, 0);
            } else {
                let start = minifat.len();
                let n = sectors_for(it.data.len(), MINI);
                f.start = start as u32;
                chain(&mut minifat, start, n);
                mini.extend_from_slice(&it.data);
                mini.resize(minifat.len() * MINI, 0);
            }
        }
        let place = |bytes: &[u8], fat: &mut Vec<u32>, body: &mut Vec<u8>| -> u32 {
            if bytes.is_empty() {
                return END_OF_CHAIN;
            }
            let start = fat.len();
            chain(fat, start, sectors_for(bytes.len(), SECTOR));
            body.extend_from_slice(bytes);
            body.resize(fat.len() * SECTOR, 0);
            start as u32
        };
        let mini_start = place(&mini, &mut fat, &mut body);
        if let Some(root) = flat.first_mut() {
            root.start = mini_start;
            root.size = mini.len() as u64;
        }
        let mut mf: Vec<u8> = minifat.iter().flat_map(|v| v.to_le_bytes()).collect();
        mf.resize(sectors_for(mf.len(), SECTOR) * SECTOR, 0xFF);
        let minifat_start = place(&mf, &mut fat, &mut body);
        let minifat_sectors = sectors_for(mf.len(), SECTOR);
        let mut dir: Vec<u8> = Vec::with_capacity(flat.len().next_multiple_of(4) * 128);
        for f in &flat {
            let Some(it) = self.items.get(f.item) else {
                continue;
            };
            let mut e = [0u8; 128];
            for (i, u) in it.name.iter().enumerate().take(31) {
                put(&mut e, 2 * i, &u.to_le_bytes());
            }
            let name_bytes = (it.name.len().min(31) * 2 + 2) as u16;
            e[64..66].copy_from_slice(&name_bytes.to_le_bytes());
            e[66] = if f.item == 0 {
                5
            } else if it.storage {
                1
            } else {
                2
            };
            e[67] = 1; // black
            e[68..72].copy_from_slice(&f.left.to_le_bytes());
            e[72..76].copy_from_slice(&f.right.to_le_bytes());
            e[76..80].copy_from_slice(&f.child.to_le_bytes());
            if it.storage {
                e[80..96].copy_from_slice(&it.meta.clsid);
                e[96..100].copy_from_slice(&it.meta.state_bits.to_le_bytes());
                // The root's creation time must be zero (MS-CFB 2.6.3).
                let created = if f.item == 0 { 0 } else { it.meta.created };
                e[100..108].copy_from_slice(&created.to_le_bytes());
                e[108..116].copy_from_slice(&it.meta.modified.to_le_bytes());
            } else {
                e[96..100].copy_from_slice(&it.meta.state_bits.to_le_bytes());
            }
            e[116..120].copy_from_slice(&f.start.to_le_bytes());
            e[120..128].copy_from_slice(&f.size.to_le_bytes());
            dir.extend_from_slice(&e);
        }
        while !dir.len().is_multiple_of(SECTOR) {
            // Unused entries: no name, type 0, links NOSTREAM.
            let mut e = [0u8; 128];
            e[68..80].fill(0xFF);
            dir.extend_from_slice(&e);
        }
        let dir_start = place(&dir, &mut fat, &mut body);
        // The FAT covers every sector, its own and the DIFAT's included.
        let data_sectors = fat.len();
        let mut fat_sectors = sectors_for(data_sectors, PER_SECTOR).max(1);
        let mut difat_sectors;
        loop {
            difat_sectors = sectors_for(fat_sectors.saturating_sub(HEADER_DIFAT), PER_SECTOR - 1);
            if data_sectors + fat_sectors + difat_sectors <= fat_sectors * PER_SECTOR {
                break;
            }
            fat_sectors += 1;
        }
        let total = data_sectors + fat_sectors + difat_sectors;
        if total as u64 > MAX_SECTOR {
            return Err(WriteError::TooLarge("the file".into()));
        }
        let fat_first = data_sectors;
        let difat_first = data_sectors + fat_sectors;
        fat.extend(std::iter::repeat_n(FAT_SECT, fat_sectors));
        fat.extend(std::iter::repeat_n(DIFAT_SECT, difat_sectors));
        fat.resize(fat_sectors * PER_SECTOR, FREE);
        let mut out = Vec::with_capacity(SECTOR * (1 + total));
        let mut header = [0u8; SECTOR];
        header[..8].copy_from_slice(&crate::container::cfb::SIGNATURE);
        header[24..26].copy_from_slice(&0x3Eu16.to_le_bytes());
        header[26..28].copy_from_slice(&3u16.to_le_bytes());
        header[28..30].copy_from_slice(&0xFFFEu16.to_le_bytes());
        header[30..32].copy_from_slice(&9u16.to_le_bytes());
        header[32..34].copy_from_slice(&6u16.to_le_bytes());
        header[44..48].copy_from_slice(&(fat_sectors as u32).to_le_bytes());
        header[48..52].copy_from_slice(&dir_start.to_le_bytes());
        header[56..60].copy_from_slice(&(MINI_CUTOFF as u32).to_le_bytes());
        header[60..64].copy_from_slice(&minifat_start.to_le_bytes());
        header[64..68].copy_from_slice(&(minifat_sectors as u32).to_le_bytes());
        let difat_start = if difat_sectors == 0 {
            END_OF_CHAIN
        } else {
            difat_first as u32
        };
        header[68..72].copy_from_slice(&difat_start.to_le_bytes());
        header[72..76].copy_from_slice(&(difat_sectors as u32).to_le_bytes());
        for i in 0..HEADER_DIFAT {
            let v = if i < fat_sectors {
                (fat_first + i) as u32
            } else {
                FREE
            };
            put(&mut header, 76 + 4 * i, &v.to_le_bytes());
        }
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        out.extend(fat.iter().flat_map(|v| v.to_le_bytes()));
        // DIFAT sectors: the FAT sectors past the header's 109, 127 a sector, then a link.
        let mut rest = (HEADER_DIFAT..fat_sectors).map(|i| (fat_first + i) as u32);
        for d in 0..difat_sectors {
            for _ in 0..PER_SECTOR - 1 {
                out.extend_from_slice(&rest.next().unwrap_or(FREE).to_le_bytes());
            }
            let next = if d + 1 == difat_sectors {
                END_OF_CHAIN
            } else {
                (difat_first + d + 1) as u32
            };
            out.extend_from_slice(&next.to_le_bytes());
        }
        Ok(out)
    }
}

/// What a policy does with a storage or stream of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Copied (a storage with the children its policy keeps).
    Yes,
    /// Left out, with what it is (`macro project`, `embedded OLE object`, ...).
    Drop(&'static str),
}

/// Edits a kept stream's bytes in place (`path`, bytes, the `removed` list).
pub(super) type Edit<'a> =
    dyn FnMut(&str, &mut Vec<u8>, &mut Vec<Removed>) -> Result<(), ConvertError> + 'a;

/// The streams of a compound file, by path.
#[cfg(test)]
type Streams = Vec<(String, Vec<u8>)>;

/// Most unreachable entries named one by one in `removed`.
const MAX_HIDDEN_LISTED: usize = 16;

/// The head every application policy shares: an entry under a top-level storage is
/// dropped with it (`Some(Drop)`), a top-level stream named in `kept` (ASCII
/// case-insensitively) is kept (`Some(Yes)`); anything else is the policy's to name (`None`).
pub(super) fn kept_top(e: &DirEntry, kept: &[&str]) -> Option<Keep> {
    let p = e.path.as_str();
    if !top(p) {
        return Some(Keep::Drop("stream of a dropped storage"));
    }
    (e.kind == EntryKind::Stream && kept.iter().any(|k| k.eq_ignore_ascii_case(p)))
        .then_some(Keep::Yes)
}

/// The same-format copy of `cfb` as a [`Disarmed`] of `file_type`: the storages and streams
/// that `keep` accepts copied into a new compound file (each kept stream edited through
/// `edit`), every dropped one named in `removed`. Failures are `{prefix}-STREAM` (a stream
/// that cannot be read), `{prefix}-TIME` and `{prefix}-WRITE` (a name or size the writer
/// refuses).
pub(super) fn copy_as(
    data: &[u8],
    cfb: &Cfb,
    ctx: &mut ScanContext,
    prefix: &str,
    file_type: FileType,
    keep: &dyn Fn(&DirEntry) -> Keep,
    edit: &mut Edit<'_>,
) -> Result<Disarmed, ConvertError> {
    let mut removed = Vec::new();
    let bytes = copy(data, cfb, ctx, prefix, keep, edit, &mut removed)?;
    Ok(Disarmed {
        bytes,
        file_type,
        removed,
    })
}

/// [`copy_as`]'s compound file alone, the removals added to `removed`.
fn copy(
    data: &[u8],
    cfb: &Cfb,
    ctx: &mut ScanContext,
    prefix: &str,
    keep: &dyn Fn(&DirEntry) -> Keep,
    edit: &mut Edit<'_>,
    removed: &mut Vec<Removed>,
) -> Result<Vec<u8>, ConvertError> {
    let root = cfb.entries.first();
    let mut out = Compound::new(root.map(Meta::of).unwrap_or_default());
    let mut children: HashMap<u32, Vec<&DirEntry>> = HashMap::new();
    let mut hidden = 0usize;
    for e in cfb.entries.iter().skip(1) {
        match e.parent {
            Some(p) if e.reachable => children.entry(p).or_default().push(e),
            _ if e.kind != EntryKind::Empty => {
                hidden += 1;
                if hidden <= MAX_HIDDEN_LISTED {
                    removed.push(Removed {
                        what: "unreachable directory entry (hidden data)".into(),
                        location: format!("directory entry {} ({:?})", e.id, e.name),
                    });
                }
            }
            _ => {}
        }
    }
    if hidden > MAX_HIDDEN_LISTED {
        removed.push(Removed {
            what: format!(
                "{} more unreachable directory entries",
                hidden - MAX_HIDDEN_LISTED
            ),
            location: "directory".into(),
        });
    }
    let mut held = 0u64;
    let mut queue = std::collections::VecDeque::from([(0u32, 0usize)]);
    let result = (|| {
        while let Some((cfb_id, parent)) = queue.pop_front() {
            let mut kids = children.remove(&cfb_id).unwrap_or_default();
            kids.sort_by_key(|e| e.id);
            for e in kids {
                let at = format!(
                    "{} {}",
                    if e.kind == EntryKind::Storage {
                        "storage"
                    } else {
                        "stream"
                    },
                    e.path
                );
                if ctx.out_of_time() {
                    return Err(ConvertError::at(
                        &format!("{prefix}-TIME"),
                        at,
                        "the time budget ran out".into(),
                    ));
                }
                match (keep(e), e.kind) {
                    (Keep::Drop(what), _) => removed.push(Removed {
                        what: what.into(),
                        location: at,
                    }),
                    (Keep::Yes, EntryKind::Storage) => {
                        let id = out.storage(parent, &e.name, Meta::of(e));
                        queue.push_back((e.id, id));
                    }
                    (Keep::Yes, EntryKind::Stream) => {
                        let Some(mut bytes) = cfb.read_stream(data, e, ctx) else {
                            return Err(ConvertError::at(
                                &format!("{prefix}-STREAM"),
                                at,
                                format!(
                                    "the stream's {} bytes cannot be read (broken sector chain or over the memory budget)",
                                    e.size
                                ),
                            ));
                        };
                        held += bytes.len() as u64;
                        edit(&e.path, &mut bytes, removed)?;
                        out.stream(parent, &e.name, Meta::of(e), bytes);
                    }
                    (Keep::Yes, _) => removed.push(Removed {
                        what: "directory entry of no storage or stream type".into(),
                        location: format!("directory entry {} ({:?})", e.id, e.name),
                    }),
                }
            }
        }
        out.write().map_err(|w| {
            ConvertError::at(
                &format!("{prefix}-WRITE"),
                "compound file".into(),
                w.to_string(),
            )
        })
    })();
    ctx.release(held);
    result
}

/// Whether the last part of `path` equals `name` (ASCII case-insensitively).
pub(super) fn named(path: &str, name: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

/// Whether `path` is a top-level entry (no storage above it).
pub(super) fn top(path: &str) -> bool {
    !path.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn read_all(file: &[u8]) -> (Cfb, Vec<String>, Streams) {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = Cfb::parse(file, &mut ctx).expect("our reader reads it back");
        let codes: Vec<String> = ctx.into_findings().into_iter().map(|f| f.code).collect();
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let mut streams: Vec<(String, Vec<u8>)> = cfb
            .entries
            .iter()
            .filter(|e| e.reachable && e.kind == EntryKind::Stream)
            .map(|e| (e.path.clone(), cfb.read_stream(file, e, &mut ctx).unwrap()))
            .collect();
        streams.sort();
        (cfb, codes, streams)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn round_trip_of_mini_and_regular_streams_in_storages() {
        let clsid = *b"0123456789abcdef";
        let mut c = Compound::new(Meta {
            clsid,
            state_bits: 0,
            created: 0,
            modified: 0x01D0_0000_0000_0001,
        });
        let st = c.storage(
            0,
            "Inner",
            Meta {
                clsid: [7; 16],
                state_bits: 5,
                created: 11,
                modified: 12,
            },
        );
        let deep = c.storage(st, "Deeper", Meta::default());
        let mut want = Vec::new();
        for (parent, prefix, name, len) in [
            (0usize, "", "Small", 10usize),
            (0, "", "Exactly4095", 4095),
            (0, "", "Exactly4096", 4096),
            (0, "", "Big", 70_000),
            (0, "", "\u{5}SummaryInformation", 200),
            (0, "", "Empty", 0),
            (st, "Inner/", "a", 64),
            (st, "Inner/", "bb", 65),
            (st, "Inner/", "B", 5000),
            (deep, "Inner/Deeper/", "z", 1),
        ] {
            let bytes = pattern(len, name.len() as u8);
            c.stream(parent, name, Meta::default(), bytes.clone());
            want.push((format!("{prefix}{name}"), bytes));
        }
        // Many siblings make a deeper balanced tree.
        for i in 0..40 {
            let name = format!("S{i:02}");
            let bytes = pattern(i * 37, i as u8);
            c.stream(0, &name, Meta::default(), bytes.clone());
            want.push((name, bytes));
        }
        want.sort();
        let file = c.write().unwrap();
        assert_eq!((file.len() - 512) % 512, 0);
        let (cfb, codes, got) = read_all(&file);
        assert!(codes.is_empty(), "{codes:?}");
        assert_eq!(got, want);
        assert_eq!(cfb.root_clsid(), clsid);
        let inner = cfb.find("Inner").unwrap();
        assert_eq!(inner.kind, EntryKind::Storage);
        assert_eq!(
            (inner.clsid, inner.state_bits, inner.created, inner.modified),
            ([7; 16], 5, 11, 12)
        );
        assert_eq!(cfb.entries[0].modified, 0x01D0_0000_0000_0001);
        // Every entry is reachable: no hidden data, no orphans.
        assert!(
            cfb.entries
                .iter()
                .all(|e| e.kind == EntryKind::Empty || e.reachable || e.id == 0)
        );
        // Siblings in name order: every left child sorts before, every right one after.
        for e in &cfb.entries {
            let name: Vec<u16> = e.name.encode_utf16().collect();
            for (link, want) in [
                (left_of(&file, e.id), std::cmp::Ordering::Less),
                (right_of(&file, e.id), std::cmp::Ordering::Greater),
            ] {
                if link != NO_STREAM {
                    let other: Vec<u16> = cfb.entries[link as usize].name.encode_utf16().collect();
                    assert_eq!(
                        name_order(&other, &name),
                        want,
                        "{} / {}",
                        e.name,
                        cfb.entries[link as usize].name
                    );
                }
            }
        }
    }

    fn dir_entry(file: &[u8], id: u32) -> &[u8] {
        // The writer puts the directory in consecutive sectors.
        let dir_start = crate::bytes::le32(file, 48).unwrap() as usize;
        let off = 512 + dir_start * 512 + id as usize * 128;
        &file[off..off + 128]
    }

    fn left_of(file: &[u8], id: u32) -> u32 {
        crate::bytes::le32(dir_entry(file, id), 68).unwrap()
    }

    fn right_of(file: &[u8], id: u32) -> u32 {
        crate::bytes::le32(dir_entry(file, id), 72).unwrap()
    }

    #[test]
    fn more_than_109_fat_sectors_go_through_difat_sectors() {
        // 109 FAT sectors cover 109 * 128 sectors (about 7 MB); 8 MB of streams need more.
        let mut c = Compound::new(Meta::default());
        let mut want = Vec::new();
        for i in 0..4 {
            let bytes = pattern(2 * 1024 * 1024 + i * 1000, i as u8);
            let name = format!("Part{i}");
            c.stream(0, &name, Meta::default(), bytes.clone());
            want.push((name, bytes));
        }
        let file = c.write().unwrap();
        let fat_sectors = crate::bytes::le32(&file, 44).unwrap();
        let difat_sectors = crate::bytes::le32(&file, 72).unwrap();
        assert!(fat_sectors > 109, "{fat_sectors}");
        assert_eq!(difat_sectors, 1);
        let limits = Limits {
            memory_bytes: 64 * 1024 * 1024,
            ..Limits::default()
        };
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = Cfb::parse(&file, &mut ctx).unwrap();
        assert!(ctx.into_findings().is_empty());
        let mut ctx = ScanContext::new(&limits, file.len());
        for (name, bytes) in &want {
            let e = cfb.find(name).unwrap();
            assert_eq!(
                &cfb.read_stream(&file, e, &mut ctx).unwrap(),
                bytes,
                "{name}"
            );
            ctx.release(bytes.len() as u64);
        }
    }

    #[test]
    fn bad_names_are_refused() {
        let mut c = Compound::new(Meta::default());
        c.stream(0, &"x".repeat(32), Meta::default(), vec![1]);
        assert!(matches!(c.write(), Err(WriteError::Name(_))));
        let mut c = Compound::new(Meta::default());
        c.stream(0, "", Meta::default(), vec![1]);
        assert!(matches!(c.write(), Err(WriteError::Name(_))));
        // 31 units is the most a name may have; an empty file is valid.
        let mut c = Compound::new(Meta::default());
        c.stream(0, &"x".repeat(31), Meta::default(), vec![1]);
        assert!(c.write().is_ok());
        let (_, codes, got) = read_all(&Compound::new(Meta::default()).write().unwrap());
        assert!(codes.is_empty() && got.is_empty(), "{codes:?}");
    }

    #[test]
    fn copy_drops_what_the_policy_refuses_and_edits_the_rest() {
        let file = crate::container::cfb::build::cfb(&[
            ("Keep", b"hello world"),
            ("Macros/VBA", b"Sub AutoOpen()"),
            ("Data", &[9u8; 5000]),
        ]);
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, file.len());
        let cfb = Cfb::parse(&file, &mut ctx).unwrap();
        let mut removed = Vec::new();
        let keep = |e: &DirEntry| {
            if e.path.starts_with("Macros") {
                Keep::Drop("macro storage")
            } else {
                Keep::Yes
            }
        };
        let mut edit = |path: &str, bytes: &mut Vec<u8>, _: &mut Vec<Removed>| {
            if path == "Keep" {
                bytes[0] = b'H';
            }
            Ok(())
        };
        let out = copy(
            &file,
            &cfb,
            &mut ctx,
            "CONVERT-CFB",
            &keep,
            &mut edit,
            &mut removed,
        )
        .unwrap();
        assert_eq!(
            removed,
            vec![Removed {
                what: "macro storage".into(),
                location: "storage Macros".into()
            }]
        );
        let (_, codes, got) = read_all(&out);
        assert!(codes.is_empty(), "{codes:?}");
        assert_eq!(
            got,
            vec![
                ("Data".to_owned(), vec![9u8; 5000]),
                ("Keep".to_owned(), b"Hello world".to_vec())
            ]
        );
    }
}
