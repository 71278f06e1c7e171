//! The cross-reference chain and the object graph, with bounded work:
//!
//! * the chain from `startxref` through every `/Prev` (classic sections and xref streams):
//!   offsets inside the file, no section visited twice (a `/Prev` loop hangs readers that
//!   follow it), at most [`MAX_SECTIONS`];
//! * cross-reference streams (PDF 1.5): `/W` field widths, `/Index` ranges against `/Size`,
//!   the decoded length against the entries it must hold, and in-use entries that point at
//!   their object;
//! * the page tree from `/Root`: `/Kids` that lead back to a node already visited (a
//!   reference loop: unbounded recursion in readers) or nest deeper than [`MAX_DEPTH`];
//!   nodes inside object streams (PDF 1.5 `/ObjStm`) are resolved too, from streams decoded
//!   on the first miss (at most [`MAX_OBJECT_STREAMS`] streams and [`MAX_OBJSTM_BYTES`]
//!   decoded, under the inflate caps and the memory budget), and a stream header that
//!   disagrees with `/N` or `/First` is a `PDF-OBJSTM` finding.

use std::collections::{HashMap, HashSet};

use haetae_core::Severity;

use crate::bytes::{find, tail};
use crate::container::inflate::{Framing, inflate_partial};
use crate::context::ScanContext;
use crate::finding::Location;

/// Most cross-reference sections followed through `/Prev`.
pub const MAX_SECTIONS: usize = 1024;
/// Deepest page tree walked.
pub const MAX_DEPTH: usize = 256;

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b)
}

fn skip_ws(s: &[u8], mut p: usize) -> usize {
    while s.get(p).is_some_and(u8::is_ascii_whitespace) {
        p += 1;
    }
    p
}

fn read_uint(s: &[u8], p: usize) -> Option<(u64, usize)> {
    let start = p;
    let mut e = p;
    while s.get(e).is_some_and(u8::is_ascii_digit) && e - start < 20 {
        e += 1;
    }
    let n = std::str::from_utf8(s.get(start..e)?).ok()?.parse().ok()?;
    Some((n, e))
}

/// The value text after `/Key` in a dictionary (first occurrence as a whole name).
fn key_at(dict: &[u8], key: &[u8]) -> Option<usize> {
    let mut p = 0;
    while let Some(at) = find(dict, key, p) {
        p = at + key.len();
        if dict.get(p).is_none_or(|&b| is_delim(b)) {
            return Some(skip_ws(dict, p));
        }
    }
    None
}

/// `/Key N` as a number.
fn int(dict: &[u8], key: &[u8]) -> Option<u64> {
    read_uint(dict, key_at(dict, key)?).map(|(n, _)| n)
}

/// `/Key N G R` as an object number.
fn reference(dict: &[u8], key: &[u8]) -> Option<u64> {
    let p = key_at(dict, key)?;
    let (n, e) = read_uint(dict, p)?;
    let (_, e) = read_uint(dict, skip_ws(dict, e))?;
    (dict.get(skip_ws(dict, e)) == Some(&b'R')).then_some(n)
}

/// `/Key [a b c ...]` as numbers (at most `max`).
fn int_array(dict: &[u8], key: &[u8], max: usize) -> Option<Vec<u64>> {
    let p = key_at(dict, key)?;
    if dict.get(p) != Some(&b'[') {
        return None;
    }
    let end = p + dict.get(p..)?.iter().position(|&b| b == b']')?;
    let inner = dict.get(p + 1..end)?;
    let mut out = Vec::new();
    for w in inner
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
    {
        out.push(std::str::from_utf8(w).ok()?.parse().ok()?);
        if out.len() > max {
            return None;
        }
    }
    Some(out)
}

