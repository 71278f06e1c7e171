//! PDF rebuilt from its objects: every `N G obj` in the file (the last definition of a
//! number wins, as an incremental update does) and every object inside an object stream
//! is parsed into a value tree; active content is cut out of the tree; what the document
//! catalog (and the info dictionary) still reaches is written to a new file with a classic
//! cross-reference table. Streams are inflated under the memory budget and deflated anew
//! (`FlateDecode`), or copied as they are (image codecs and other filters).
//!
//! Removed: `/JS`, `/JavaScript` (actions and the name tree), `/OpenAction`, `/AA`,
//! `/EmbeddedFiles`, `/EF` (the embedded file streams of file specifications), `/XFA`,
//! `/RichMediaContent`, `/RichMediaSettings`, every `/A` action that is not a direct
//! `/GoTo` and every action chain (`/Next`), so `/Launch`, `/URI`, `/SubmitForm`,
//! `/ImportData`, `/GoToR`, `/GoToE`, ... are gone (annotations keep their rectangles and
//! appearance); an action of such a type anywhere else (a value, an array item, an object
//! of its own) is removed or nulled, and so is an embedded file stream however it is
//! reached. Objects that only the removed keys reached are not written.
//!
//! Not rebuilt: encrypted files ([`ConvertError::Encrypted`]); content streams and fonts
//! are kept byte-for-byte in meaning, not re-interpreted, and the page tree is not
//! validated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use super::{ConvertError, Disarmed, Removed};
use crate::container::inflate::{Framing, InflateError, inflate_with};
use crate::filetype::FileType;
use crate::limits::Limits;

const MAX_DEPTH: usize = 64;

/// A PDF value.
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    /// A real number as written (digits, sign, point only).
    Real(Vec<u8>),
    Str(Vec<u8>),
    /// A name, `#xx` escapes decoded.
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Vec<(Vec<u8>, Obj)>),
    Ref(u32, u16),
}

impl Obj {
    fn get(&self, key: &[u8]) -> Option<&Obj> {
        match self {
            Obj::Dict(d) => d.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn is_name(&self, name: &[u8]) -> bool {
        matches!(self, Obj::Name(n) if n == name)
    }
}

/// An indirect object: its value and, for a stream, the raw stream bytes.
#[derive(Debug, Clone)]
struct Indirect {
    value: Obj,
    stream: Option<Vec<u8>>,
    /// Where it was found (file byte, or the object stream holding it).
    at: String,
}

fn is_white(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

struct Parser<'a> {
    s: &'a [u8],
    p: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.p).copied()
    }

