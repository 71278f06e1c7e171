#!/usr/bin/env python3
"""Usage: bench/docscan-disarm-check.py --haetae BIN --corpus DIR [--venv DIR]
                                     [--labels valid,unknown] [--under pdf/] [--soffice ppt]

Issue 5's acceptance for disarm, on ../shared/corpora: runs `haetae scan --disarm OUT` over
the valid files (MANIFEST.tsv label `valid`) and checks every copy

  * opens in its own format's reader: python-docx, openpyxl, python-pptx (PyPI) for OOXML,
    Pillow for PNG/JPEG/GIF/BMP/TIFF/Netpbm (decoded in full, and every frame/page must
    decode to the original's pixels) and WMF/EMF (identified; Pillow draws them only on
    Windows, so a record walk checks their structure), a UTF-8 decode for text, balanced
    groups for RTF, zipfile + an XML parse of every part for HWPX, zipfile (mimetype first
    and stored) + an XML parse of content.xml for ODF, zipfile (every member's CRC) for plain
    ZIP, pikepdf for PDF, olefile for compound files;
  * contains no macros, scripts, external links or embedded objects (no vbaProject/
    vbaData/embeddings/activeX/externalLinks/Scripts part, no TargetMode="External"; in ODF
    no Basic/, Scripts/, Object N or ObjectReplacements/ entry, no script block, event
    listener, macro:/vnd.sun.star.script:/javascript: link, object link, DDE declaration,
    link, source or field, applet or plug-in, DDE/WEBSERVICE/other-file formula, or link
    leaving the package but a web/mail hyperlink; in a plain ZIP no member name leaving the
    archive, no program, no compound file with a macro storage, OOXML and nested archives
    checked the same way; in WMF/EMF no escape or comment record; no `\\object` in RTF; in
    PDF no /JS, /JavaScript, /OpenAction, /AA, /EmbeddedFiles, /EF, /XFA, RichMedia or /Next
    key and no Launch/URI/SubmitForm/ImportData/... action, and the original's page count);
  * a same-format compound copy (DOC/XLS/PPT/MSG/HWP/other compound files) opens in olefile
    with every stream readable, has no macro/script/object storage or stream
    (VBA, Macros, _VBA_PROJECT_CUR, ObjectPool, Scripts, MBD*, _SX_DB*, \x01Ole*,
    Equation Native), no external field instruction in a DOC, no macro sheet,
    unblanked SupBook path, lone ExternName or data connection in an XLS, no embedded,
    linked or control object record, VBA reference, shape reference to an object or
    macro/program action in a PPT, in an MSG only by-value attachments whose data scans
    clean (and passes these checks when it is a compound file or ZIP), only empty
    non-picture BinData items in an HWP, and oletools' olevba finds no VBA macros in it;
    with --soffice KINDS, LibreOffice also converts those kinds' copies to PDF;
  * a plain-text rendition (sidecar `"kind": "text rendition"`, written as `<name>.txt`:
    OLE2 DOC/XLS/PPT/MSG/other compound files and HWP 5.0 without an exact same-format
    copy, BIFF3/4) is valid UTF-8 and not
    empty; for HWP, whose `PrvText` stream holds the first lines of text as Hancom's writer
    saw them (read with olefile, independently of haetae), every word of that preview's
    first line must be in it, and it may be empty (blank lines) only when that preview has
    no words (a table of empty cells, a drawing); a DOC's only when its FIB's ccpText is 64
    or less (breaks, an equation's field), and a Word 6/95 document's must hold every ASCII
    word of its main story; a PPT's only when it has no text atom outside its masters; an
    MSG's must hold every word of its subject and plain body; another compound file's every
    one-byte text run of its non-macro, non-object streams (the first 50);
  * scans clean with haetae itself.

Prints a table per type (copies, text renditions, opened, clean, refused as encrypted —
sidecar "refusal": "encrypted", no copy without the password —, refused by the conversion,
not rebuilt) and the list of files without a copy with the reason, and
exits 1 if any copy fails a check. Readers come from PyPI into --venv (created if missing).
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, zipfile
from collections import Counter, defaultdict
import xml.dom.minidom
import xml.etree.ElementTree

FORBIDDEN_PARTS = ("vbaproject.bin", "vbadata.xml", "/embeddings/", "/activex/",
                   "scripts/", "customui/")
RELATIONSHIP = re.compile(rb'<Relationship\b[^>]*>')


def zip_problems(path):
    out = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            low = name.lower()
            if any(f in low or low.startswith(f.strip("/")) for f in FORBIDDEN_PARTS):
                out.append(f"part {name} remains")
            body = z.read(name)
            if low.endswith(".rels"):
                for rel in RELATIONSHIP.findall(body):
                    if b'TargetMode="External"' not in rel:
                        continue
                    target = re.search(rb'Target="([^"]*)"', rel)
                    t = target.group(1).lower() if target else b""
                    link = b"/hyperlink" in rel and t.startswith((b"http://", b"https://", b"mailto:"))
                    if t != b"about:blank" and not link:
                        out.append(f"{name} keeps an external target {t[:80]!r}")
            if re.search(rb'ddeService="[^"]', body):
                out.append(f"{name} keeps a DDE link")
            if low.endswith((".xml", ".rels", ".hpf")):
                try:
                    xml.dom.minidom.parseString(z.read(name))
                except Exception as e:  # noqa: BLE001 - any parse error is the finding
                    out.append(f"{name} is not well-formed XML: {e}")
    return out


ODF_FORBIDDEN = ("Basic/", "Scripts/", "Object ", "ObjectReplacements/")
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
SCRIPT_SCHEMES = ("macro:", "vnd.sun.star.script:", "javascript:")


ODF_DDE = ("dde-connection-decls", "dde-connection-decl", "dde-connection", "dde-links",
           "dde-link", "dde-source", "applet", "plugin")
HYPERLINKS = ("a",)
EXTERNAL_FORMULA = ("dde(", "webservice(", "'file:", "'http:", "'https:")


def leaves_package(href):
    """An xlink:href that points outside the package: a URI scheme, an absolute path, ../"""
    h = href.strip()
    return (re.match(r"^[A-Za-z0-9+.-]+:", h) is not None or h.startswith(("/", "\\"))
            or ".." in re.split(r"[/\\]", h))


def odf_problems(path):
    """An ODF copy: no macro, script or object entry, no script element or script link, no
    DDE, no external link a reader fetches by itself (hyperlinks only to web/mail)."""
    out = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith(ODF_FORBIDDEN):
                out.append(f"part {name} remains")
            if not name.endswith(".xml"):
                continue
            try:
                root = xml.etree.ElementTree.fromstring(z.read(name))
            except xml.etree.ElementTree.ParseError as e:
                out.append(f"{name} is not well-formed XML: {e}")
                continue
            for el in root.iter():
                local = el.tag.rsplit("}", 1)[-1]
                if local in ("scripts", "event-listeners", "event-listener"):
                    out.append(f"{name} keeps a <{local}>")
                href = el.get(XLINK_HREF, "").strip().lower()
                if href.startswith(SCRIPT_SCHEMES):
                    out.append(f"{name} keeps a script link {href[:80]!r}")
                if local in ("object", "object-ole") and href:
                    out.append(f"{name} keeps an object link {href[:80]!r}")
                if local in ODF_DDE:
                    out.append(f"{name} keeps a <{local}>")
                if href and leaves_package(href):
                    web = href.startswith(("http://", "https://", "mailto:"))
                    if local not in HYPERLINKS or not web:
                        out.append(f"{name} keeps an external link on <{local}>: {href[:80]!r}")
                for k, v in el.attrib.items():
                    if k.rsplit("}", 1)[-1] == "formula":
                        f = re.sub(r"\s", "", v.lower())
                        if any(x in f for x in EXTERNAL_FORMULA):
                            out.append(f"{name} keeps an external formula {v[:80]!r}")
    return out


EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"#!")
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MACRO_STORAGES = ("vba", "_vba_project_cur", "_vba_project", "macros")


def archive_problems(path_or_bytes, where="", depth=0):
    """A plain-ZIP copy, with zipfile: every member reads back (CRC), no name leaves the
    archive, no program, no compound file with a macro storage, OOXML and nested archives
    checked the same way (depth 4)."""
    import io
    out = []
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    try:
        z = zipfile.ZipFile(src)
        bad = z.testzip()
    except Exception as e:  # noqa: BLE001 - any failure to read is the finding
        return [f"{where}zipfile cannot read it: {e}"]
    if bad:
        out.append(f"{where}{bad} fails its CRC")
    names = z.namelist()
    if "[Content_Types].xml" in names:
        with tempfile.NamedTemporaryFile(suffix=".zip") as t:
            t.write(path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read())
            t.flush()
            return [f"{where}{p}" for p in zip_problems(t.name)]
    for name in names:
        n = name.replace("\\", "/")
        if n.startswith("/") or ".." in n.split("/") or n[1:2] == ":":
            out.append(f"{where}{name}: a name leaving the archive")
        body = z.read(name)
        if body.startswith(EXECUTABLE_MAGIC):
            out.append(f"{where}{name}: a program")
        if body.startswith(CFB_MAGIC):
            import olefile
            with olefile.OleFileIO(body) as f:
                if any(p.lower() in MACRO_STORAGES for e in f.listdir() for p in e[:-1]):
                    out.append(f"{where}{name}: a compound file with macros")
        if body.startswith(b"PK\x03\x04") and depth < 4:
            out += archive_problems(body, f"{where}{name}: ", depth + 1)
    return out


# Storages and streams a compound copy must not have (any level, case-insensitive): macro
# projects, HWP scripts, embedded objects (Word's ObjectPool, Excel's MBD…, OLE object
# streams), pivot caches. An MSG copy's attachments are checked apart (attachment_problems).
COMPOUND_FORBIDDEN = ("vba", "_vba_project_cur", "_vba_project", "macros", "objectpool",
                      "scripts", "\x01ole10native", "equation native", "\x01ole")
COMPOUND_FORBIDDEN_PREFIX = ("mbd", "_sx_db")
COMPOUND_KINDS = ("doc", "xls", "ppt", "msg", "hwp", "cfb")
HWP_PICTURES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
EXTERNAL_FIELD = re.compile(r"\x13\s*(DDE|DDEAUTO|INCLUDETEXT|INCLUDEPICTURE|INCLUDE|IMPORT)\b", re.I)


def attachment_problems(f, streams, haetae):
    """An MSG copy's attachments: each a by-value attachment (no storage of its own: no
    embedded message or OLE object) whose data is a disarmed copy — it scans clean with
    haetae, and a compound or ZIP attachment passes the same checks as a copy of its own."""
    out = []
    storages = {e[0] for e in f.listdir(streams=False, storages=True)
                if e[0].lower().startswith("__attach_version1.0_")}
    for st in sorted(storages):
        inner = [e for e in f.listdir(streams=False, storages=True) if e[0] == st and len(e) > 1]
        if inner:
            out.append(f"{st}: a storage remains in the attachment: {'/'.join(inner[0])!r}")
        data = streams.get(f"{st}/__substg1.0_37010102")
        if data is None:
            out.append(f"{st}: a kept attachment without data")
            continue
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "attachment")
            open(p, "wb").write(data)
            if haetae:
                r = subprocess.run([haetae, "scan", "--json", p], capture_output=True, text=True,
                                   env=dict(os.environ, HAETAE_DATA_DIR=os.path.join(d, "data")))
                verdict = json.loads(r.stdout.splitlines()[0])["verdict"] if r.stdout else "unreadable"
                if verdict != "clean":
                    out.append(f"{st}: the attachment scans {verdict}")
            if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
                out += [f"{st}: {x}" for x in compound_problems(p, "cfb", haetae)]
            elif data[:4] == b"PK\x03\x04":
                out += [f"{st}: {x}" for x in zip_problems(p)]
    return out


def compound_problems(path, kind, haetae=None):
    """A same-format OLE2/HWP copy, with olefile (independent of haetae): it opens, every
    stream reads back, no macro/script/object/attachment storage or stream is left; per
    format, no external field instruction in a DOC's WordDocument, no macro sheet, link or
    DDE record in an XLS workbook stream, no embedded or linked object record in a PPT, an
    HWP's non-picture BinData items empty (an OLE item an empty compound file); and olevba
    (oletools) finds no VBA macros."""
    import olefile, zlib, io, struct
    out = []
    try:
        f = olefile.OleFileIO(path)
    except Exception as e:  # noqa: BLE001 - any failure to open is the finding
        return [f"olefile cannot open it: {e}"]
    with f:
        entries = f.listdir(streams=True, storages=True)
        streams = {"/".join(e): None for e in f.listdir()}
        for name in streams:
            try:
                streams[name] = f.openstream(name).read()
            except Exception as e:  # noqa: BLE001
                out.append(f"olefile cannot read the stream {name!r}: {e}")
        for e in entries:
            for part in e:
                low = part.lower()
                if low in COMPOUND_FORBIDDEN or low.startswith(COMPOUND_FORBIDDEN_PREFIX):
                    out.append(f"a forbidden storage or stream remains: {'/'.join(e)!r}")
                    break
        if kind == "doc" and streams.get("WordDocument"):
            w = streams["WordDocument"]
            for text in (w.decode("latin-1"), w[: len(w) // 2 * 2].decode("utf-16-le", "replace"),
                         w[1: 1 + (len(w) - 1) // 2 * 2].decode("utf-16-le", "replace")):
                m = EXTERNAL_FIELD.search(text)
                if m:
                    out.append(f"an external field instruction remains: {m.group(0)!r}")
                    break
        if kind == "xls":
            wb = streams.get("Workbook") or streams.get("Book") or b""
            pos = 0
            supbook = False
            while pos + 4 <= len(wb):
                rt, ln = struct.unpack_from("<HH", wb, pos)
                body = wb[pos + 4: pos + 4 + ln]
                if rt == 0x0085 and len(body) > 5 and body[5] in (1, 6):
                    out.append(f"a macro sheet remains (BoundSheet at {pos})")
                elif rt == 0x01AE and len(body) >= 4:
                    cch = struct.unpack_from("<H", body, 2)[0]
                    supbook = True
                    if cch not in (0x0401, 0x3A01):
                        # A link to another file, a DDE source or an OLE link: its path
                        # (XLUnicodeStringNoCch after ctab, cch) must be blank.
                        width = 2 if len(body) > 4 and body[4] & 1 else 1
                        raw = body[5: 5 + cch * width]
                        link = raw.decode("utf-16-le" if width == 2 else "latin-1", "replace")
                        if link.strip(" "):
                            out.append(f"an external link or DDE source remains (SupBook at {pos}: {link!r})")
                elif rt == 0x0023 and not supbook:
                    out.append(f"an external name without a SupBook remains (ExternName at {pos})")
                elif rt in (0x0876, 0x0803):
                    out.append(f"an external data connection remains (record {rt:#06x} at {pos})")
                pos += 4 + ln
        if kind == "ppt":
            d = streams.get("PowerPoint Document") or b""
            pos = 0
            while pos + 8 <= len(d):
                vi, rt, ln = struct.unpack_from("<HHI", d, pos)
                # ExOleObjStg, ExOleLink, ExOleEmbed, ExControl
                if rt in (0x1011, 0x0FCE, 0x0FCC, 0x0FEE):
                    out.append(f"an object or control record {rt:#06x} remains at {pos}")
                    break
                # A VBAInfoAtom naming a VBA project storage or saying it has macros
                # (PowerPoint writes an empty one, persistIdRef 0 and fHasMacros 0, anyway).
                if rt == 0x0400 and d[pos + 8: pos + 16] != bytes(8):
                    out.append(f"a VBA project reference remains at {pos}")
                    break
                if rt == 0x0FF3 and pos + 16 < len(d) and d[pos + 16] in (1, 2, 5):
                    out.append(f"a macro/program/OLE action remains at {pos}")
                pos += 8 if (vi & 0xF) == 0xF and not 0x040E <= rt <= 0x0428 else 8 + ln
        if kind == "msg":
            out += attachment_problems(f, streams, haetae)
        if kind == "hwp":
            header = streams.get("FileHeader") or b""
            compressed = len(header) >= 40 and header[36] & 1
            for name, body in streams.items():
                if not name.lower().startswith("bindata/") or name.lower().endswith(HWP_PICTURES):
                    continue
                plain = body or b""
                if compressed and plain:
                    try:
                        plain = zlib.decompress(plain, -15)
                    except zlib.error:
                        pass
                if name.lower().endswith(".ole") and plain:
                    inner = plain[4:]
                    try:
                        with olefile.OleFileIO(inner) as o:
                            if o.listdir():
                                out.append(f"{name}: the OLE item still has streams")
                    except Exception as e:  # noqa: BLE001
                        out.append(f"{name}: the OLE item is not a compound file: {e}")
                elif plain:
                    out.append(f"{name}: a non-picture item kept its {len(plain)} bytes")
    try:
        from oletools.olevba import VBA_Parser
        vp = VBA_Parser(path)
        if vp.detect_vba_macros():
            out.append("olevba finds VBA macros")
        vp.close()
    except ImportError:
        pass
    except Exception as e:  # noqa: BLE001 - olevba not reading a non-Office file is no finding
        if kind in ("doc", "xls", "ppt"):
            out.append(f"olevba cannot read it: {e}")
    return out


def metafile_problems(path, kind):
    """A WMF/EMF copy walked record by record: the records tile the file up to the
    end-of-file record, the header's size and counts match, and no escape (WMF 0x0626) or
    comment record (EMF 70, which carries EMF+ and embedded data) is left."""
    d = open(path, "rb").read()
    u16 = lambda o: int.from_bytes(d[o:o + 2], "little")  # noqa: E731
    u32 = lambda o: int.from_bytes(d[o:o + 4], "little")  # noqa: E731
    out = []
    if kind == "wmf":
        start = 22 if u32(0) == 0x9AC6CDD7 else 0
        pos, words, biggest = start + 18, 9, 0
        while True:
            size, fn = u32(pos), u16(pos + 4)
            if size < 3 or pos + 2 * size > len(d):
                return [f"a broken record at byte {pos}"]
            if fn == 0x0626:
                out.append(f"an escape record at byte {pos}")
            words, biggest, pos = words + size, max(biggest, size), pos + 2 * size
            if fn == 0:
                break
        if pos != len(d):
            out.append(f"{len(d) - pos} bytes after META_EOF")
        if u32(start + 6) != words:
            out.append(f"the header says {u32(start + 6)} words, the file has {words}")
    else:
        pos, n = 0, 0
        while True:
            kind_, size = u32(pos), u32(pos + 4)
            if size < 8 or size % 4 or pos + size > len(d):
                return [f"a broken record at byte {pos}"]
            if kind_ == 70:
                out.append(f"a comment record at byte {pos}")
            pos, n = pos + size, n + 1
            if kind_ == 14:
                break
        if pos != len(d) or u32(48) != len(d) or u32(52) != n:
            out.append(f"header bytes/records {u32(48)}/{u32(52)}, the file {len(d)}/{n}, EOF at {pos}")
    return out


def soffice_problems(path, kind):
    """LibreOffice (a reader independent of haetae and olefile) converts the copy to PDF:
    without network (unshare), its own profile, a timeout."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, f"copy.{kind}")
        shutil.copyfile(path, src)
        try:
            r = subprocess.run(["unshare", "--net", "--map-root-user", "--", "soffice", "--headless",
                                "--norestore", "--nologo", "--nodefault", "--nolockcheck",
                                f"-env:UserInstallation=file://{d}/profile", "--convert-to", "pdf",
                                "--outdir", d, src], capture_output=True, text=True, timeout=180,
                               env={"HOME": d, "PATH": os.environ["PATH"], "SAL_USE_VCLPLUGIN": "svp"})
        except subprocess.TimeoutExpired:
            return ["LibreOffice did not convert it within 180 s"]
        pdf = os.path.join(d, "copy.pdf")
        if not os.path.exists(pdf) or os.path.getsize(pdf) == 0:
            said = [l for l in (r.stderr + r.stdout).splitlines() if "javaldx" not in l]
            return [f"LibreOffice cannot convert it: {'; '.join(said)[-200:]}"]
    return []