/// The dictionary text of an object starting at `off` (`N G obj << ... >>`), up to its
/// `stream` keyword or `endobj`, at most 64 KiB.
fn object_dict(data: &[u8], off: usize) -> Option<&[u8]> {
    let s = data.get(off..)?;
    let s = s.get(..s.len().min(65_536))?;
    let end = [find(s, b"stream", 0), find(s, b"endobj", 0)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(s.len());
    s.get(..end)
}

/// Whether `N G obj` starts at `off` (after optional whitespace).
fn object_header_at(data: &[u8], off: usize) -> Option<u64> {
    let p = skip_ws(data, off);
    let (n, e) = read_uint(data, p)?;
    let (_, e) = read_uint(data, skip_ws(data, e))?;
    let e = skip_ws(data, e);
    (data.get(e..e + 3) == Some(b"obj")).then_some(n)
}

/// Undoes a PNG predictor (`/Predictor` 10..15) row by row, one byte per pixel.
fn unpredict(raw: &[u8], columns: usize) -> Option<Vec<u8>> {
    if columns == 0 || columns > 1 << 16 {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut prev = vec![0u8; columns];
    for row in raw.chunks(columns + 1) {
        let (&filter, bytes) = row.split_first()?;
        let mut cur = vec![0u8; columns];
        for (i, &b) in bytes.iter().enumerate() {
            let left = if i > 0 {
                cur.get(i - 1).copied().unwrap_or(0)
            } else {
                0
            };
            let up = prev.get(i).copied().unwrap_or(0);
            let ul = if i > 0 {
                prev.get(i - 1).copied().unwrap_or(0)
            } else {
                0
            };
            let pred = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => {
                    let p = i16::from(left) + i16::from(up) - i16::from(ul);
                    let (pa, pb, pc) = (
                        (p - i16::from(left)).abs(),
                        (p - i16::from(up)).abs(),
                        (p - i16::from(ul)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        ul
                    }
                }
                _ => return None,
            };
            if let Some(c) = cur.get_mut(i) {
                *c = b.wrapping_add(pred);
            }
        }
        out.extend_from_slice(cur.get(..bytes.len()).unwrap_or_default());
        prev = cur;
    }
    Some(out)
}

/// Follows `startxref` and every `/Prev`; returns the trailer dictionaries seen (for
/// `/Root`), classic and stream alike.
pub fn check_chain(data: &[u8], start: usize, ctx: &mut ScanContext) -> Vec<Vec<u8>> {
    let mut trailers = Vec::new();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut next = Some(start);
    while let Some(off) = next.take() {
        if ctx.out_of_time() {
            break;
        }
        if !seen.insert(off) {
            ctx.structure(
                "PDF-XREF-LOOP",
                Severity::High,
                Location::at(off).with_part("xref chain"),
                format!("the /Prev chain returns to the section at {off}: readers that follow it never stop"),
            );
            break;
        }
        if seen.len() > MAX_SECTIONS {
            ctx.structure(
                "PDF-XREF-LOOP",
                Severity::Medium,
                Location::at(off).with_part("xref chain"),
                format!("more than {MAX_SECTIONS} cross-reference sections"),
            );
            break;
        }
        if off >= data.len() {
            ctx.structure(
                "PDF-XREF-PREV",
                Severity::Medium,
                Location::at(off).with_part("xref chain"),
                format!(
                    "a cross-reference section at {off}, past the end of the file ({} bytes)",
                    data.len()
                ),
            );
            break;
        }
        let dict = if data.get(off..off + 4) == Some(b"xref") {
            // Classic: the trailer dictionary follows the table.
            let Some(t) = find(data, b"trailer", off) else {
                break;
            };
            let d = object_dict(data, t).unwrap_or_default();
            let end = find(d, b"startxref", 0).unwrap_or(d.len());
            d.get(..end).unwrap_or_default().to_vec()
        } else if object_header_at(data, off).is_some() {
            let Some(d) = object_dict(data, off) else {
                break;
            };
            if find(d, b"/XRef", 0).is_none() {
                break; // reported by the caller as a bad startxref
            }
            check_xref_stream(data, off, d, ctx);
            d.to_vec()
        } else {
            if off != start {
                ctx.structure(
                    "PDF-XREF-PREV",
                    Severity::Medium,
                    Location::at(off).with_part("xref chain"),
                    format!("/Prev points to {off}, where there is no cross-reference section"),
                );
            }
            break;
        };
        next = int(&dict, b"/Prev").and_then(|p| usize::try_from(p).ok());
        // A hybrid file's /XRefStm is one more section to verify.
        if let Some(x) = int(&dict, b"/XRefStm").and_then(|p| usize::try_from(p).ok())
            && !seen.contains(&x)
            && let Some(d) = object_dict(data, x).filter(|_| object_header_at(data, x).is_some())
            && find(d, b"/XRef", 0).is_some()
        {
            check_xref_stream(data, x, d, ctx);
        }
        trailers.push(dict);
    }
    trailers
}

fn xref_stream_body<'d>(data: &'d [u8], off: usize, dict: &[u8]) -> Option<&'d [u8]> {
    let kw = off + find(data.get(off..)?, b"stream", 0)?;
    let start = match (data.get(kw + 6), data.get(kw + 7)) {
        (Some(b'\r'), Some(b'\n')) => kw + 8,
        (Some(b'\n' | b'\r'), _) => kw + 7,
        _ => return None,
    };
    let end = match int(dict, b"/Length").and_then(|l| usize::try_from(l).ok()) {
        Some(l) if start.checked_add(l).is_some_and(|e| e <= data.len()) => start + l,
        _ => start + find(data.get(start..)?, b"endstream", 0)?,
    };
    data.get(start..end)
}

