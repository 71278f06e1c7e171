//! A strict reader of OLE2 compound files (CFB, MS-CFB): header fields per version, the
//! DIFAT/FAT/miniFAT sector chains (loops, double use, sectors past the end), the directory
//! red-black tree (references in range, no cycles), and stream sizes against their chains.
//! Streams are read through bounded chains; every problem is a finding with the sector or
//! directory entry where it is.

use haetae_core::Severity;

use crate::bytes::{le16, le32, le64, slice};
use crate::context::ScanContext;
use crate::finding::Location;

/// The compound-file signature.
pub const SIGNATURE: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const FREE: u32 = 0xFFFF_FFFF;
const END_OF_CHAIN: u32 = 0xFFFF_FFFE;
const FAT_SECT: u32 = 0xFFFF_FFFD;
const DIFAT_SECT: u32 = 0xFFFF_FFFC;
const NO_STREAM: u32 = 0xFFFF_FFFF;
const UNOWNED: u32 = u32::MAX;

/// Directory entry types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Unused slot.
    Empty,
    /// A storage (folder).
    Storage,
    /// A stream (file).
    Stream,
    /// The root storage, which also owns the mini stream.
    Root,
}

/// One directory entry.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Index in the directory.
    pub id: u32,
    /// The entry's own name.
    pub name: String,
    /// Full path from the root, `/`-separated (`Macros/VBA/dir`).
    pub path: String,
    /// Its type.
    pub kind: EntryKind,
    /// Class id (storages and root).
    pub clsid: [u8; 16],
    left: u32,
    right: u32,
    child: u32,
    start: u32,
    /// Declared stream size.
    pub size: u64,
    /// Whether the tree walk reached it (unreachable entries are hidden data).
    pub reachable: bool,
    /// The directory index of the storage holding it (`None` for the root and for entries
    /// the tree walk did not reach).
    pub parent: Option<u32>,
    /// User-defined state bits.
    pub state_bits: u32,
    /// Creation time (FILETIME, 0 when not recorded).
    pub created: u64,
    /// Modification time (FILETIME, 0 when not recorded).
    pub modified: u64,
}

/// A parsed compound file.
#[derive(Debug, Clone)]
pub struct Cfb {
    sector_size: usize,
    mini_cutoff: u64,
    sectors: usize,
    fat: Vec<u32>,
    minifat: Vec<u32>,
    mini_stream: Vec<u8>,
    /// The directory entries, in directory order.
    pub entries: Vec<DirEntry>,
}

fn entry_loc(e: &DirEntry) -> Location {
    let name = if e.path.is_empty() { &e.name } else { &e.path };
    Location::part(format!("directory entry {} ({name})", e.id))
}

/// Why a sector chain could not be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChainError {
    Loop(u32),
    PastEnd(u32),
    Free(u32),
}