    fn skip(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.p += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.p += 1;
                }
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> &[u8] {
        let start = self.p;
        while let Some(b) = self.peek() {
            if is_white(b) || is_delim(b) {
                break;
            }
            self.p += 1;
        }
        self.s.get(start..self.p).unwrap_or_default()
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.p)
    }

    fn value(&mut self, depth: usize) -> Result<Obj, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("objects nested too deep"));
        }
        self.skip();
        let Some(b) = self.peek() else {
            return Err(self.err("the data ends inside an object"));
        };
        match b {
            b'/' => {
                self.p += 1;
                let raw = self.token().to_vec();
                Ok(Obj::Name(decode_name(&raw)))
            }
            b'(' => self.literal().map(Obj::Str),
            b'<' if self.s.get(self.p + 1) == Some(&b'<') => {
                self.p += 2;
                let mut d: Vec<(Vec<u8>, Obj)> = Vec::new();
                loop {
                    self.skip();
                    match self.peek() {
                        Some(b'>') if self.s.get(self.p + 1) == Some(&b'>') => {
                            self.p += 2;
                            return Ok(Obj::Dict(d));
                        }
                        Some(b'/') => {
                            self.p += 1;
                            let key = decode_name(self.token());
                            let v = self.value(depth + 1)?;
                            // A later duplicate key replaces the earlier one.
                            d.retain(|(k, _)| *k != key);
                            d.push((key, v));
                        }
                        _ => return Err(self.err("a dictionary key is not a name")),
                    }
                }
            }
            b'<' => {
                self.p += 1;
                let mut out = Vec::new();
                let mut half: Option<u8> = None;
                loop {
                    let Some(c) = self.peek() else {
                        return Err(self.err("an unterminated hex string"));
                    };
                    self.p += 1;
                    let v = match c {
                        b'>' => break,
                        b'0'..=b'9' => c - b'0',
                        b'a'..=b'f' => c - b'a' + 10,
                        b'A'..=b'F' => c - b'A' + 10,
                        c if is_white(c) => continue,
                        _ => return Err(self.err("a bad hex string digit")),
                    };
                    match half.take() {
                        Some(h) => out.push(h << 4 | v),
                        None => half = Some(v),
                    }
                }
                if let Some(h) = half {
                    out.push(h << 4);
                }
                Ok(Obj::Str(out))
            }
            b'[' => {
                self.p += 1;
                let mut a = Vec::new();
                loop {
                    self.skip();
                    if self.peek() == Some(b']') {
                        self.p += 1;
                        return Ok(Obj::Array(a));
                    }
                    a.push(self.value(depth + 1)?);
                }
            }
            _ => {
                let start = self.p;
                let t = self.token().to_vec();
                match t.as_slice() {
                    b"true" => Ok(Obj::Bool(true)),
                    b"false" => Ok(Obj::Bool(false)),
                    b"null" => Ok(Obj::Null),
                    [] => Err(self.err("an unexpected delimiter")),
                    _ => self.number(&t, start),
                }
            }
        }
    }

    fn number(&mut self, t: &[u8], start: usize) -> Result<Obj, String> {
        let text = std::str::from_utf8(t).map_err(|_| self.err("a bad token"))?;
        if let Ok(n) = text.parse::<i64>() {
            // `N G R`?
            let save = self.p;
            self.skip();
            let g_start = self.p;
            let g = self.token().to_vec();
            if let (Ok(num), Some(generation)) = (
                u32::try_from(n),
                std::str::from_utf8(&g)
                    .ok()
                    .and_then(|g| g.parse::<u16>().ok()),
            ) && g_start != self.p
            {
                self.skip();
                if self.peek() == Some(b'R')
                    && self
                        .s
                        .get(self.p + 1)
                        .is_none_or(|&c| is_white(c) || is_delim(c))
                {
                    self.p += 1;
                    return Ok(Obj::Ref(num, generation));
                }
            }
            self.p = save;
            return Ok(Obj::Int(n));
        }
        let real = t
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+'))
            && t.iter().filter(|&&c| c == b'.').count() <= 1
            && t.iter().any(u8::is_ascii_digit);
        if real {
            Ok(Obj::Real(t.to_vec()))
        } else {
            self.p = start;
            Err(self.err(&format!(
                "an unknown token {:?}",
                String::from_utf8_lossy(t.get(..t.len().min(20)).unwrap_or_default())
            )))
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, String> {
        self.p += 1;
        let mut out = Vec::new();
        let mut depth = 1usize;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("an unterminated string"));
            };
            self.p += 1;
            match c {
                b'(' => {
                    depth += 1;
                    out.push(c);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                    out.push(c);
                }
                b'\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.p += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.p += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.p += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(u8::try_from(v & 0xFF).unwrap_or(0));
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'#', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Writes a value; references go through `numbers` (old number -> new), and a reference to
/// an object that is not written becomes `null`, which is what a reader makes of it.
fn write_obj(out: &mut Vec<u8>, o: &Obj, numbers: &HashMap<u32, u32>) {
    match o {
        Obj::Null => out.extend_from_slice(b"null"),
        Obj::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Obj::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Obj::Real(r) => out.extend_from_slice(r),
        Obj::Str(s) => {
            out.push(b'<');
            for b in s {
                out.extend_from_slice(format!("{b:02X}").as_bytes());
            }
            out.push(b'>');
        }
        Obj::Name(n) => write_name(out, n),
        Obj::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_obj(out, v, numbers);
            }
            out.push(b']');
        }
        Obj::Dict(d) => {
            out.extend_from_slice(b"<<");
            for (k, v) in d {
                write_name(out, k);
                out.push(b' ');
                write_obj(out, v, numbers);
            }
            out.extend_from_slice(b">>");
        }
        // Every object is written as generation 0.
        Obj::Ref(n, _) => match numbers.get(n) {
            Some(m) => out.extend_from_slice(format!("{m} 0 R").as_bytes()),
            None => out.extend_from_slice(b"null"),
        },
    }
}

fn write_name(out: &mut Vec<u8>, n: &[u8]) {
    out.push(b'/');
    for &b in n {
        if b.is_ascii_graphic() && !is_delim(b) && b != b'#' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("#{b:02X}").as_bytes());
        }
    }
}