/// A cross-reference stream's fields against its decoded data.
fn check_xref_stream(data: &[u8], off: usize, dict: &[u8], ctx: &mut ScanContext) {
    let loc = || Location::at(off).with_part("xref stream");
    let w = int_array(dict, b"/W", 3).unwrap_or_default();
    let size = int(dict, b"/Size");
    let (Some(size), [w0, w1, w2]) = (size, w.as_slice()) else {
        ctx.structure(
            "PDF-XREF-STREAM",
            Severity::High,
            loc(),
            "a cross-reference stream needs /Size and a /W array of three field widths",
        );
        return;
    };
    let (w0, w1, w2) = (*w0, *w1, *w2);
    if w0 > 4 || w1 > 8 || w2 > 8 || w1 == 0 {
        ctx.structure(
            "PDF-XREF-STREAM",
            Severity::High,
            loc(),
            format!("/W [{w0} {w1} {w2}]: the type field takes at most 4 bytes, the others at most 8, and the offset field at least 1"),
        );
        return;
    }
    let index = int_array(dict, b"/Index", 2048).unwrap_or_else(|| vec![0, size]);
    if !index.len().is_multiple_of(2) {
        ctx.structure(
            "PDF-XREF-STREAM",
            Severity::High,
            loc(),
            "/Index holds an odd count of numbers (it is pairs of first object and count)",
        );
        return;
    }
    let mut entries = 0u64;
    for pair in index.chunks_exact(2) {
        let (first, count) = (
            pair.first().copied().unwrap_or(0),
            pair.get(1).copied().unwrap_or(0),
        );
        if first.saturating_add(count) > size {
            ctx.structure(
                "PDF-XREF-STREAM",
                Severity::High,
                loc(),
                format!("/Index range {first}+{count} runs past /Size {size}"),
            );
            return;
        }
        entries += count;
    }
    let Some(body) = xref_stream_body(data, off, dict) else {
        return;
    };
    let flate = find(dict, b"/FlateDecode", 0).is_some();
    let decoded = if flate {
        let cap = (ctx.inflate_cap(body.len()) as u64).min(16 << 20);
        let (out, result) = inflate_partial(body, Framing::Zlib, cap);
        if result.is_err() {
            return; // the stream pass reports broken or oversized Flate data
        }
        out
    } else if find(dict, b"/Filter", 0).is_none() {
        body.to_vec()
    } else {
        return;
    };
    let predictor = int(dict, b"/Predictor").unwrap_or(1);
    let row = usize::try_from(w0 + w1 + w2).unwrap_or(0);
    let decoded = if predictor >= 10 {
        let columns = int(dict, b"/Columns")
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(1);
        match unpredict(&decoded, columns) {
            Some(d) => d,
            None => {
                ctx.structure(
                    "PDF-XREF-STREAM",
                    Severity::Medium,
                    loc(),
                    "the predictor rows of the cross-reference stream are broken",
                );
                return;
            }
        }
    } else {
        decoded
    };
    let need = entries.saturating_mul(row as u64);
    if (decoded.len() as u64) < need {
        ctx.structure(
            "PDF-XREF-STREAM",
            Severity::High,
            loc(),
            format!(
                "{entries} entries of {row} bytes need {need} bytes, the stream decodes to {}",
                decoded.len()
            ),
        );
        return;
    }
    let field = |e: &[u8], from: usize, width: u64| -> u64 {
        e.get(from..from + width as usize)
            .unwrap_or_default()
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
    };
    let (mut bad, mut checked) = (0u64, 0u64);
    let mut first_bad = None;
    let mut obj = 0u64;
    let mut pairs = index.chunks_exact(2);
    let mut left = 0u64;
    for e in decoded.chunks_exact(row.max(1)).take(entries as usize) {
        while left == 0 {
            let Some(pair) = pairs.next() else { break };
            obj = pair.first().copied().unwrap_or(0);
            left = pair.get(1).copied().unwrap_or(0);
        }
        left = left.saturating_sub(1);
        let kind = if w0 == 0 { 1 } else { field(e, 0, w0) };
        let f1 = field(e, w0 as usize, w1);
        // Offset 0 in a type-1 entry is a common writer slip for an unused number.
        if kind == 1 && f1 != 0 && checked < 100_000 {
            checked += 1;
            let at = usize::try_from(f1).unwrap_or(usize::MAX);
            if object_header_at(data, at) != Some(obj) {
                bad += 1;
                first_bad.get_or_insert((obj, f1));
            }
        }
        obj += 1;
    }
    if let Some((o, at)) = first_bad {
        ctx.structure(
            "PDF-XREF-OFFSET",
            Severity::Medium,
            loc(),
            format!("{bad} of {checked} in-use entries point elsewhere than their object (first: object {o} at {at})"),
        );
    }
}