impl Cfb {
    /// Parses and verifies the whole structure. `None` when the header or the directory is
    /// unusable (the findings say why).
    pub fn parse(data: &[u8], ctx: &mut ScanContext) -> Option<Cfb> {
        let Some(hdr) = slice(data, 0, 512) else {
            ctx.structure(
                "CFB-TRUNCATED",
                Severity::High,
                Location::at(data.len()),
                format!(
                    "{} bytes is shorter than the 512-byte compound-file header",
                    data.len()
                ),
            );
            return None;
        };
        let major = le16(hdr, 26)?;
        let byte_order = le16(hdr, 28)?;
        let sector_shift = le16(hdr, 30)?;
        let mini_shift = le16(hdr, 32)?;
        let n_dir_sectors = le32(hdr, 40)?;
        let n_fat = le32(hdr, 44)?;
        let first_dir = le32(hdr, 48)?;
        let mini_cutoff = le32(hdr, 56)?;
        let first_minifat = le32(hdr, 60)?;
        let n_minifat = le32(hdr, 64)?;
        let first_difat = le32(hdr, 68)?;
        let n_difat = le32(hdr, 72)?;
        let expected_shift = match major {
            3 => 9,
            4 => 12,
            _ => {
                ctx.structure(
                    "CFB-HEADER-VERSION",
                    Severity::High,
                    Location::at(26).with_part("header"),
                    format!("major version {major}; only 3 and 4 exist"),
                );
                return None;
            }
        };
        if sector_shift != expected_shift {
            ctx.structure(
                "CFB-SECTOR-SHIFT",
                Severity::High,
                Location::at(30).with_part("header"),
                format!("sector shift {sector_shift} in a version {major} file (must be {expected_shift})"),
            );
            if sector_shift != 9 && sector_shift != 12 {
                return None;
            }
        }
        if byte_order != 0xFFFE || mini_shift != 6 {
            ctx.structure(
                "CFB-HEADER",
                Severity::High,
                Location::at(28).with_part("header"),
                format!("byte order {byte_order:#06x} (must be 0xfffe), mini sector shift {mini_shift} (must be 6)"),
            );
        }
        if mini_cutoff != 4096 {
            ctx.structure(
                "CFB-MINI-CUTOFF",
                Severity::High,
                Location::at(56).with_part("header"),
                format!("mini stream cutoff {mini_cutoff} (must be 4096)"),
            );
        }
        if major == 3 && n_dir_sectors != 0 {
            ctx.structure(
                "CFB-HEADER",
                Severity::Medium,
                Location::at(40).with_part("header"),
                format!(
                    "{n_dir_sectors} directory sectors declared in a version 3 file (must be 0)"
                ),
            );
        }
        let sector_size = 1usize << sector_shift;
        let sectors = data.len().saturating_sub(sector_size).div_ceil(sector_size);
        let mut cfb = Cfb {
            sector_size,
            mini_cutoff: u64::from(mini_cutoff),
            sectors,
            fat: Vec::new(),
            minifat: Vec::new(),
            mini_stream: Vec::new(),
            entries: Vec::new(),
        };
        let mut owner = vec![UNOWNED; sectors];
        // DIFAT: 109 ids in the header, then a chain of DIFAT sectors.
        let mut fat_ids: Vec<u32> = (0..109)
            .filter_map(|i| le32(hdr, 76 + 4 * i))
            .take_while(|&s| s != FREE)
            .collect();
        let mut next = first_difat;
        let mut difat_seen = 0u32;
        while next != END_OF_CHAIN && next != FREE && difat_seen < n_difat.max(1) {
            if ctx.out_of_time() {
                return None;
            }
            let Some(sec) = cfb.sector(data, next) else {
                ctx.structure(
                    "CFB-SECTOR-PAST-EOF",
                    Severity::High,
                    Location::part(format!("DIFAT sector {next}")),
                    format!("DIFAT sector {next} is past the end of the file ({sectors} sectors)"),
                );
                break;
            };
            if !claim(&mut owner, next, DIFAT_SECT) {
                ctx.structure(
                    "CFB-DIFAT-LOOP",
                    Severity::High,
                    Location::part(format!("DIFAT sector {next}")),
                    "the DIFAT chain visits a sector twice",
                );
                break;
            }
            let per = sector_size / 4 - 1;
            fat_ids.extend(
                (0..per)
                    .filter_map(|i| le32(sec, 4 * i))
                    .filter(|&s| s != FREE),
            );
            next = le32(sec, 4 * per).unwrap_or(END_OF_CHAIN);
            difat_seen += 1;
        }
        if fat_ids.len() as u64 != u64::from(n_fat) {
            ctx.structure(
                "CFB-FAT-COUNT",
                Severity::High,
                Location::at(44).with_part("header"),
                format!(
                    "the header declares {n_fat} FAT sectors, the DIFAT lists {}",
                    fat_ids.len()
                ),
            );
        }
        fat_ids.truncate(sectors.max(1));
        for (i, &id) in fat_ids.iter().enumerate() {
            let Some(sec) = cfb.sector(data, id) else {
                ctx.structure(
                    "CFB-SECTOR-PAST-EOF",
                    Severity::High,
                    Location::part(format!("FAT sector #{i}")),
                    format!("FAT sector {id} is past the end of the file ({sectors} sectors)"),
                );
                continue;
            };
            if !claim(&mut owner, id, FAT_SECT) {
                ctx.structure(
                    "CFB-SECTOR-DOUBLE-USE",
                    Severity::High,
                    Location::part(format!("FAT sector #{i}")),
                    format!("sector {id} is listed twice as a FAT sector"),
                );
            }
            cfb.fat
                .extend((0..sector_size / 4).filter_map(|k| le32(sec, 4 * k)));
        }
        // Directory.
        let dir_chain = match cfb.chain(first_dir) {
            Ok(c) => c,
            Err(e) => {
                chain_finding(ctx, Location::part("directory chain"), e);
                return None;
            }
        };
        for &s in &dir_chain {
            if !claim(&mut owner, s, 0xFFFF_FF00) {
                ctx.structure(
                    "CFB-SECTOR-DOUBLE-USE",
                    Severity::High,
                    Location::part("directory chain"),
                    format!("directory sector {s} is also used by another chain"),
                );
            }
        }
        for &s in &dir_chain {
            let sec = cfb.sector(data, s).unwrap_or_default();
            for (k, raw) in sec.chunks_exact(128).enumerate() {
                let id = cfb.entries.len() as u32;
                if k > 0 || id > 0 {
                    // the root entry is not a user entry
                }
                if !ctx.count_entry() {
                    break;
                }
                cfb.entries.push(parse_entry(id, raw, major));
            }
        }
        let Some(root) = cfb.entries.first().cloned() else {
            ctx.structure(
                "CFB-DIRECTORY",
                Severity::High,
                Location::part("directory"),
                "the directory is empty",
            );
            return None;
        };
        if root.kind != EntryKind::Root {
            ctx.structure(
                "CFB-DIRECTORY",
                Severity::High,
                Location::part("directory entry 0"),
                "the first directory entry is not the root storage",
            );
            return None;
        }
        cfb.walk_tree(ctx);
        // miniFAT and mini stream.
        if n_minifat > 0 || first_minifat != END_OF_CHAIN {
            match cfb.chain(first_minifat) {
                Ok(chain) => {
                    for &s in &chain {
                        let _ = claim(&mut owner, s, 0xFFFF_FF01);
                        let sec = cfb.sector(data, s).unwrap_or_default();
                        cfb.minifat
                            .extend((0..sector_size / 4).filter_map(|k| le32(sec, 4 * k)));
                    }
                }
                Err(e) => chain_finding(ctx, Location::part("miniFAT chain"), e),
            }
        }
        if root.size > 0 {
            match cfb.chain(root.start) {
                Ok(chain) => {
                    for &s in &chain {
                        if !claim(&mut owner, s, 0) {
                            ctx.structure(
                                "CFB-SECTOR-DOUBLE-USE",
                                Severity::High,
                                Location::part("mini stream"),
                                format!("mini stream sector {s} is also used by another chain"),
                            );
                            break;
                        }
                    }
                }
                Err(e) => chain_finding(ctx, Location::part("mini stream chain"), e),
            }
            cfb.mini_stream = cfb.read_chain(data, &root, ctx, false, usize::MAX)?;
        }
        cfb.check_streams(data, ctx, &mut owner);
        Some(cfb)
    }