def open_with_reader(path, kind, py):
    """Opens the copy with its format's reader in the venv's python; '' or the error."""
    code = {
        "docx": "import docx,sys; d=docx.Document(sys.argv[1]); [p.text for p in d.paragraphs]",
        "xlsx": "import openpyxl,sys; wb=openpyxl.load_workbook(sys.argv[1]); [list(ws.iter_rows(max_row=50)) for ws in wb.worksheets]",
        "pptx": "import pptx,sys; p=pptx.Presentation(sys.argv[1]); [s.shapes for s in p.slides]",
        "png": "import PIL.Image,sys; PIL.Image.open(sys.argv[1]).load()",
        "jpeg": "import PIL.Image,sys; PIL.Image.open(sys.argv[1]).load()",
        "gif": "import PIL.Image,sys; PIL.Image.open(sys.argv[1]).load()",
        "bmp": "import PIL.Image,sys; PIL.Image.open(sys.argv[1]).load()",
        "tiff": "import PIL.Image,sys; PIL.Image.open(sys.argv[1]).load()",
        "pnm": "import PIL.Image,sys; PIL.Image.open(sys.argv[1]).load()",
        # Pillow identifies metafiles (size, bounds) but draws them only on Windows.
        "wmf": "import PIL.Image,sys; im=PIL.Image.open(sys.argv[1]); assert im.format=='WMF' and im.size[0]>0",
        "emf": "import PIL.Image,sys; im=PIL.Image.open(sys.argv[1]); assert im.format=='WMF' and im.size[0]>0",
        # ODF: the mimetype entry first and stored, as ODF requires, and content.xml parses.
        "odf": "import zipfile,sys,xml.etree.ElementTree as E; z=zipfile.ZipFile(sys.argv[1]); i=z.infolist()[0]; "
               "assert i.filename=='mimetype' and i.compress_type==0, 'mimetype is not first and stored'; "
               "E.fromstring(z.read('content.xml'))",
        "pdf": "import pikepdf,sys; p=pikepdf.open(sys.argv[1]); [pg.obj for pg in p.pages]",
        # Plain ZIP: zipfile reads every member back (CRC checked).
        "zip": "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); b=z.testzip(); assert b is None, b",
        # Compound files (DOC/XLS/PPT/MSG/HWP/other): olefile opens them, reads every stream.
        **{k: "import olefile,sys; f=olefile.OleFileIO(sys.argv[1]); [f.openstream(e).read() for e in f.listdir()]"
           for k in COMPOUND_KINDS},
    }.get(kind)
    if code is None:
        return ""
    r = subprocess.run([py, "-c", code, path], capture_output=True, text=True, timeout=120)
    return "" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["failed"])[-1]