/// Where each `N G obj` starts (the last definition of a number wins, as in an update).
fn object_index(data: &[u8], ctx: &mut ScanContext) -> HashMap<u64, usize> {
    let mut index = HashMap::new();
    let mut p = 0;
    while let Some(at) = find(data, b"obj", p) {
        p = at + 3;
        if data.get(at + 3).is_some_and(|&b| !is_delim(b)) || index.len() > 1_000_000 {
            continue;
        }
        // Walk back over "N G ".
        let mut s = at;
        let mut fields = 0;
        while fields < 2 && s > 0 {
            while s > 0 && data.get(s - 1).is_some_and(u8::is_ascii_whitespace) {
                s -= 1;
            }
            let end = s;
            while s > 0 && data.get(s - 1).is_some_and(u8::is_ascii_digit) {
                s -= 1;
            }
            if s == end {
                break;
            }
            fields += 1;
        }
        if fields == 2
            && let Some(n) = object_header_at(data, s)
        {
            index.insert(n, s);
        }
        if ctx.out_of_time() {
            break;
        }
    }
    index
}

/// Most object streams decoded for the page-tree walk.
pub const MAX_OBJECT_STREAMS: usize = 4096;
/// Most bytes decoded from object streams for the walk, over the whole file.
pub const MAX_OBJSTM_BYTES: u64 = 64 << 20;
/// Most objects taken from one object stream's header.
const MAX_OBJSTM_OBJECTS: u64 = 100_000;

/// The objects held in object streams (PDF 1.5 `/Type /ObjStm`), decoded on first need so
/// that the page-tree walk can resolve them; bounded by [`MAX_OBJECT_STREAMS`],
/// [`MAX_OBJSTM_BYTES`], the inflate caps and the memory budget.
#[derive(Debug, Default)]
struct ObjectStreams {
    /// Decoded stream contents.
    decoded: Vec<Vec<u8>>,
    /// Object number → (stream, start, end) of its text in `decoded`.
    objects: HashMap<u64, (usize, usize, usize)>,
    /// Memory reserved for `decoded`, released by [`ObjectStreams::release`].
    held: u64,
}