    fn sector<'d>(&self, data: &'d [u8], id: u32) -> Option<&'d [u8]> {
        let id = usize::try_from(id).ok()?;
        if id >= self.sectors {
            return None;
        }
        let start = (id + 1).checked_mul(self.sector_size)?;
        let end = (start + self.sector_size).min(data.len());
        data.get(start..end)
    }

    fn chain(&self, start: u32) -> Result<Vec<u32>, ChainError> {
        follow(&self.fat, start, self.sectors)
    }

    fn walk_tree(&mut self, ctx: &mut ScanContext) {
        let n = self.entries.len();
        let mut seen = vec![false; n];
        if let Some(root) = seen.first_mut() {
            *root = true;
        }
        let mut stack: Vec<(u32, String, u32)> = Vec::new();
        let root_child = self.entries.first().map_or(NO_STREAM, |e| e.child);
        stack.push((root_child, String::new(), 0));
        while let Some((id, parent, parent_id)) = stack.pop() {
            // Some writers leave 0 (the root, which is never a child) for "no link".
            if id == NO_STREAM || id == 0 {
                continue;
            }
            let Some(idx) = usize::try_from(id).ok().filter(|&i| i < n) else {
                ctx.structure(
                    "CFB-DIR-REF",
                    Severity::High,
                    Location::part(format!("directory under {parent:?}")),
                    format!("a tree link points to entry {id}, past the {n} entries"),
                );
                continue;
            };
            if seen.get(idx).copied().unwrap_or(true) {
                ctx.structure(
                    "CFB-DIR-LOOP",
                    Severity::High,
                    Location::part(format!("directory entry {id}")),
                    "the directory tree reaches this entry twice (a cycle or shared subtree)",
                );
                continue;
            }
            if let Some(s) = seen.get_mut(idx) {
                *s = true;
            }
            let Some(entry) = self.entries.get_mut(idx) else {
                continue;
            };
            entry.reachable = true;
            entry.parent = Some(parent_id);
            entry.path = if parent.is_empty() {
                entry.name.clone()
            } else {
                format!("{parent}/{}", entry.name)
            };
            let (left, right, child, kind, path) = (
                entry.left,
                entry.right,
                entry.child,
                entry.kind,
                entry.path.clone(),
            );
            if path.is_empty() || path.ends_with('/') {
                ctx.structure(
                    "CFB-DIR-NAME",
                    Severity::High,
                    Location::part(format!("directory entry {id}")),
                    "an entry in the tree has an empty name",
                );
            }
            if kind == EntryKind::Root {
                ctx.structure(
                    "CFB-DIRECTORY",
                    Severity::High,
                    Location::part(format!("directory entry {id}")),
                    "a second root entry inside the tree",
                );
            }
            stack.push((left, parent.clone(), parent_id));
            stack.push((right, parent, parent_id));
            if kind == EntryKind::Storage {
                stack.push((child, path, id));
            } else if child != NO_STREAM && child != 0 {
                ctx.structure(
                    "CFB-DIR-REF",
                    Severity::Low,
                    Location::part(format!("directory entry {id} ({path})")),
                    "a stream has a child link",
                );
            }
        }
    }

    fn check_streams(&self, data: &[u8], ctx: &mut ScanContext, owner: &mut [u32]) {
        // Each sector is claimed by the first chain that reaches it, so a chain that runs
        // into a claimed sector is either a loop (its own) or double use (another's), and
        // the whole walk costs one step per sector however hostile the tables are.
        let mut mini_owner = vec![UNOWNED; self.minifat.len()];
        for e in &self.entries {
            if e.kind != EntryKind::Stream || !e.reachable || e.size == 0 {
                continue;
            }
            if ctx.out_of_time() {
                return;
            }
            let mini = e.size < self.mini_cutoff;
            let (table, unit, limit) = if mini {
                (&self.minifat, 64u64, self.mini_stream.len().div_ceil(64))
            } else {
                (&self.fat, self.sector_size as u64, self.sectors)
            };
            let owners: &mut [u32] = if mini { &mut mini_owner } else { owner };
            let mut s = e.start;
            let mut len = 0u64;
            let mut last = None;
            let mut broken = false;
            while s != END_OF_CHAIN {
                let idx = s as usize;
                if s == FREE {
                    chain_finding(ctx, entry_loc(e), ChainError::Free(s));
                    broken = true;
                    break;
                }
                if idx >= limit || idx >= table.len() {
                    chain_finding(ctx, entry_loc(e), ChainError::PastEnd(s));
                    broken = true;
                    break;
                }
                match owners.get_mut(idx) {
                    Some(o) if *o == UNOWNED => *o = e.id,
                    Some(o) if *o == e.id => {
                        chain_finding(ctx, entry_loc(e), ChainError::Loop(s));
                        broken = true;
                        break;
                    }
                    _ => {
                        ctx.structure(
                            "CFB-SECTOR-DOUBLE-USE",
                            Severity::High,
                            entry_loc(e),
                            format!(
                                "{}sector {s} also belongs to another stream",
                                if mini { "mini " } else { "" }
                            ),
                        );
                        broken = true;
                        break;
                    }
                }
                len += 1;
                last = Some(s);
                s = table.get(idx).copied().unwrap_or(FREE);
            }
            if broken {
                continue;
            }
            let need = e.size.div_ceil(unit);
            if len < need {
                ctx.structure(
                    "CFB-STREAM-CHAIN",
                    Severity::High,
                    entry_loc(e),
                    format!(
                        "declares {} bytes but its chain holds only {len} sectors of {unit} bytes",
                        e.size
                    ),
                );
            } else if !mini && len == need {
                // The last sector may be cut short by the end of the file, but not the data.
                let end = last.map_or(0, |s| {
                    (u64::from(s) + 1) * unit + (e.size - (need - 1) * unit)
                });
                if end > data.len() as u64 {
                    ctx.structure(
                        "CFB-SECTOR-PAST-EOF",
                        Severity::High,
                        entry_loc(e),
                        format!(
                            "stream data runs to byte {end}, past the end of the file ({})",
                            data.len()
                        ),
                    );
                }
            }
        }
    }

    fn read_chain(
        &self,
        data: &[u8],
        e: &DirEntry,
        ctx: &mut ScanContext,
        mini: bool,
        max: usize,
    ) -> Option<Vec<u8>> {
        let (table, unit, limit) = if mini {
            (&self.minifat, 64usize, self.mini_stream.len().div_ceil(64))
        } else {
            (&self.fat, self.sector_size, self.sectors)
        };
        let want = usize::try_from(e.size).unwrap_or(usize::MAX).min(max);
        let need = want.div_ceil(unit);
        // At most `need` steps: a loop or a bad link simply ends the read early (the
        // structure check has reported it).
        let mut chain = Vec::new();
        let mut s = e.start;
        while s != END_OF_CHAIN && chain.len() < need {
            let idx = s as usize;
            if idx >= limit || idx >= table.len() {
                break;
            }
            chain.push(s);
            s = table.get(idx).copied().unwrap_or(END_OF_CHAIN);
        }
        let size = want.min(chain.len() * unit);
        if !ctx.reserve(size as u64, entry_loc(e)) {
            return None;
        }
        let mut out = Vec::with_capacity(size);
        for &s in &chain {
            if out.len() >= size {
                break;
            }
            let piece = if mini {
                let start = s as usize * 64;
                self.mini_stream
                    .get(start..(start + 64).min(self.mini_stream.len()))
                    .unwrap_or_default()
            } else {
                self.sector(data, s).unwrap_or_default()
            };
            let take = (size - out.len()).min(piece.len());
            out.extend_from_slice(piece.get(..take).unwrap_or_default());
        }
        Some(out)
    }

    /// Reads a stream's content (bounded by its chain and the memory budget). The memory is
    /// accounted while the caller holds it; call [`ScanContext::release`] with its length.
    pub fn read_stream(&self, data: &[u8], e: &DirEntry, ctx: &mut ScanContext) -> Option<Vec<u8>> {
        if e.kind != EntryKind::Stream {
            return None;
        }
        if e.size == 0 {
            return Some(Vec::new());
        }
        self.read_chain(data, e, ctx, e.size < self.mini_cutoff, usize::MAX)
    }

    /// Reads at most the first `max` bytes of a stream (a header), accounted like
    /// [`Cfb::read_stream`]: release the length when done.
    pub fn read_prefix(
        &self,
        data: &[u8],
        e: &DirEntry,
        max: usize,
        ctx: &mut ScanContext,
    ) -> Option<Vec<u8>> {
        if e.kind != EntryKind::Stream {
            return None;
        }
        self.read_chain(data, e, ctx, e.size < self.mini_cutoff, max)
    }

    /// The stream entry at this path (`WordDocument`, `Macros/VBA/dir`), case-insensitively
    /// as MS-CFB compares names.
    #[must_use]
    pub fn find(&self, path: &str) -> Option<&DirEntry> {
        self.entries
            .iter()
            .find(|e| e.reachable && e.path.eq_ignore_ascii_case(path))
    }

    /// The root storage's class id.
    #[must_use]
    pub fn root_clsid(&self) -> [u8; 16] {
        self.entries.first().map_or([0; 16], |e| e.clsid)
    }
}