# Decoded pixels of every frame/page, as Pillow sees them: a rebuilt image must show the
# same picture as its original. BMP in RGB: Pillow reads a 32-bit BI_RGB copy without its
# alpha (as Windows does), while it reads an original's alpha from its bit-field mask.
SAME_PIXELS = """
import hashlib, sys, PIL.Image, PIL.ImageSequence
def digest(path, mode):
    h = hashlib.sha256()
    with PIL.Image.open(path) as im:
        for frame in PIL.ImageSequence.Iterator(im):
            f = frame if mode is None else frame.convert(mode)
            h.update(repr((f.size, f.mode)).encode()); h.update(f.tobytes())
    return h.hexdigest()
# Netpbm: compared in its own mode (16-bit grey stays 16-bit).
mode = {"bmp": "RGB", "pnm": None}.get(sys.argv[3], "RGBA")
sys.exit(0 if digest(sys.argv[1], mode) == digest(sys.argv[2], mode) else 1)
"""


# Active content left in a PDF copy: keys and action types (every object, direct values
# included), and the page count against the original's.
PDF_PROBLEMS = """
import sys, pikepdf
BAD = {"/JS", "/JavaScript", "/OpenAction", "/AA", "/EmbeddedFiles", "/EF", "/XFA",
       "/RichMediaContent", "/RichMediaSettings", "/Next"}
BAD_S = {"/JavaScript", "/Launch", "/URI", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
         "/RichMediaExecute", "/Rendition", "/Sound", "/Movie"}
found = set()
with pikepdf.open(sys.argv[1]) as p:
    for o in p.objects:
        stack = [o]
        while stack:
            x = stack.pop()
            if isinstance(x, (pikepdf.Dictionary, pikepdf.Stream)):
                for k in x.keys():
                    v = x.get(k)
                    if k in BAD:
                        found.add(k)
                    if k == "/S" and str(v) in BAD_S:
                        found.add("action " + str(v))
                    if isinstance(v, (pikepdf.Dictionary, pikepdf.Array)) and not v.is_indirect:
                        stack.append(v)
            elif isinstance(x, pikepdf.Array):
                stack.extend(v for v in x if isinstance(v, (pikepdf.Dictionary, pikepdf.Array))
                             and not v.is_indirect)
    pages = len(p.pages)
try:
    with pikepdf.open(sys.argv[2]) as q:
        if len(q.pages) != pages:
            found.add(f"{pages} pages, the original has {len(q.pages)}")
except pikepdf.PdfError:
    pass
print("; ".join(sorted(found)))
"""


