//! The optional `LibreOffice` conversion test (issue 5): when `soffice` or `libreoffice` is
//! on `PATH`, a document `LibreOffice` reads (DOC, XLS, PPT, DOCX, XLSX, PPTX, RTF, ODF) is
//! converted to PDF with `--headless --convert-to pdf` — a second, independent reader's
//! verdict on the original. A conversion that fails (no output: `LibreOffice` could not load
//! the file; an exit status; the time or the output cap exceeded) is a [`Failure`] with a
//! `CONVERT-SOFFICE-*` code and the place: the import of the file of that type.
//!
//! The converter never runs unconfined. Each run gets a fresh temporary folder (its own
//! `HOME` and user profile, `-env:UserInstallation=file://…`, the input copied in under a
//! neutral name, an empty output folder), a cleared environment, no network (a new network
//! namespace through `unshare --net --map-root-user`: only a loopback that is down), resource
//! limits through `prlimit` (address space, the largest file it may write), its own process
//! group, and a wall-clock timeout; on timeout or when the output folder grows past its cap
//! the whole process group is killed (`kill -KILL -- -PGID`, so `soffice.bin` goes with its
//! launcher). The folder is removed afterwards. Where `unshare` cannot make the namespace
//! (user namespaces disabled) the test is skipped and says so, never run without it.
//!
//! It is never required: without `LibreOffice` [`Soffice::find`] says why and the caller
//! reports the test as skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Failure;
use crate::filetype::FileType;

/// The converter's default wall-clock limit per file (a first start with a new profile
/// takes a few seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
/// The default cap on what one conversion may write.
pub const DEFAULT_MAX_OUTPUT: u64 = 256 * 1024 * 1024;
/// The address-space limit of the converter's processes.
const ADDRESS_SPACE: u64 = 4 * 1024 * 1024 * 1024;
/// How much of the converter's own messages a failure quotes.
const MAX_MESSAGE: usize = 2000;

/// What the conversion test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not run for this file (a type `LibreOffice` does not read).
    Skipped(String),
    /// Converted: the output's size and the time taken.
    Converted {
        /// Bytes of the PDF `LibreOffice` wrote.
        bytes: u64,
        /// Wall-clock milliseconds.
        elapsed_ms: u64,
    },
    /// The conversion failed: a finding.
    Failed(Failure),
}

/// A `LibreOffice` found on `PATH`, with its limits.
#[derive(Debug, Clone)]
pub struct Soffice {
    program: PathBuf,
    /// Wall-clock limit per file.
    pub timeout: Duration,
    /// Most bytes one conversion may write.
    pub max_output: u64,
}

/// The first `name` among the folders of `PATH` that is a file.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The extension `LibreOffice`'s type detection sees for a type it reads.
fn input_extension(file_type: FileType) -> Option<&'static str> {
    match file_type {
        FileType::Doc
        | FileType::Xls
        | FileType::Ppt
        | FileType::Docx
        | FileType::Xlsx
        | FileType::Pptx
        | FileType::Rtf
        | FileType::Odf => Some(file_type.extension()),
        _ => None,
    }
}

/// Kills the process group `pid` leads (the converter and everything it started).
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Bytes of the files in `dir` (one level: `LibreOffice` writes its output there).
fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