fn claim(owner: &mut [u32], sector: u32, who: u32) -> bool {
    match owner.get_mut(sector as usize) {
        Some(o) if *o == UNOWNED => {
            *o = who;
            true
        }
        Some(_) => false,
        None => true,
    }
}

fn follow(table: &[u32], start: u32, limit: usize) -> Result<Vec<u32>, ChainError> {
    let mut chain = Vec::new();
    let mut seen = vec![false; limit.min(table.len())];
    let mut s = start;
    while s != END_OF_CHAIN {
        if s == FREE {
            return Err(ChainError::Free(s));
        }
        let idx = s as usize;
        let Some(visited) = seen.get_mut(idx) else {
            return Err(ChainError::PastEnd(s));
        };
        if *visited {
            return Err(ChainError::Loop(s));
        }
        *visited = true;
        chain.push(s);
        s = table.get(idx).copied().unwrap_or(FREE);
    }
    Ok(chain)
}

fn chain_finding(ctx: &mut ScanContext, loc: Location, e: ChainError) {
    let (code, msg) = match e {
        ChainError::Loop(s) => (
            "CFB-CHAIN-LOOP",
            format!("the sector chain loops back to sector {s}"),
        ),
        ChainError::PastEnd(s) => (
            "CFB-SECTOR-PAST-EOF",
            format!(
                "the sector chain reaches sector {s}, past the end of the file or the allocation table"
            ),
        ),
        ChainError::Free(_) => (
            "CFB-CHAIN-FREE",
            "the sector chain runs into a free sector".to_owned(),
        ),
    };
    ctx.structure(code, Severity::High, loc, msg);
}