impl ObjectStreams {
    /// Decodes every object stream among the objects in `index`.
    fn build(data: &[u8], index: &HashMap<u64, usize>, ctx: &mut ScanContext) -> ObjectStreams {
        let mut out = ObjectStreams::default();
        let mut starts: Vec<(usize, u64)> = index.iter().map(|(&n, &o)| (o, n)).collect();
        starts.sort_unstable();
        let mut total: u64 = 0;
        let mut p = 0;
        while let Some(at) = find(data, b"/ObjStm", p) {
            p = at + 7;
            if out.decoded.len() >= MAX_OBJECT_STREAMS || ctx.out_of_time() {
                break;
            }
            // The object whose header is the last one before the name.
            let Some(&(off, number)) = starts
                .get(..starts.partition_point(|&(o, _)| o < at))
                .and_then(<[(usize, u64)]>::last)
            else {
                continue;
            };
            let Some(dict) = object_dict(data, off) else {
                continue;
            };
            // The name must be this object's /Type, inside its dictionary.
            let is_type =
                key_at(dict, b"/Type").is_some_and(|v| dict.get(v..v + 7) == Some(b"/ObjStm"));
            if off + dict.len() <= at || !is_type {
                continue;
            }
            let unfiltered = find(dict, b"/Filter", 0).is_none();
            let flate =
                matches!(super::filters(dict).as_slice(), [f] if f == b"FlateDecode" || f == b"Fl");
            if !(unfiltered || flate) || find(dict, b"/DecodeParms", 0).is_some() {
                continue; // other filters and predictors are not decoded here
            }
            let (Some(count), Some(first)) = (int(dict, b"/N"), int(dict, b"/First")) else {
                continue;
            };
            let Some(body) = xref_stream_body(data, off, dict) else {
                continue;
            };
            let room = MAX_OBJSTM_BYTES.saturating_sub(total);
            let cap = (ctx.inflate_cap(body.len()) as u64).min(room);
            let decoded = if flate {
                match inflate_partial(body, Framing::Zlib, cap) {
                    (d, Ok(_)) => d,
                    _ => continue, // the stream pass reports broken or oversized data
                }
            } else if (body.len() as u64) <= room {
                body.to_vec()
            } else {
                continue;
            };
            let len = decoded.len() as u64;
            if !ctx.reserve(
                len,
                Location::at(off).with_part(format!("object stream {number}")),
            ) {
                break;
            }
            out.held += len;
            total += len;
            out.add(decoded, number, off, count, first, ctx);
        }
        out
    }

    /// Indexes one decoded stream: `count` pairs of object number and offset, then the
    /// objects from byte `first`.
    fn add(
        &mut self,
        decoded: Vec<u8>,
        number: u64,
        off: usize,
        count: u64,
        first: u64,
        ctx: &mut ScanContext,
    ) {
        let loc = || Location::at(off).with_part(format!("object stream {number}"));
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        if first > decoded.len() {
            ctx.structure(
                "PDF-OBJSTM",
                Severity::Low,
                loc(),
                format!(
                    "/First {first} lies past the {} decoded bytes of the object stream",
                    decoded.len()
                ),
            );
            return;
        }
        let header = decoded.get(..first).unwrap_or_default();
        let mut pairs: Vec<(u64, usize)> = Vec::new();
        let mut p = 0;
        for _ in 0..count.min(MAX_OBJSTM_OBJECTS) {
            let Some((n, e)) = read_uint(header, skip_ws(header, p)) else {
                break;
            };
            let Some((o, e)) = read_uint(header, skip_ws(header, e)) else {
                break;
            };
            p = e;
            let start = usize::try_from(o)
                .unwrap_or(usize::MAX)
                .saturating_add(first);
            if start > decoded.len() {
                ctx.structure(
                    "PDF-OBJSTM",
                    Severity::Low,
                    loc(),
                    format!("object {n} at offset {o} lies past the end of the object stream"),
                );
                return;
            }
            pairs.push((n, start));
        }
        if (pairs.len() as u64) < count.min(MAX_OBJSTM_OBJECTS) {
            ctx.structure(
                "PDF-OBJSTM",
                Severity::Low,
                loc(),
                format!(
                    "/N {count} but the header holds {} number/offset pairs",
                    pairs.len()
                ),
            );
        }
        let slot = self.decoded.len();
        // Each object runs to the next one's start (or the end), at most 64 KiB as for
        // direct objects.
        let mut ends: Vec<usize> = pairs.iter().map(|&(_, s)| s).collect();
        ends.sort_unstable();
        for &(n, start) in &pairs {
            let next = ends
                .get(ends.partition_point(|&e| e <= start))
                .copied()
                .unwrap_or(decoded.len());
            let end = next.min(start.saturating_add(65_536)).min(decoded.len());
            self.objects.insert(n, (slot, start, end));
        }
        self.decoded.push(decoded);
    }

    /// The text of object `n`, if an object stream holds it.
    fn get(&self, n: u64) -> Option<&[u8]> {
        let &(slot, start, end) = self.objects.get(&n)?;
        self.decoded.get(slot)?.get(start..end)
    }

    /// Gives the decoded bytes' memory back to the scan.
    fn release(self, ctx: &mut ScanContext) {
        ctx.release(self.held);
    }
}