/// The end of a log file, as one trimmed line per line, at most [`MAX_MESSAGE`] bytes.
fn tail(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(MAX_MESSAGE);
    let text = String::from_utf8_lossy(bytes.get(start..).unwrap_or_default());
    text.lines()
        .map(str::trim)
        // Java is not installed with the no-GUI packages, and not wanted.
        .filter(|l| !l.is_empty() && !l.contains("javaldx"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Soffice {
    /// Finds `soffice` (or `libreoffice`) on `PATH` and checks that the network sandbox can
    /// be made here.
    ///
    /// # Errors
    /// Why the test cannot run: no `LibreOffice` on `PATH`, no `unshare`/`prlimit`, or
    /// `unshare --net --map-root-user` not permitted (user namespaces disabled).
    pub fn find() -> Result<Soffice, String> {
        let program = on_path(&["soffice", "libreoffice"]).ok_or(
            "no soffice or libreoffice on PATH (the LibreOffice conversion test is optional)",
        )?;
        for tool in ["unshare", "prlimit", "kill"] {
            if on_path(&[tool]).is_none() {
                return Err(format!(
                    "no {tool} on PATH: the LibreOffice conversion test runs only sandboxed"
                ));
            }
        }
        let sandbox = Command::new("unshare")
            .args(["--net", "--map-root-user", "--", "true"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !sandbox.is_ok_and(|s| s.success()) {
            return Err(
                "`unshare --net --map-root-user` is not permitted here (user namespaces \
                        disabled?): the LibreOffice conversion test runs only without network, \
                        so it is skipped"
                    .into(),
            );
        }
        Ok(Soffice {
            program,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        })
    }

    /// The converter's path.
    #[must_use]
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Converts `data` (of `file_type`) to PDF in the sandbox.
    #[must_use]
    pub fn convert(&self, data: &[u8], file_type: FileType) -> Outcome {
        let Some(ext) = input_extension(file_type) else {
            return Outcome::Skipped(format!("LibreOffice is not a reader of {file_type} files"));
        };
        let location =
            format!("LibreOffice import of the {file_type} file (soffice --convert-to pdf)");
        let fail = |code: &str, message: String| {
            Outcome::Failed(Failure {
                code: format!("CONVERT-SOFFICE-{code}"),
                location: location.clone(),
                message,
            })
        };
        let dir = match tempfile::Builder::new().prefix("haetae-soffice-").tempdir() {
            Ok(d) => d,
            Err(e) => return fail("RUN", format!("cannot make a temporary folder: {e}")),
        };
        let (input, out, profile, log) = (
            dir.path().join(format!("input.{ext}")),
            dir.path().join("out"),
            dir.path().join("profile"),
            dir.path().join("log"),
        );
        if let Err(e) = std::fs::write(&input, data).and_then(|()| std::fs::create_dir(&out)) {
            return fail("RUN", format!("cannot write the input: {e}"));
        }
        let started = Instant::now();
        let mut child = match self.spawn(dir.path(), &input, &out, &profile, &log) {
            Ok(c) => c,
            Err(e) => {
                return fail(
                    "RUN",
                    format!("cannot start {}: {e}", self.program.display()),
                );
            }
        };
        let pid = child.id();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(format!("cannot wait for the converter: {e}")),
            }
            if started.elapsed() > self.timeout {
                break Err(format!(
                    "no result within {} s (the process group was killed)",
                    self.timeout.as_secs()
                ));
            }
            if folder_size(&out) > self.max_output {
                break Err(format!(
                    "the output grew past {} bytes (the process group was killed)",
                    self.max_output
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Whatever the launcher left behind goes with the group.
        kill_group(pid);
        let _ = child.wait();
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let said = tail(&log);
        let status = match status {
            Ok(s) => s,
            Err(why) if why.starts_with("no result") => return fail("TIMEOUT", why),
            Err(why) if why.starts_with("the output") => return fail("SIZE", why),
            Err(why) => return fail("RUN", why),
        };
        let pdf = out.join("input.pdf");
        let bytes = std::fs::metadata(&pdf).map_or(0, |m| m.len());
        if !status.success() {
            return fail(
                "EXIT",
                format!("the converter exited with {status}: {said}"),
            );
        }
        if bytes == 0 {
            return fail(
                "LOAD",
                if said.is_empty() {
                    "LibreOffice wrote no PDF (it could not load the file)".to_owned()
                } else {
                    format!("LibreOffice wrote no PDF: {said}")
                },
            );
        }
        if bytes > self.max_output {
            return fail("SIZE", format!("a PDF of {bytes} bytes, over the cap"));
        }
        Outcome::Converted { bytes, elapsed_ms }
    }

    /// Starts the converter: `unshare` (no network) → `prlimit` → `soffice`, in a process
    /// group of its own, with a cleared environment whose `HOME` is the run's folder.
    fn spawn(
        &self,
        home: &Path,
        input: &Path,
        out: &Path,
        profile: &Path,
        log: &Path,
    ) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt;
        let log_out = std::fs::File::create(log)?;
        let log_err = log_out.try_clone()?;
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "--map-root-user", "--", "prlimit"])
            .arg(format!("--as={ADDRESS_SPACE}"))
            .arg(format!("--fsize={}", self.max_output))
            .arg("--")
            .arg(&self.program)
            .args([
                "--headless",
                "--invisible",
                "--norestore",
                "--nologo",
                "--nodefault",
                "--nolockcheck",
            ])
            .arg(format!(
                "-env:UserInstallation=file://{}",
                profile.display()
            ))
            .args(["--convert-to", "pdf", "--outdir"])
            .arg(out)
            .arg(input)
            .env_clear()
            .env("HOME", home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("SAL_USE_VCLPLUGIN", "svp")
            .current_dir(home)
            .stdin(Stdio::null())
            .stdout(log_out)
            .stderr(log_err)
            .process_group(0);
        cmd.spawn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `LibreOffice` tests run where `HAETAE_TEST_SOFFICE` is set (CI installs
    /// `libreoffice-*-nogui`); elsewhere they are ignored, not passed.
    fn soffice() -> Soffice {
        assert!(
            std::env::var_os("HAETAE_TEST_SOFFICE").is_some(),
            "set HAETAE_TEST_SOFFICE=1 (with LibreOffice installed) to run this test"
        );
        Soffice::find().expect("HAETAE_TEST_SOFFICE is set but LibreOffice cannot run here")
    }

    /// One test, so no other conversion of this crate's tests runs beside the timeout's
    /// process-group check.
    #[test]
    #[ignore = "needs LibreOffice: set HAETAE_TEST_SOFFICE=1"]
    fn converts_a_document_reports_a_broken_one_and_kills_a_slow_one() {
        let mut s = soffice();
        match s.convert(b"{\\rtf1\\ansi Hello, {\\b world}.\\par}", FileType::Rtf) {
            Outcome::Converted { bytes, .. } => assert!(bytes > 500, "{bytes}"),
            other => panic!("{other:?}"),
        }
        match s.convert(b"PK\x03\x04 not a package", FileType::Docx) {
            Outcome::Failed(f) => {
                assert_eq!(f.code, "CONVERT-SOFFICE-LOAD");
                assert!(f.location.contains("docx"), "{}", f.location);
                assert!(f.message.contains("could not be loaded"), "{}", f.message);
            }
            other => panic!("{other:?}"),
        }
        // A long document and a short timeout: killed, with everything it started.
        let mut rtf = b"{\\rtf1\\ansi ".to_vec();
        for k in 0..60_000 {
            rtf.extend_from_slice(format!("Paragraph {k} of a long document.\\par ").as_bytes());
        }
        rtf.push(b'}');
        s.timeout = Duration::from_millis(1500);
        let started = Instant::now();
        match s.convert(&rtf, FileType::Rtf) {
            Outcome::Failed(f) => assert_eq!(f.code, "CONVERT-SOFFICE-TIMEOUT", "{f:?}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        let ps = Command::new("pgrep")
            .args(["-f", "haetae-soffice-"])
            .output()
            .unwrap();
        assert!(
            ps.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&ps.stdout)
        );
    }

    #[test]
    fn types_libreoffice_does_not_read_are_skipped() {
        let s = Soffice {
            program: PathBuf::from("/nonexistent/soffice"),
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        };
        assert!(matches!(
            s.convert(b"\x89PNG", FileType::Png),
            Outcome::Skipped(_)
        ));
        // A converter that cannot start is a failure with its code, not a panic.
        match s.convert(b"{\\rtf1 x}", FileType::Rtf) {
            Outcome::Failed(f) => assert!(f.code.starts_with("CONVERT-SOFFICE-"), "{f:?}"),
            other => panic!("{other:?}"),
        }
    }
}