def pdf_problems(copy, original, py):
    """Active content pikepdf still finds in a PDF copy, and a changed page count."""
    r = subprocess.run([py, "-c", PDF_PROBLEMS, copy, original], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        return [f"pikepdf: {(r.stderr.strip().splitlines() or ['failed'])[-1]}"]
    return [f"keeps {x}" for x in r.stdout.strip().split("; ") if x]


def same_pixels(original, copy, kind, py):
    """True when Pillow decodes the copy to the original's pixels (every frame)."""
    r = subprocess.run([py, "-c", SAME_PIXELS, original, copy, kind], capture_output=True,
                       text=True, timeout=300)
    return r.returncode == 0


# The first line of an HWP's PrvText preview (UTF-16LE), read with olefile.
HWP_PREVIEW = """
import sys, olefile
with olefile.OleFileIO(sys.argv[1]) as f:
    if not f.exists("PrvText"):
        sys.exit(0)
    t = f.openstream("PrvText").read().decode("utf-16-le", "replace")
print(t.replace("\\r", "\\n").split("\\n")[0])
"""


# Text atoms (TextChars 0x0FA0, TextBytes 0x0FA8) outside master slides (MainMaster
# 0x03F8, the master SlideListWithText 0x0FF0 instance 1) of a PPT, with olefile.
PPT_TEXT_ATOMS = """
import sys, olefile
with olefile.OleFileIO(sys.argv[1]) as f:
    s = f.openstream("PowerPoint Document").read()
def walk(a, b, depth):
    n, pos = 0, a
    while pos + 8 <= b and depth < 64:
        vi = int.from_bytes(s[pos:pos+2], "little"); t = int.from_bytes(s[pos+2:pos+4], "little")
        ln = int.from_bytes(s[pos+4:pos+8], "little"); end = min(pos + 8 + ln, b)
        if vi & 0xF == 0xF:
            if not (t == 0x03F8 or (t == 0x0FF0 and vi >> 4 == 1)):
                n += walk(pos + 8, end, depth + 1)
        elif t in (0x0FA0, 0x0FA8) and ln > 0:
            n += 1
        pos = pos + 8 + ln
    return n
print(walk(0, len(s), 0))
"""


DOC_CCP_TEXT = """
import sys, olefile
with olefile.OleFileIO(sys.argv[1]) as f:
    w = f.openstream("WordDocument").read(0x50)
print(int.from_bytes(w[0x4C:0x50], "little"))
"""


def printable(s):
    return "".join(c if c.isprintable() else " " for c in s)


def missing_words(words, text, what):
    flat = " ".join(printable(text).split())
    missing = [w for w in words if w not in flat]
    return [f"words of the original's {what} are missing: {missing[:5]}"] if missing else []


def msg_problems(text, original):
    """An Outlook message's rendition (olefile reads the original): the words of its
    subject and plain-text body must be in it."""
    import olefile
    out = []
    with olefile.OleFileIO(original) as f:
        for prop, what in (("0037", "subject"), ("1000", "body")):
            for t, enc in (("001F", "utf-16-le"), ("001E", "cp1252")):
                if f.exists(f"__substg1.0_{prop}{t}"):
                    v = f.openstream(f"__substg1.0_{prop}{t}").read().decode(enc, "replace")
                    words = printable(v.rstrip("\0")).split()
                    out += missing_words(words, text, what)
                    break
    return out


CFB_SKIP_STORAGES = ("vba", "_vba_project_cur", "_vba_project", "macros", "objectpool")
CFB_SKIP_STREAMS = ("project", "projectwm", "\x01ole", "\x01ole10native", "\x01compobj",
                    "\x03objinfo")


def cfb_problems(text, original):
    """A compound file of no known application: every run of 6+ one-byte printable
    characters with a letter in a stream that is not a macro or object (olefile) must be in
    the rendition (the first 50 of them)."""
    import olefile
    runs = []
    with olefile.OleFileIO(original) as f:
        for entry in f.listdir():
            if any(p.lower() in CFB_SKIP_STORAGES for p in entry[:-1]):
                continue
            if entry[-1].lower() in CFB_SKIP_STREAMS:
                continue
            data = f.openstream(entry).read()
            for m in re.findall(rb"[\x20-\x7e\xa0-\xff\t]{6,}", data):
                if re.search(rb"[A-Za-z]", m):
                    runs.append(m.decode("cp1252", "replace").strip())
    runs = runs[:50]
    if runs and not text.strip():
        return ["the rendition is empty; the original's streams have text"]
    missing = [r for r in runs if r not in text]
    return [f"text runs of the original are missing: {missing[:3]}"] if missing else []


def word6_problems(text, original):
    """A Word 6/95 document saved in full: the ASCII words of its main story (ccpText bytes
    at fcMin, FIB offsets 0x34 and 0x18, read with olefile) must be in the rendition."""
    import olefile
    with olefile.OleFileIO(original) as f:
        w = f.openstream("WordDocument").read()
    if int.from_bytes(w[0:2], "little") != 0xA5DC or int.from_bytes(w[10:12], "little") & 4:
        return []
    fc, ccp = int.from_bytes(w[0x18:0x1C], "little"), int.from_bytes(w[0x34:0x38], "little")
    story = w[fc:fc + ccp]
    # Field instructions (0x13 .. 0x14) are not rendered: leave them out.
    story = re.sub(rb"\x13[^\x14\x15]*[\x14\x15]", b" ", story)
    words = [x.decode() for x in re.findall(rb"[A-Za-z]{3,}", story)]
    return missing_words(words, text, "main story")


def rendition_problems(path, original, kind, py):
    """What is wrong with a plain-text rendition: not UTF-8, empty, text of the original
    missing (HWP preview, MSG subject and body, CFB text runs, Word 6 main story)."""
    try:
        text = open(path, "rb").read().decode("utf-8")
    except UnicodeDecodeError as e:
        return [f"not UTF-8: {e}"]
    if kind == "msg":
        return msg_problems(text, original)
    if kind == "cfb":
        return cfb_problems(text, original)
    if kind == "doc":
        problems = word6_problems(text, original)
        if problems:
            return problems
    if kind == "hwp":
        r = subprocess.run([py, "-c", HWP_PREVIEW, original], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            return [f"olefile cannot read the original's PrvText: {r.stderr.strip()[-200:]}"]
        flat = " ".join(text.split())
        # PrvText shows controls as <...> placeholders; compare the plain words only.
        # A placeholder cut by the preview's end leaves a '<' or '>': skip that word.
        words = [w for w in re.sub(r"<[^>]*>", " ", r.stdout).split() if "<" not in w and ">" not in w]
        if words and not flat:
            return ["the rendition is empty, the original's preview is not"]
        missing = [w for w in words if w not in flat]
        if missing:
            return [f"words of the original's preview are missing: {missing[:5]}"]
        return []
    if not text.strip():
        if kind == "doc":
            # The FIB's ccpText (olefile, independent of haetae): a short main story is
            # breaks, an object's field (equation.doc), nothing to show.
            r = subprocess.run([py, "-c", DOC_CCP_TEXT, original], capture_output=True,
                               text=True, timeout=120)
            ccp = int(r.stdout.strip() or -1) if r.returncode == 0 else -1
            if 0 <= ccp <= 64:
                return []
            return [f"the rendition is empty, the original's main story has {ccp} characters"]
        if kind == "ppt":
            r = subprocess.run([py, "-c", PPT_TEXT_ATOMS, original], capture_output=True,
                               text=True, timeout=120)
            atoms = int(r.stdout.strip() or -1) if r.returncode == 0 else -1
            if atoms == 0:
                return []
            return [f"the rendition is empty, the original has {atoms} text atoms outside masters"]
        return ["the rendition is empty"]
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--haetae", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--venv", default="target/disarm-check-venv")
    ap.add_argument("--labels", default="valid",
                    help="MANIFEST labels to take, comma-separated (default: valid)")
    ap.add_argument("--under", default="", help="only corpus paths starting with this")
    ap.add_argument("--soffice", default="",
                    help="compound kinds (doc,xls,ppt) whose same-format copies LibreOffice must "
                         "also convert to PDF (soffice on PATH; sandboxed without network)")
    a = ap.parse_args()
    soffice_kinds = set(filter(None, a.soffice.split(",")))
    if soffice_kinds and not shutil.which("soffice"):
        sys.exit("--soffice: no soffice on PATH")
    labels = set(a.labels.split(","))
    a.corpus = os.path.abspath(a.corpus)  # the links made below must not be relative
    py = os.path.join(a.venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", a.venv], check=True)
    # A venv from an earlier run may lack a reader added since (pikepdf).
    if subprocess.run([py, "-c", "import docx, openpyxl, pptx, PIL, pikepdf, olefile, oletools.olevba"],
                      capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", "python-docx", "openpyxl",
                        "python-pptx", "Pillow", "pikepdf", "olefile", "oletools"], check=True)
    # The checks made here in-process (olefile for archive members) need the venv's modules.
    if os.path.realpath(sys.prefix) != os.path.realpath(a.venv):
        os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])
    valid = []
    for line in open(os.path.join(a.corpus, "MANIFEST.tsv"), encoding="utf-8"):
        parts = line.rstrip("\n").split("\t")
        if (len(parts) >= 5 and parts[4] in labels and not parts[0].startswith("waf/")
                and parts[0].startswith(a.under)):
            valid.append(os.path.join(a.corpus, parts[0]))
    work = tempfile.mkdtemp(prefix="haetae-disarm-")
    out = os.path.join(work, "safe")
    # One input folder of links, so same-named files from different sets stay apart.
    src = os.path.join(work, "in")
    os.makedirs(src)
    for i, f in enumerate(valid):
        os.symlink(f, os.path.join(src, f"{i:04d}-{os.path.basename(f)}"))
    env = dict(os.environ, HAETAE_DATA_DIR=os.path.join(work, "data"))
    # The LibreOffice test of the originals is measured apart (--soffice below checks the copies).
    subprocess.run([a.haetae, "scan", "-q", "--disarm", out, "--soffice", "off", src], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stats = defaultdict(Counter)
    bad = []
    copies = []
    renditions = []
    refusals = []
    originals = {}
    for sidecar in sorted(os.listdir(out)):
        if not sidecar.endswith(".disarm.json"):
            continue
        j = json.load(open(os.path.join(out, sidecar), encoding="utf-8"))
        kind = j["detected_type"]
        # A Netpbm image (the detector calls it unknown) rebuilt in its own format.
        if kind == "unknown" and j["output"] and j.get("kind") == "same format":
            head = open(j["output"], "rb").read(44)
            if head[:2] in (b"P4", b"P5", b"P6"):
                kind = "pnm"
            elif head[:4] == b"\xd7\xcd\xc6\x9a" or head[:6] in (b"\x01\x00\x09\x00\x00\x03", b"\x02\x00\x09\x00\x00\x03", b"\x01\x00\x09\x00\x00\x01"):
                kind = "wmf"
            elif head[:4] == b"\x01\x00\x00\x00" and head[40:44] == b" EMF":
                kind = "emf"
        if j["output"]:
            stats[kind]["copies"] += 1
            if j.get("kind") == "text rendition":
                stats[kind]["renditions"] += 1
                renditions.append((kind, j["output"]))
                originals[j["output"]] = j["source"]
                continue
            copies.append((kind, j["output"]))
            originals[j["output"]] = j["source"]
        elif j.get("refusal") == "encrypted":
            # Protected documents: no copy can be made without the password (quarantined).
            stats[kind]["encrypted"] += 1
            refusals.append((kind, j["source"], "encrypted", j.get("note") or ""))
        elif j["failures"]:
            stats[kind]["refused"] += 1
            f = j["failures"][0]
            refusals.append((kind, j["source"], "failed", f"{f['code']} at {f['location']}: {f['message']}"))
        else:
            stats[kind]["not rebuilt"] += 1
            refusals.append((kind, j["source"], "no rebuild", j.get("note") or ""))
    for kind, path in renditions:
        problems = rendition_problems(path, originals[path], kind, py)
        if not problems:
            stats[kind]["opened"] += 1
        r = subprocess.run([a.haetae, "scan", "--json", path], env=env, capture_output=True, text=True)
        verdict = json.loads(r.stdout.splitlines()[0])["verdict"] if r.stdout else "unreadable"
        if verdict == "clean":
            stats[kind]["clean"] += 1
        else:
            problems.append(f"scans {verdict}")
        if problems:
            bad.append((path, problems))
    for kind, path in copies:
        problems = []
        if kind in ("docx", "xlsx", "pptx", "hwpx"):
            problems += zip_problems(path)
        elif kind == "odf":
            problems += odf_problems(path)
        elif kind == "zip":
            problems += archive_problems(path)
        elif kind in ("wmf", "emf"):
            problems += metafile_problems(path, kind)
        elif kind in COMPOUND_KINDS:
            problems += compound_problems(path, kind, a.haetae)
            if kind in soffice_kinds:
                problems += soffice_problems(path, kind)
        elif kind == "rtf":
            data = open(path, "rb").read()
            # An unescaped control word: an odd number of backslashes before it.
            if re.search(rb'(?<!\\)(?:\\\\)*\\(?:object|objdata)(?![a-z])', data):
                problems.append("an object remains")
        elif kind == "pdf" and not open_with_reader(path, kind, py):
            problems += pdf_problems(path, originals[path], py)
        elif kind == "text":
            try:
                open(path, "rb").read().decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(f"not UTF-8: {e}")
        err = open_with_reader(path, kind, py)
        if err and open_with_reader(originals[path], kind, py):
            # The reader cannot open the original either (templates, .xlsb, lossless JPEG):
            # nothing to compare with.
            stats[kind]["reader n/a"] += 1
        elif err:
            problems.append(f"its reader fails: {err}")
        else:
            stats[kind]["opened"] += 1
            if kind in ("png", "jpeg", "gif", "bmp", "tiff", "pnm"):
                if same_pixels(originals[path], path, kind, py):
                    stats[kind]["same pixels"] += 1
                else:
                    problems.append("its pixels differ from the original's")
        r = subprocess.run([a.haetae, "scan", "--json", path], env=env, capture_output=True, text=True)
        verdict = json.loads(r.stdout.splitlines()[0])["verdict"] if r.stdout else "unreadable"
        if verdict == "clean":
            stats[kind]["clean"] += 1
        else:
            problems.append(f"scans {verdict}")
        if problems:
            bad.append((path, problems))
    print(f"disarm check over {len(valid)} corpus files labelled {','.join(sorted(labels))}")
    print("| type | copies | of which text renditions | opened by its reader (a rendition: UTF-8, text checked) | same pixels as the original | reader cannot open the original | scan clean | refused: encrypted | refused by the conversion | not rebuilt |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    total = Counter()
    for kind in sorted(stats):
        s = stats[kind]
        total.update(s)
        print(f"| {kind} | {s['copies']} | {s['renditions']} | {s['opened']} | {s['same pixels']} | {s['reader n/a']} | {s['clean']} | {s['encrypted']} | {s['refused']} | {s['not rebuilt']} |")
    s = total
    print(f"| all | {s['copies']} | {s['renditions']} | {s['opened']} | {s['same pixels']} | {s['reader n/a']} | {s['clean']} | {s['encrypted']} | {s['refused']} | {s['not rebuilt']} |")
    print("\nwithout a copy:")
    for kind, source, why, detail in sorted(refusals, key=lambda r: (r[2], r[0], r[1])):
        name = os.path.basename(os.path.realpath(source))
        print(f"  {why:10} {kind:16} {name}: {detail[:160]}")
    for path, problems in bad[:40]:
        print(f"FAIL {os.path.basename(path)}: {'; '.join(problems)}")
    if bad:
        print(f"copies kept for a look in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