fn parse_entry(id: u32, raw: &[u8], major: u16) -> DirEntry {
    let name_len = usize::from(le16(raw, 64).unwrap_or(0)).min(64);
    let units: Vec<u16> = (0..name_len.saturating_sub(2) / 2)
        .filter_map(|i| le16(raw, 2 * i))
        .collect();
    let name = String::from_utf16_lossy(&units);
    let kind = match raw.get(66) {
        Some(1) => EntryKind::Storage,
        Some(2) => EntryKind::Stream,
        Some(5) => EntryKind::Root,
        _ => EntryKind::Empty,
    };
    let mut clsid = [0u8; 16];
    if let Some(c) = slice(raw, 80, 16) {
        clsid.copy_from_slice(c);
    }
    let mut size = le64(raw, 120).unwrap_or(0);
    if major == 3 {
        size &= 0xFFFF_FFFF;
    }
    DirEntry {
        id,
        name,
        path: String::new(),
        kind,
        clsid,
        left: le32(raw, 68).unwrap_or(NO_STREAM),
        right: le32(raw, 72).unwrap_or(NO_STREAM),
        child: le32(raw, 76).unwrap_or(NO_STREAM),
        start: le32(raw, 116).unwrap_or(END_OF_CHAIN),
        size,
        reachable: false,
        parent: None,
        state_bits: le32(raw, 96).unwrap_or(0),
        created: le64(raw, 100).unwrap_or(0),
        modified: le64(raw, 108).unwrap_or(0),
    }
}