/// Finds `N G obj` headers: (number, generation, offset after `obj`).
fn headers(data: &[u8]) -> Vec<(u32, u16, usize)> {
    let mut found = Vec::new();
    for at in memchr::memmem::find_iter(data, b"obj") {
        let after = data.get(at + 3).copied();
        if after.is_some_and(|c| !is_white(c) && !is_delim(c)) {
            continue;
        }
        // Walk back: whitespace, generation digits, whitespace, number digits.
        let mut p = at;
        let back_ws = |p: &mut usize| {
            let start = *p;
            while *p > 0 && data.get(*p - 1).is_some_and(|&c| is_white(c)) {
                *p -= 1;
            }
            *p < start
        };
        let back_digits = |p: &mut usize| {
            let end = *p;
            while *p > 0 && data.get(*p - 1).is_some_and(u8::is_ascii_digit) {
                *p -= 1;
            }
            data.get(*p..end)
                .filter(|d| !d.is_empty() && d.len() <= 10)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u64>().ok())
        };
        if !back_ws(&mut p) {
            continue;
        }
        let Some(g) = back_digits(&mut p) else {
            continue;
        };
        if !back_ws(&mut p) {
            continue;
        }
        let Some(n) = back_digits(&mut p) else {
            continue;
        };
        if p > 0
            && data
                .get(p - 1)
                .is_some_and(|&c| !is_white(c) && !is_delim(c))
        {
            continue;
        }
        if let (Ok(n), Ok(g)) = (u32::try_from(n), u16::try_from(g)) {
            found.push((n, g, at + 3));
        }
    }
    found
}

/// Where the data of a stream whose keyword ends at `p` lies (start, end): `length` bytes
/// after the keyword's end of line when that lands on `endstream`, else up to
/// `endstream`.
fn stream_span(data: &[u8], mut p: usize, length: Option<usize>) -> Option<(usize, usize)> {
    if data.get(p) == Some(&b'\r') {
        p += 1;
    }
    if data.get(p) == Some(&b'\n') {
        p += 1;
    }
    if let Some(len) = length {
        let end = p.checked_add(len)?;
        let mut q = end;
        while data.get(q).is_some_and(|&c| is_white(c)) {
            q += 1;
        }
        if data.get(q..q + 9) == Some(b"endstream") {
            return Some((p, end));
        }
    }
    let mut end = p + memchr::memmem::find(data.get(p..)?, b"endstream")?;
    // The end of line before `endstream` is not data.
    if end > p && data.get(end - 1) == Some(&b'\n') {
        end -= 1;
    }
    if end > p && data.get(end - 1) == Some(&b'\r') {
        end -= 1;
    }
    Some((p, end))
}

/// Inflates `raw` with at most `cap` bytes out; a stream cut short keeps what it gave (as
/// readers do).
fn inflate(raw: &[u8], cap: u64) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    match inflate_with(raw, Framing::Zlib, cap, &mut |piece| {
        out.extend_from_slice(piece);
    }) {
        Ok(_) | Err(InflateError::Truncated { .. }) => Ok(out),
        Err(e) => Err(e),
    }
}