/// The text of object `n`: its dictionary when it is a direct object, else its text inside
/// an object stream (decoded on the first miss, once).
fn resolve<'a>(
    data: &'a [u8],
    index: &HashMap<u64, usize>,
    streams: &'a mut Option<ObjectStreams>,
    n: u64,
    ctx: &mut ScanContext,
) -> Option<&'a [u8]> {
    if let Some(d) = index.get(&n).and_then(|&o| object_dict(data, o)) {
        return Some(d);
    }
    if streams.is_none() {
        *streams = Some(ObjectStreams::build(data, index, ctx));
    }
    streams.as_ref()?.get(n)
}

/// Walks the page tree from the trailers' `/Root`, resolving objects that live in object
/// streams too.
pub fn check_page_tree(data: &[u8], trailers: &[Vec<u8>], ctx: &mut ScanContext) {
    let Some(root) = trailers.iter().find_map(|t| reference(t, b"/Root")) else {
        return;
    };
    let index = object_index(data, ctx);
    let mut streams: Option<ObjectStreams> = None;
    walk_pages(data, &index, root, &mut streams, ctx);
    if let Some(s) = streams {
        s.release(ctx);
    }
}

fn walk_pages(
    data: &[u8],
    index: &HashMap<u64, usize>,
    root: u64,
    streams: &mut Option<ObjectStreams>,
    ctx: &mut ScanContext,
) {
    let Some(pages) =
        resolve(data, index, streams, root, ctx).and_then(|d| reference(d, b"/Pages"))
    else {
        return;
    };
    let mut parent: HashMap<u64, Option<u64>> = HashMap::new();
    let mut stack: Vec<(u64, usize, Option<u64>)> = vec![(pages, 0, None)];
    let mut steps = 0usize;
    while let Some((n, depth, from)) = stack.pop() {
        steps += 1;
        if steps > 1_000_000 || ctx.out_of_time() {
            return;
        }
        if parent.contains_key(&n) {
            // A cycle when the node is its own ancestor; otherwise two parents share it.
            let mut up = from;
            let mut hops = 0;
            while let Some(a) = up {
                if a == n || hops > MAX_DEPTH {
                    break;
                }
                up = parent.get(&a).copied().flatten();
                hops += 1;
            }
            if up == Some(n) {
                ctx.structure(
                    "PDF-REFERENCE-LOOP",
                    Severity::High,
                    Location::part(format!("page tree node {n}")),
                    format!("/Kids lead from object {n} back to itself: readers that recurse through the page tree never stop"),
                );
            } else {
                ctx.structure(
                    "PDF-PAGE-TREE-SHARED",
                    Severity::Medium,
                    Location::part(format!("page tree node {n}")),
                    format!(
                        "object {n} is a kid of two page tree nodes (the page tree must be a tree)"
                    ),
                );
            }
            return;
        }
        parent.insert(n, from);
        if depth > MAX_DEPTH {
            ctx.structure(
                "PDF-PAGE-TREE-DEPTH",
                Severity::Medium,
                Location::part(format!("page tree node {n}")),
                format!("the page tree nests deeper than {MAX_DEPTH}"),
            );
            return;
        }
        let Some(dict) = resolve(data, index, streams, n, ctx) else {
            continue; // missing: nothing to walk
        };
        let Some(k) = key_at(dict, b"/Kids").filter(|&k| dict.get(k) == Some(&b'[')) else {
            continue;
        };
        let kids = tail(dict, k + 1);
        let kids = kids
            .get(..kids.iter().position(|&b| b == b']').unwrap_or(kids.len()))
            .unwrap_or_default();
        let words: Vec<&[u8]> = kids
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
            .collect();
        for w in words.windows(3).filter(|w| w.get(2) == Some(&&b"R"[..])) {
            if let Some(kid) = w
                .first()
                .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok())
            {
                stack.push((kid, depth + 1, Some(n)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn run(data: &[u8]) -> Vec<String> {
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, data.len());
        let start = find(data, b"startxref", 0)
            .and_then(|s| read_uint(data, skip_ws(data, s + 9)))
            .map_or(0, |(n, _)| n as usize);
        let trailers = check_chain(data, start, &mut ctx);
        check_page_tree(data, &trailers, &mut ctx);
        ctx.into_findings().into_iter().map(|f| f.code).collect()
    }

    /// A PDF whose objects are `bodies` (numbered from 1), with a classic xref, a trailer
    /// with `/Root 1 0 R` and `extra` trailer keys.
    fn pdf(bodies: &[&str], extra: &str) -> Vec<u8> {
        let mut s = String::from("%PDF-1.4\n");
        let mut offs = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            offs.push(s.len());
            s.push_str(&format!("{} 0 obj\n{b}\nendobj\n", i + 1));
        }
        let xref = s.len();
        s.push_str(&format!(
            "xref\n0 {}\n0000000000 65535 f \n",
            bodies.len() + 1
        ));
        for o in &offs {
            s.push_str(&format!("{o:010} 00000 n \n"));
        }
        s.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R {extra} >>\nstartxref\n{xref}\n%%EOF\n",
            bodies.len() + 1
        ));
        s.into_bytes()
    }

    #[test]
    fn a_plain_page_tree_is_clean() {
        let f = pdf(
            &[
                "<< /Type /Catalog /Pages 2 0 R >>",
                "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                "<< /Type /Page /Parent 2 0 R >>",
            ],
            "",
        );
        assert_eq!(run(&f), Vec::<String>::new());
    }

    #[test]
    fn kids_that_lead_back_to_an_ancestor_are_a_reference_loop() {
        let f = pdf(
            &[
                "<< /Type /Catalog /Pages 2 0 R >>",
                "<< /Type /Pages /Kids [3 0 R] >>",
                "<< /Type /Pages /Kids [2 0 R] >>",
            ],
            "",
        );
        assert_eq!(run(&f), ["PDF-REFERENCE-LOOP"]);
    }

    #[test]
    fn a_prev_pointing_at_its_own_section_is_a_loop() {
        let f = pdf(&["<< /Type /Catalog >>"], "");
        let xref = find(&f, b"xref\n0", 0).unwrap();
        let looped = pdf(&["<< /Type /Catalog >>"], &format!("/Prev {xref}"));
        assert_eq!(run(&looped), ["PDF-XREF-LOOP"]);
    }

    #[test]
    fn a_prev_past_the_end_is_reported() {
        assert_eq!(run(&pdf(&["<< >>"], "/Prev 99999")), ["PDF-XREF-PREV"]);
    }

    /// A PDF 1.5 file whose only cross-reference section is a stream with these fields.
    fn xref_stream_pdf(w: &str, index: &str, entries: &[(u8, u32, u8)]) -> Vec<u8> {
        let mut s = b"%PDF-1.5\n".to_vec();
        let obj1 = s.len();
        s.extend_from_slice(b"1 0 obj\n<< /Type /Catalog >>\nendobj\n");
        let xo = s.len();
        let mut raw = Vec::new();
        for (t, o, g) in entries {
            raw.push(*t);
            raw.extend_from_slice(
                &(if *o == 1 {
                    obj1 as u32
                } else if *o == 2 {
                    xo as u32
                } else {
                    *o
                })
                .to_be_bytes(),
            );
            raw.push(*g);
        }
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
        s.extend_from_slice(
            format!(
                "2 0 obj\n<< /Type /XRef /Size 3 /W {w} {index} /Root 1 0 R /Filter /FlateDecode /Length {} >>\nstream\n",
                packed.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(&packed);
        s.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xo}\n%%EOF\n").as_bytes());
        s
    }

    #[test]
    fn a_consistent_xref_stream_is_clean() {
        let f = xref_stream_pdf("[1 4 1]", "", &[(0, 0, 255), (1, 1, 0), (1, 2, 0)]);
        assert_eq!(run(&f), Vec::<String>::new());
    }

    #[test]
    fn an_xref_stream_too_short_for_its_entries_is_reported() {
        let f = xref_stream_pdf("[1 4 1]", "", &[(0, 0, 255)]);
        assert_eq!(run(&f), ["PDF-XREF-STREAM"]);
    }

    #[test]
    fn absurd_xref_field_widths_are_reported() {
        let f = xref_stream_pdf("[1 40 1]", "", &[(0, 0, 255), (1, 1, 0), (1, 2, 0)]);
        assert_eq!(run(&f), ["PDF-XREF-STREAM"]);
    }

    #[test]
    fn an_index_past_the_size_is_reported() {
        let f = xref_stream_pdf(
            "[1 4 1]",
            "/Index [0 9]",
            &[(0, 0, 255), (1, 1, 0), (1, 2, 0)],
        );
        assert_eq!(run(&f), ["PDF-XREF-STREAM"]);
    }

    #[test]
    fn an_xref_stream_entry_pointing_elsewhere_is_reported() {
        let f = xref_stream_pdf("[1 4 1]", "", &[(0, 0, 255), (1, 5, 0), (1, 2, 0)]);
        assert_eq!(run(&f), ["PDF-XREF-OFFSET"]);
    }

    /// A PDF 1.5 file whose objects 1..=n are `bodies` inside one Flate object stream
    /// (object n+1), with a classic xref for that stream and a trailer `/Root 1 0 R`.
    fn objstm_pdf(bodies: &[&str]) -> Vec<u8> {
        let mut header = String::new();
        let mut objects = String::new();
        for (i, b) in bodies.iter().enumerate() {
            header.push_str(&format!("{} {} ", i + 1, objects.len()));
            objects.push_str(b);
            objects.push('\n');
        }
        let first = header.len();
        let packed =
            miniz_oxide::deflate::compress_to_vec_zlib(format!("{header}{objects}").as_bytes(), 6);
        let n = bodies.len() + 1;
        let mut s = b"%PDF-1.5\n".to_vec();
        let off = s.len();
        s.extend_from_slice(
            format!(
                "{n} 0 obj\n<< /Type /ObjStm /N {} /First {first} /Filter /FlateDecode /Length {} >>\nstream\n",
                bodies.len(),
                packed.len()
            )
            .as_bytes(),
        );
        s.extend_from_slice(&packed);
        s.extend_from_slice(b"\nendstream\nendobj\n");
        let xref = s.len();
        s.extend_from_slice(
            format!(
                "xref\n0 1\n0000000000 65535 f \n{n} 1\n{off:010} 00000 n \ntrailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                n + 1
            )
            .as_bytes(),
        );
        s
    }

    #[test]
    fn a_page_tree_inside_an_object_stream_is_walked() {
        let f = objstm_pdf(&[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R >>",
        ]);
        assert_eq!(run(&f), Vec::<String>::new());
    }

    #[test]
    fn a_reference_loop_inside_an_object_stream_is_found() {
        let f = objstm_pdf(&[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] >>",
            "<< /Type /Pages /Kids [2 0 R] >>",
        ]);
        let limits = Limits::default();
        let mut ctx = ScanContext::new(&limits, f.len());
        let start = find(&f, b"startxref", 0)
            .and_then(|s| read_uint(&f, skip_ws(&f, s + 9)))
            .map_or(0, |(n, _)| n as usize);
        let trailers = check_chain(&f, start, &mut ctx);
        check_page_tree(&f, &trailers, &mut ctx);
        // The walk's decoded streams are given back to the memory budget.
        assert_eq!(ctx.memory_left(), limits.memory_bytes - f.len() as u64);
        let found: Vec<(String, String)> = ctx
            .into_findings()
            .into_iter()
            .map(|f| (f.code, f.location.to_string()))
            .collect();
        assert_eq!(
            found,
            [(
                "PDF-REFERENCE-LOOP".to_owned(),
                "page tree node 2".to_owned()
            )]
        );
    }

    #[test]
    fn a_direct_object_and_a_compressed_one_link_up() {
        // The catalog is direct; its page tree lies in the object stream.
        let mut f = objstm_pdf(&[
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] >>",
            "<< /Type /Pages /Kids [2 0 R] >>",
        ]);
        let at = find(&f, b"xref\n", 0).unwrap();
        f.splice(
            at..at,
            b"1 0 obj\n<< /Type /Catalog /Pages 3 0 R >>\nendobj\n"
                .iter()
                .copied(),
        );
        let xref = find(&f, b"xref\n", 0).unwrap();
        let sx = find(&f, b"startxref\n", 0).unwrap() + 10;
        let end = sx + f[sx..].iter().position(|&b| b == b'\n').unwrap();
        f.splice(sx..end, xref.to_string().bytes());
        assert_eq!(run(&f), ["PDF-REFERENCE-LOOP"]);
    }

    #[test]
    fn an_object_stream_header_shorter_than_n_is_reported() {
        let mut f = objstm_pdf(&["<< /Type /Catalog /Pages 2 0 R >>"]);
        // Rewrite /N 1 as /N 2: the header then lacks a pair.
        let at = find(&f, b"/N 1 ", 0).unwrap();
        f[at + 3] = b'2';
        assert_eq!(run(&f), ["PDF-OBJSTM"]);
    }
}