/// Builds small version-3 compound files for tests.
#[cfg(test)]
pub(crate) mod build {
    /// A file whose root holds these streams (each ≥ 4096 bytes goes in regular sectors,
    /// smaller ones in the mini stream), as siblings in a right-leaning chain; a name
    /// `storage/stream` puts the stream in a storage of the root (one level).
    pub(crate) fn cfb(streams: &[(&str, &[u8])]) -> Vec<u8> {
        const SS: usize = 512;
        let mut sectors: Vec<Vec<u8>> = Vec::new();
        let mut fat: Vec<u32> = Vec::new();
        let alloc = |data: &[u8], sectors: &mut Vec<Vec<u8>>, fat: &mut Vec<u32>| -> u32 {
            let start = sectors.len() as u32;
            let n = data.len().div_ceil(SS).max(1);
            for i in 0..n {
                let mut s = data
                    .get(i * SS..((i + 1) * SS).min(data.len()))
                    .unwrap_or(&[])
                    .to_vec();
                s.resize(SS, 0);
                sectors.push(s);
                fat.push(if i + 1 == n {
                    0xFFFF_FFFE
                } else {
                    start + i as u32 + 1
                });
            }
            start
        };
        let mut mini = Vec::new();
        let mut minifat: Vec<u32> = Vec::new();
        let mut starts = Vec::new();
        for (_, d) in streams {
            if d.len() >= 4096 {
                starts.push(alloc(d, &mut sectors, &mut fat));
            } else {
                let start = (mini.len() / 64) as u32;
                let n = d.len().div_ceil(64).max(1);
                for i in 0..n {
                    minifat.push(if i + 1 == n {
                        0xFFFF_FFFE
                    } else {
                        start + i as u32 + 1
                    });
                }
                mini.extend_from_slice(d);
                mini.resize((start as usize + n) * 64, 0);
                starts.push(start);
            }
        }
        let mini_start = if mini.is_empty() {
            0xFFFF_FFFE
        } else {
            alloc(&mini, &mut sectors, &mut fat)
        };
        let mut mf = Vec::new();
        for v in &minifat {
            mf.extend_from_slice(&v.to_le_bytes());
        }
        let minifat_start = if mf.is_empty() {
            0xFFFF_FFFE
        } else {
            alloc(&mf, &mut sectors, &mut fat)
        };
        let mut dir = Vec::new();
        let entry = |name: &str, kind: u8, right: u32, child: u32, start: u32, size: u64| {
            let mut e = vec![0u8; 128];
            let units: Vec<u16> = name.encode_utf16().chain([0]).collect();
            for (i, u) in units.iter().enumerate() {
                e[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
            }
            e[64..66].copy_from_slice(&((units.len() * 2) as u16).to_le_bytes());
            e[66] = kind;
            e[67] = 1;
            e[68..72].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
            e[72..76].copy_from_slice(&right.to_le_bytes());
            e[76..80].copy_from_slice(&child.to_le_bytes());
            e[116..120].copy_from_slice(&start.to_le_bytes());
            e[120..128].copy_from_slice(&size.to_le_bytes());
            e
        };
        // Directory: the root, its children (streams, and a storage for each `a/` prefix),
        // then each storage's streams; siblings in a right-leaning chain.
        let mut top: Vec<(String, Option<usize>)> = Vec::new();
        let mut inner: Vec<Vec<usize>> = Vec::new();
        for (i, (name, _)) in streams.iter().enumerate() {
            if let Some((storage, _)) = name.split_once('/') {
                if let Some(k) = top.iter().position(|(n, s)| s.is_none() && n == storage) {
                    let slot = top.iter().take(k).filter(|(_, s)| s.is_none()).count();
                    inner[slot].push(i);
                } else {
                    top.push((storage.to_owned(), None));
                    inner.push(vec![i]);
                }
            } else {
                top.push(((*name).to_owned(), Some(i)));
            }
        }
        let first_child = if top.is_empty() { 0xFFFF_FFFF } else { 1 };
        dir.extend(entry(
            "Root Entry",
            5,
            0xFFFF_FFFF,
            first_child,
            mini_start,
            mini.len() as u64,
        ));
        let mut next_inner = 1 + top.len() as u32;
        let mut storage_no = 0usize;
        let mut inner_dirs = Vec::new();
        for (k, (name, stream)) in top.iter().enumerate() {
            let right = if k + 1 < top.len() {
                k as u32 + 2
            } else {
                0xFFFF_FFFF
            };
            if let Some(i) = stream {
                dir.extend(entry(
                    name,
                    2,
                    right,
                    0xFFFF_FFFF,
                    starts[*i],
                    streams[*i].1.len() as u64,
                ));
            } else {
                let kids = &inner[storage_no];
                storage_no += 1;
                dir.extend(entry(name, 1, right, next_inner, 0, 0));
                for (j, &i) in kids.iter().enumerate() {
                    let right = if j + 1 < kids.len() {
                        next_inner + j as u32 + 1
                    } else {
                        0xFFFF_FFFF
                    };
                    let own = streams[i].0.split_once('/').map_or("", |(_, n)| n);
                    inner_dirs.extend(entry(
                        own,
                        2,
                        right,
                        0xFFFF_FFFF,
                        starts[i],
                        streams[i].1.len() as u64,
                    ));
                }
                next_inner += kids.len() as u32;
            }
        }
        dir.extend(inner_dirs);
        let dir_start = alloc(&dir, &mut sectors, &mut fat);
        // The FAT itself: one sector is enough for these fixtures (128 entries).
        let fat_sector = sectors.len() as u32;
        fat.push(0xFFFF_FFFD);
        let mut fs = Vec::new();
        for v in &fat {
            fs.extend_from_slice(&v.to_le_bytes());
        }
        fs.resize(SS, 0xFF);
        sectors.push(fs);
        let mut out = vec![0u8; 512];
        out[..8].copy_from_slice(&super::SIGNATURE);
        out[24..26].copy_from_slice(&0x3Eu16.to_le_bytes());
        out[26..28].copy_from_slice(&3u16.to_le_bytes());
        out[28..30].copy_from_slice(&0xFFFEu16.to_le_bytes());
        out[30..32].copy_from_slice(&9u16.to_le_bytes());
        out[32..34].copy_from_slice(&6u16.to_le_bytes());
        out[44..48].copy_from_slice(&1u32.to_le_bytes());
        out[48..52].copy_from_slice(&dir_start.to_le_bytes());
        out[56..60].copy_from_slice(&4096u32.to_le_bytes());
        out[60..64].copy_from_slice(&minifat_start.to_le_bytes());
        out[64..68].copy_from_slice(&(u32::from(!mf.is_empty())).to_le_bytes());
        out[68..72].copy_from_slice(&0xFFFF_FFFEu32.to_le_bytes());
        for i in 0..109 {
            out[76 + 4 * i..80 + 4 * i].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        }
        out[76..80].copy_from_slice(&fat_sector.to_le_bytes());
        for s in sectors {
            out.extend_from_slice(&s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn parse_codes(data: &[u8]) -> (Option<Cfb>, Vec<String>) {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, data.len());
        let cfb = Cfb::parse(data, &mut ctx);
        (
            cfb,
            ctx.into_findings().into_iter().map(|f| f.code).collect(),
        )
    }

    #[test]
    fn a_well_formed_file_reads_back_its_streams() {
        let big = vec![7u8; 5000];
        let f = build::cfb(&[("Small", b"tiny"), ("Big", &big)]);
        let (cfb, codes) = parse_codes(&f);
        assert_eq!(codes, Vec::<String>::new());
        let cfb = cfb.unwrap();
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, 0);
        let small = cfb.find("small").unwrap();
        assert_eq!(cfb.read_stream(&f, small, &mut ctx).unwrap(), b"tiny");
        let b = cfb.find("Big").unwrap();
        assert_eq!(cfb.read_stream(&f, b, &mut ctx).unwrap(), big);
    }

    #[test]
    fn a_fat_chain_that_loops_is_reported() {
        let big = vec![7u8; 5000];
        let mut f = build::cfb(&[("Big", &big)]);
        // The stream starts at sector 0; point its 3rd FAT entry back at sector 0.
        let fat_sector = (f.len() - 512) / 512 - 1;
        let fat_off = 512 + fat_sector * 512;
        f[fat_off + 8..fat_off + 12].copy_from_slice(&0u32.to_le_bytes());
        let (_, codes) = parse_codes(&f);
        assert!(codes.contains(&"CFB-CHAIN-LOOP".to_owned()), "{codes:?}");
    }

    #[test]
    fn a_wrong_sector_shift_is_reported() {
        let mut f = build::cfb(&[("S", b"x")]);
        f[30] = 12;
        let (_, codes) = parse_codes(&f);
        assert_eq!(codes.first().map(String::as_str), Some("CFB-SECTOR-SHIFT"));
    }

    #[test]
    fn a_stream_longer_than_its_chain_is_reported() {
        let big = vec![7u8; 5000];
        let mut f = build::cfb(&[("Big", &big)]);
        // The directory is the second-to-last sector; entry 1's size field.
        let dir_off = f.len() - 1024;
        f[dir_off + 128 + 120..dir_off + 128 + 124].copy_from_slice(&9000u32.to_le_bytes());
        let (_, codes) = parse_codes(&f);
        assert!(codes.contains(&"CFB-STREAM-CHAIN".to_owned()), "{codes:?}");
    }
}