fn deflate(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

/// Keys dropped wherever they appear (and `/A` unless a direct `/GoTo`, and `/Next`).
const DROP_KEYS: [&[u8]; 9] = [
    b"JS",
    b"JavaScript",
    b"OpenAction",
    b"AA",
    b"EmbeddedFiles",
    b"EF",
    b"XFA",
    b"RichMediaContent",
    b"RichMediaSettings",
];

/// Action types that run, load or send something.
const ACTIVE_ACTIONS: [&[u8]; 12] = [
    b"JavaScript",
    b"Launch",
    b"URI",
    b"SubmitForm",
    b"ImportData",
    b"GoToR",
    b"GoToE",
    b"RichMediaExecute",
    b"Rendition",
    b"Sound",
    b"Movie",
    b"GoTo3DView",
];

/// An action dictionary of an active type.
fn active_action(v: &Obj) -> bool {
    matches!(v.get(b"S"), Some(Obj::Name(s)) if ACTIVE_ACTIONS.contains(&s.as_slice()))
}

/// Removes active content from a value in place.
fn clean(o: &mut Obj, at: &str, removed: &mut Vec<Removed>) {
    match o {
        Obj::Dict(d) => {
            d.retain(|(k, v)| {
                let drop = DROP_KEYS.contains(&k.as_slice())
                    || (k == b"A" && !v.get(b"S").is_some_and(|s| s.is_name(b"GoTo")))
                    || k == b"Next"
                    || active_action(v);
                if drop {
                    let what = match v.get(b"S") {
                        Some(Obj::Name(s)) => format!(
                            "PDF /{} ({} action)",
                            String::from_utf8_lossy(k),
                            String::from_utf8_lossy(s)
                        ),
                        _ => format!("PDF /{}", String::from_utf8_lossy(k)),
                    };
                    removed.push(Removed {
                        what,
                        location: at.to_owned(),
                    });
                }
                !drop
            });
            for (_, v) in d.iter_mut() {
                clean(v, at, removed);
            }
        }
        Obj::Array(a) => {
            for v in a {
                if active_action(v) {
                    removed.push(Removed {
                        what: "PDF action in an array".into(),
                        location: at.to_owned(),
                    });
                    *v = Obj::Null;
                } else {
                    clean(v, at, removed);
                }
            }
        }
        _ => {}
    }
}

fn refs(o: &Obj, out: &mut Vec<(u32, u16)>) {
    match o {
        Obj::Ref(n, g) => out.push((*n, *g)),
        Obj::Array(a) => a.iter().for_each(|v| refs(v, out)),
        Obj::Dict(d) => d.iter().for_each(|(_, v)| refs(v, out)),
        _ => {}
    }
}

fn fail(code: &str, location: String, message: String) -> ConvertError {
    ConvertError::at(code, location, message)
}

#[allow(clippy::too_many_lines)]
pub(super) fn rebuild(data: &[u8], limits: &Limits) -> Result<Disarmed, ConvertError> {
    if memchr::memmem::find(data.get(..1024).unwrap_or(data), b"%PDF-").is_none() {
        return Err(fail(
            "CONVERT-PDF-HEADER",
            "byte 0".into(),
            "no %PDF- header in the first 1024 bytes".into(),
        ));
    }
    let found = headers(data);
    if found.len() as u64 > limits.max_entries {
        return Err(fail(
            "CONVERT-PDF-LIMIT",
            "file".into(),
            format!("{} objects, more than {}", found.len(), limits.max_entries),
        ));
    }
    // First pass: every object's value (the last definition of a number wins).
    let mut objects: HashMap<u32, Indirect> = HashMap::new();
    let mut streams_at: HashMap<u32, (usize, u16)> = HashMap::new();
    let mut inside_until = 0usize;
    for &(n, g, at) in &found {
        // `N G obj` inside an earlier stream's data is data.
        if at < inside_until {
            continue;
        }
        let mut p = Parser { s: data, p: at };
        let value = p.value(0).map_err(|e| {
            fail(
                "CONVERT-PDF-OBJECT",
                format!("object {n} {g} at byte {at}"),
                e,
            )
        })?;
        p.skip();
        let stream = p.s.get(p.p..p.p + 6) == Some(b"stream");
        if stream {
            streams_at.insert(n, (p.p + 6, g));
            let direct = match value.get(b"Length") {
                Some(Obj::Int(l)) => usize::try_from(*l).ok(),
                _ => None,
            };
            if let Some((_, end)) = stream_span(data, p.p + 6, direct) {
                inside_until = end;
            }
        } else {
            streams_at.remove(&n);
        }
        objects.insert(
            n,
            Indirect {
                value,
                stream: None,
                at: format!("object {n} {g} at byte {}", at.saturating_sub(3)),
            },
        );
    }
    // Stream bodies, now that indirect /Length values can be looked up.
    for (&n, &(p, _)) in &streams_at {
        let length = match objects.get(&n).and_then(|o| o.value.get(b"Length")) {
            Some(Obj::Int(l)) => usize::try_from(*l).ok(),
            Some(Obj::Ref(r, _)) => match objects.get(r).map(|o| &o.value) {
                Some(Obj::Int(l)) => usize::try_from(*l).ok(),
                _ => None,
            },
            _ => None,
        };
        let body = stream_span(data, p, length)
            .and_then(|(start, end)| data.get(start..end))
            .ok_or_else(|| {
                fail(
                    "CONVERT-PDF-STREAM",
                    format!("object {n} at byte {p}"),
                    "a stream without endstream".into(),
                )
            })?;
        if let Some(o) = objects.get_mut(&n) {
            o.stream = Some(body.to_vec());
        }
    }
    // The trailer: the last `trailer` dictionary, or the last cross-reference stream's.
    let mut trailer: Option<Obj> = None;
    for at in memchr::memmem::find_iter(data, b"trailer") {
        let mut p = Parser { s: data, p: at + 7 };
        if let Ok(t @ Obj::Dict(_)) = p.value(0)
            && (t.get(b"Root").is_some() || trailer.is_none())
        {
            trailer = Some(t);
        }
    }
    let mut xref_streams: Vec<u32> = objects
        .iter()
        .filter(|(_, o)| o.value.get(b"Type").is_some_and(|t| t.is_name(b"XRef")))
        .map(|(&n, _)| n)
        .collect();
    xref_streams.sort_by_key(|n| streams_at.get(n).map_or(0, |s| s.0));
    if let Some(last) = xref_streams.last().and_then(|n| objects.get(n))
        && (trailer.as_ref().is_none_or(|t| t.get(b"Root").is_none())
            || last.value.get(b"Root").is_some())
    {
        trailer = Some(last.value.clone());
    }
    let trailer = trailer.ok_or_else(|| {
        fail(
            "CONVERT-PDF-TRAILER",
            "file".into(),
            "no trailer dictionary and no cross-reference stream".into(),
        )
    })?;
    if trailer.get(b"Encrypt").is_some() {
        return Err(ConvertError::Encrypted(FileType::Pdf));
    }
    let Some(&Obj::Ref(root, root_gen)) = trailer.get(b"Root") else {
        return Err(fail(
            "CONVERT-PDF-TRAILER",
            "trailer".into(),
            "no /Root reference".into(),
        ));
    };
    let mut budget = limits.memory_bytes;
    // Objects inside object streams, unless defined directly (a later update).
    let objstms: Vec<u32> = objects
        .iter()
        .filter(|(_, o)| o.value.get(b"Type").is_some_and(|t| t.is_name(b"ObjStm")))
        .map(|(&n, _)| n)
        .collect();
    for s in objstms {
        let Some(o) = objects.get(&s).cloned() else {
            continue;
        };
        let at = format!("object stream {s}");
        let raw = o.stream.unwrap_or_default();
        let body = match o.value.get(b"Filter") {
            None => raw,
            Some(f) if f.is_name(b"FlateDecode") => inflate(&raw, budget).map_err(|e| {
                fail(
                    "CONVERT-PDF-INFLATE",
                    at.clone(),
                    format!("does not inflate: {e}"),
                )
            })?,
            Some(_) => {
                return Err(fail(
                    "CONVERT-PDF-OBJSTM",
                    at,
                    "an object stream with a filter other than FlateDecode".into(),
                ));
            }
        };
        budget = budget.saturating_sub(body.len() as u64);
        let (Some(Obj::Int(count)), Some(Obj::Int(first))) =
            (o.value.get(b"N"), o.value.get(b"First"))
        else {
            return Err(fail("CONVERT-PDF-OBJSTM", at, "no /N or /First".into()));
        };
        let first = usize::try_from(*first).unwrap_or(usize::MAX);
        let mut p = Parser { s: &body, p: 0 };
        let mut pairs = Vec::new();
        for _ in 0..*count {
            match (p.value(0), p.value(0)) {
                (Ok(Obj::Int(n)), Ok(Obj::Int(off))) => pairs.push((n, off)),
                _ => {
                    return Err(fail(
                        "CONVERT-PDF-OBJSTM",
                        at,
                        "a bad object number/offset table".into(),
                    ));
                }
            }
            if pairs.len() as u64 > limits.max_entries {
                return Err(fail("CONVERT-PDF-LIMIT", at, "too many objects".into()));
            }
        }
        for (n, off) in pairs {
            let Ok(n) = u32::try_from(n) else { continue };
            if objects.contains_key(&n)
                && !objects
                    .get(&n)
                    .is_some_and(|x| x.value == Obj::Null && x.stream.is_none())
            {
                continue;
            }
            let start = usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(first))
                .unwrap_or(usize::MAX);
            let mut q = Parser { s: &body, p: start };
            let value = q
                .value(0)
                .map_err(|e| fail("CONVERT-PDF-OBJECT", format!("object {n} in {at}"), e))?;
            objects.insert(
                n,
                Indirect {
                    value,
                    stream: None,
                    at: format!("object {n} in {at}"),
                },
            );
        }
    }

    // Clean every object, then keep what the catalog and the info dictionary reach.
    let mut removed = Vec::new();
    let mut keys: Vec<u32> = objects.keys().copied().collect();
    keys.sort_unstable();
    for n in &keys {
        if let Some(o) = objects.get_mut(n) {
            let at = o.at.clone();
            let embedded = o
                .value
                .get(b"Type")
                .is_some_and(|t| t.is_name(b"EmbeddedFile"));
            if active_action(&o.value) || embedded {
                removed.push(Removed {
                    what: if embedded {
                        "PDF embedded file".into()
                    } else {
                        "PDF action object".into()
                    },
                    location: at,
                });
                o.value = Obj::Null;
                o.stream = None;
            } else {
                clean(&mut o.value, &at, &mut removed);
            }
        }
    }
    let mut trailer = trailer;
    let mut trailer_removed = Vec::new();
    clean(&mut trailer, "trailer", &mut trailer_removed);
    removed.extend(trailer_removed);
    let mut reach: Vec<(u32, u16)> = vec![(root, root_gen)];
    let info = match trailer.get(b"Info") {
        Some(&Obj::Ref(n, g)) => {
            reach.push((n, g));
            Some(n)
        }
        _ => None,
    };
    let mut keep: HashSet<u32> = HashSet::new();
    while let Some((n, _)) = reach.pop() {
        if !keep.insert(n) {
            continue;
        }
        if let Some(o) = objects.get(&n) {
            refs(&o.value, &mut reach);
        }
    }
    if !objects.contains_key(&root) {
        return Err(fail(
            "CONVERT-PDF-TRAILER",
            "trailer".into(),
            format!("/Root {root} {root_gen} R is not in the file"),
        ));
    }
    let dropped = objects.len() - keep.iter().filter(|n| objects.contains_key(n)).count();
    let structural = objects
        .values()
        .filter(|o| {
            o.value
                .get(b"Type")
                .is_some_and(|t| t.is_name(b"XRef") || t.is_name(b"ObjStm"))
        })
        .count();
    if dropped > structural {
        removed.push(Removed {
            what: format!(
                "{} PDF objects no longer reached from the catalog",
                dropped - structural
            ),
            location: "file".into(),
        });
    }

    // Write.
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets: BTreeMap<u32, usize> = BTreeMap::new();
    let mut kept: Vec<u32> = keep
        .into_iter()
        .filter(|n| objects.contains_key(n))
        .collect();
    // Object streams and xref streams are not written (a reference to one becomes null);
    // the rest are numbered 1, 2, ... in their old order, so the table has no holes.
    kept.retain(|n| {
        !objects.get(n).is_some_and(|o| {
            o.value
                .get(b"Type")
                .is_some_and(|t| t.is_name(b"XRef") || t.is_name(b"ObjStm"))
        })
    });
    kept.sort_unstable();
    let numbers: HashMap<u32, u32> = kept
        .iter()
        .zip(1u32..)
        .map(|(&old, new)| (old, new))
        .collect();
    for n in kept {
        let Some(o) = objects.get(&n) else { continue };
        let new = numbers.get(&n).copied().unwrap_or(0);
        offsets.insert(new, out.len());
        out.extend_from_slice(format!("{new} 0 obj\n").as_bytes());
        match &o.stream {
            None => write_obj(&mut out, &o.value, &numbers),
            Some(raw) => {
                let mut dict = o.value.clone();
                let flate_only = dict.get(b"Filter").is_some_and(|f| {
                    f.is_name(b"FlateDecode")
                        || matches!(f, Obj::Array(a) if a.len() == 1 && a.first().is_some_and(|x| x.is_name(b"FlateDecode")))
                });
                let body = if flate_only {
                    let plain = inflate(raw, budget).map_err(|e| {
                        fail(
                            "CONVERT-PDF-INFLATE",
                            o.at.clone(),
                            format!("the stream does not inflate: {e}"),
                        )
                    })?;
                    budget = budget.saturating_sub(plain.len() as u64);
                    let packed = deflate(&plain)
                        .map_err(|e| fail("CONVERT-PDF-ENCODE", o.at.clone(), e.to_string()))?;
                    // Deflate packs runs of zeros far tighter than a bomb check allows; such
                    // a stream is written plain (when no predictor needs the filter) or as
                    // the original bytes, which inflated within the cap above.
                    if plain.len() as u64 / (packed.len() as u64).max(1) <= limits.max_ratio / 2 {
                        packed
                    } else if dict.get(b"DecodeParms").is_none() {
                        if let Obj::Dict(d) = &mut dict {
                            d.retain(|(k, _)| k != b"Filter");
                        }
                        plain
                    } else {
                        raw.clone()
                    }
                } else {
                    raw.clone()
                };
                if let Obj::Dict(d) = &mut dict {
                    d.retain(|(k, _)| k != b"Length" && k != b"DL");
                    d.push((
                        b"Length".to_vec(),
                        Obj::Int(i64::try_from(body.len()).unwrap_or(i64::MAX)),
                    ));
                }
                write_obj(&mut out, &dict, &numbers);
                out.extend_from_slice(b"\nstream\n");
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\nendstream");
            }
        }
        out.extend_from_slice(b"\nendobj\n");
    }
    let size = offsets.keys().next_back().map_or(1, |&n| n + 1);
    let xref_at = out.len();
    out.extend_from_slice(format!("xref\n0 {size}\n").as_bytes());
    for n in 0..size {
        match offsets.get(&n) {
            Some(off) => out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes()),
            None => out.extend_from_slice(b"0000000000 65535 f\r\n"),
        }
    }
    let mut t = vec![
        (b"Size".to_vec(), Obj::Int(i64::from(size))),
        (b"Root".to_vec(), Obj::Ref(root, 0)),
    ];
    if let Some(i) = info.filter(|i| numbers.contains_key(i)) {
        t.push((b"Info".to_vec(), Obj::Ref(i, 0)));
    }
    out.extend_from_slice(b"trailer\n");
    write_obj(&mut out, &Obj::Dict(t), &numbers);
    out.extend_from_slice(format!("\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    Ok(Disarmed {
        bytes: out,
        file_type: FileType::Pdf,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET";

    /// A PDF from numbered object bodies (a body may end in a stream), with a classic
    /// cross-reference table and `trailer_extra` in its trailer.
    fn pdf(objects: &[(u32, Vec<u8>)], trailer_extra: &str) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        for (n, body) in objects {
            offsets.push((*n, out.len()));
            out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let size = objects.iter().map(|o| o.0).max().unwrap() + 1;
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {size}\n").as_bytes());
        for n in 0..size {
            match offsets.iter().find(|o| o.0 == n) {
                Some((_, off)) => {
                    out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes());
                }
                None => out.extend_from_slice(b"0000000000 65535 f\r\n"),
            }
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {size} /Root 1 0 R {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n"
            )
            .as_bytes(),
        );
        out
    }

    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut s = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        s.extend_from_slice(data);
        s.extend_from_slice(b"\nendstream");
        s
    }

    fn hostile() -> Vec<u8> {
        let content = deflate(TEXT).unwrap();
        let objstm_body = b"5 0 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";
        let objects: Vec<(u32, Vec<u8>)> = vec![
            (1, b"<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R /Names << /JavaScript 7 0 R /EmbeddedFiles 8 0 R >> /AcroForm << /Fields [] /XFA 9 0 R >> /Stash 15 0 R >>".to_vec()),
            (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec()),
            (3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> /Annots [10 0 R 11 0 R] /AA << /O << /S /JavaScript /JS (app.alert\\(1\\)) >> >> >>".to_vec()),
            (4, stream("/Filter /FlateDecode", &content)),
            (6, b"<< /S /JavaScript /JS (app.alert('open')) >>".to_vec()),
            (7, b"<< /Names [(x) 12 0 R] >>".to_vec()),
            (8, b"<< /Names [(payload.exe) 13 0 R] >>".to_vec()),
            (9, stream("", b"<xdp:xdp>evil form</xdp:xdp>")),
            (10, b"<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] /A << /S /URI /URI (http://evil.example/) >> >>".to_vec()),
            (11, b"<< /Type /Annot /Subtype /Link /Rect [0 100 100 200] /A << /S /L#61unch /F (cmd.exe) >> >>".to_vec()),
            (12, b"<< /S /JavaScript /JS 14 0 R >>".to_vec()),
            (13, b"<< /Type /Filespec /F (payload.exe) /EF << /F 15 0 R >> >>".to_vec()),
            (14, stream("", b"app.launchURL('http://evil.example/')")),
            (15, stream("/Type /EmbeddedFile", b"MZ\x90\x00 payload")),
            (16, stream("/Type /ObjStm /N 1 /First 4", objstm_body)),
        ];
        pdf(&objects, "")
    }

    #[test]
    fn a_pdf_loses_scripts_actions_attachments_and_forms_and_keeps_its_page() {
        let d = rebuild(&hostile(), &Limits::default()).unwrap();
        let whats: Vec<&str> = d.removed.iter().map(|r| r.what.as_str()).collect();
        for expected in [
            "PDF /OpenAction",
            "PDF /JavaScript",
            "PDF /EmbeddedFiles",
            "PDF /XFA",
            "PDF /AA",
            "PDF /A (URI action)",
            "PDF /A (Launch action)",
            "PDF action object",
            "PDF embedded file",
        ] {
            assert!(whats.contains(&expected), "{expected} not in {whats:?}");
        }
        let text = String::from_utf8_lossy(&d.bytes).into_owned();
        for gone in [
            "JavaScript",
            "/JS",
            "alert",
            "evil",
            "payload",
            "MZ",
            "aunch",
            "XFA",
            "xdp",
            "/EF",
            "ObjStm",
        ] {
            assert!(!text.contains(gone), "{gone} remains in\n{text}");
        }
        for kept in [
            "/Rect [0 0 100 100]",
            "/Rect [0 100 100 200]",
            "/BaseFont /Helvetica",
            "/MediaBox [0 0 612 792]",
        ] {
            assert!(text.contains(kept), "{kept} missing in\n{text}");
        }
        // The copy parses back with nothing left to remove, and its page text is intact.
        let again = rebuild(&d.bytes, &Limits::default()).unwrap();
        assert!(again.removed.is_empty(), "{:?}", again.removed);
        let found = headers(&d.bytes);
        let (_, _, at) = found.iter().find(|h| h.0 == 4).copied().unwrap();
        let mut p = Parser { s: &d.bytes, p: at };
        let dict = p.value(0).unwrap();
        p.skip();
        let Some(Obj::Int(len)) = dict.get(b"Length") else {
            panic!("{dict:?}")
        };
        let (start, end) = stream_span(&d.bytes, p.p + 6, usize::try_from(*len).ok()).unwrap();
        assert_eq!(inflate(&d.bytes[start..end], 1 << 20).unwrap(), TEXT);
    }

    #[test]
    fn the_last_definition_wins_and_obj_inside_a_stream_is_data() {
        let mut f = pdf(
            &[
                (1, b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()),
                (
                    2,
                    b"<< /Type /Pages /Kids [] /Count 0 /Note (old) >>".to_vec(),
                ),
                (
                    3,
                    stream("", b"junk\n7 0 obj\n<< /S /Launch >>\nendobj\nmore"),
                ),
            ],
            "",
        );
        f.extend_from_slice(b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 /Note (new) /OpenAction 3 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
        let d = rebuild(&f, &Limits::default()).unwrap();
        let text = String::from_utf8_lossy(&d.bytes).into_owned();
        assert!(text.contains(
            &format!("<{}>", "new".bytes().map(|b| format!("{b:02X}")).collect::<String>())
        ));
        assert!(!text.contains("junk") && !text.contains("7 0 obj"));
        assert_eq!(
            d.removed
                .iter()
                .filter(|r| r.what == "PDF /OpenAction")
                .count(),
            1
        );
    }

    #[test]
    fn broken_and_encrypted_files() {
        let code = |f: &[u8]| match rebuild(f, &Limits::default()) {
            Err(ConvertError::Failed(e)) => e[0].code.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code(b"not a pdf"), "CONVERT-PDF-HEADER");
        assert_eq!(
            code(b"%PDF-1.4\n1 0 obj\n<< /A [ >>\nendobj\n"),
            "CONVERT-PDF-OBJECT"
        );
        assert_eq!(
            code(b"%PDF-1.4\n1 0 obj\n<< >>\nendobj\n"),
            "CONVERT-PDF-TRAILER"
        );
        let enc = pdf(
            &[(1, b"<< /Type /Catalog >>".to_vec())],
            "/Encrypt << /Filter /Standard >> ",
        );
        assert_eq!(
            rebuild(&enc, &Limits::default()).unwrap_err(),
            ConvertError::Encrypted(FileType::Pdf)
        );
        let deep = format!(
            "%PDF-1.4\n1 0 obj\n{}\nendobj\ntrailer << /Root 1 0 R >>",
            "[".repeat(500)
        );
        assert_eq!(code(deep.as_bytes()), "CONVERT-PDF-OBJECT");
        let bomb_data = vec![0u8; 1 << 20];
        let bomb = pdf(
            &[
                (1, b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()),
                (
                    2,
                    stream("/Filter /FlateDecode", &deflate(&bomb_data).unwrap()),
                ),
            ],
            "",
        );
        // A run of zeros re-deflates past the bomb ratio: written plain instead.
        let d = rebuild(&bomb, &Limits::default()).unwrap();
        assert_eq!(
            d.bytes
                .windows(bomb_data.len())
                .filter(|w| *w == &bomb_data[..])
                .count(),
            1
        );
        assert!(!String::from_utf8_lossy(&d.bytes).contains("FlateDecode"));
        let small = Limits {
            memory_bytes: 1000,
            ..Limits::default()
        };
        match rebuild(&bomb, &small) {
            Err(ConvertError::Failed(e)) => assert_eq!(e[0].code, "CONVERT-PDF-INFLATE"),
            other => panic!("{other:?}"),
        }
    }
}
