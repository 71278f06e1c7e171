//! QR codes as SVG, drawn on the server: the TOTP enrolment page shows the `otpauth://` URI
//! as a code an authenticator app scans, with no third-party script in the browser (the
//! strict CSP allows our own images and `data:` images only).
//!
//! The symbol itself (mode selection, Reed-Solomon blocks, module placement, the mask with
//! the lowest penalty, format and version information) comes from the `qrcode` crate with
//! its default features off, so it brings no dependency of its own; the drawing is ours:
//! one `<path>` of horizontal runs of dark modules on a white square with the four-module
//! quiet zone ISO/IEC 18004 asks for, at whole-module coordinates (`crispEdges`), so the
//! browser scales it without blurring.

use std::fmt::Write as _;

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the symbol (ISO/IEC 18004 §6.3.8).
pub const QUIET_ZONE: usize = 4;

/// Why a QR code could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot draw a QR code of {len} bytes: {reason}")]
pub struct QrError {
    /// The length of the text.
    pub len: usize,
    /// What the encoder said (e.g. the data is too long for the largest version).
    pub reason: String,
}

/// A QR code for `text` at error-correction level M (15 % of the codewords may be
/// damaged, what authenticator apps expect), as a standalone SVG document whose user units
/// are modules: `viewBox="0 0 n n"` with `n` = the symbol's width plus two quiet zones.
/// `label` becomes the image's accessible name (escaped).
pub fn svg(text: &str, label: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| QrError {
            len: text.len(),
            reason: e.to_string(),
        })?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(width * width);
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let start = x;
                while x < width && row[x] == Color::Dark {
                    x += 1;
                }
                // Writing to a String cannot fail.
                let _ = write!(
                    path,
                    "M{} {}h{}v1h-{}z",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE,
                    x - start,
                    x - start
                );
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"{}\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>",
        xml_escape(label)
    ))
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modules the SVG draws, read back from its markup: `(size, dark[y][x])`, quiet
    /// zone included. Panics on anything but the shape [`svg`] writes.
    fn modules(svg: &str) -> (usize, Vec<Vec<bool>>) {
        let view = svg
            .split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a viewBox");
        let (w, h) = view.split_once(' ').expect("two numbers");
        assert_eq!(w, h, "a square");
        let size: usize = w.parse().unwrap();
        let d = svg
            .split(" d=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("one path");
        let mut dark = vec![vec![false; size]; size];
        for run in d.split('z').filter(|r| !r.is_empty()) {
            // M{x} {y}h{len}v1h-{len}
            let rest = run.strip_prefix('M').expect("a move");
            let (x, rest) = rest.split_once(' ').unwrap();
            let (y, rest) = rest.split_once('h').unwrap();
            let (len, rest) = rest.split_once("v1h-").unwrap();
            assert_eq!(len, rest, "a run is one module high and closes on itself");
            let (x, y, len): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), len.parse().unwrap());
            for cell in &mut dark[y][x..x + len] {
                assert!(!*cell, "runs do not overlap");
                *cell = true;
            }
        }
        (size, dark)
    }

    /// A finder pattern (7×7: dark ring, light ring, dark 3×3 centre) at `(x, y)`.
    fn is_finder(dark: &[Vec<bool>], x: usize, y: usize) -> bool {
        (0..7).all(|dy| {
            (0..7).all(|dx| {
                let ring = dx == 0 || dy == 0 || dx == 6 || dy == 6;
                let centre = (2..=4).contains(&dx) && (2..=4).contains(&dy);
                dark[y + dy][x + dx] == (ring || centre)
            })
        })
    }

    #[test]
    fn an_otpauth_uri_draws_as_a_scannable_symbol_with_quiet_zone_and_finders() {
        let uri = crate::totp::otpauth_uri("kim.minji", &[0x5a; 20]);
        let svg = svg(&uri, "QR <code> & \"more\"").unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("aria-label=\"QR &lt;code&gt; &amp; &quot;more&quot;\""));
        assert!(!svg.contains("<script"), "{svg}");

        let (size, dark) = modules(&svg);
        let width = size - 2 * QUIET_ZONE;
        // Versions 1..=40 are 21..=177 modules, 4 more per version.
        assert!(
            (21..=177).contains(&width) && (width - 17).is_multiple_of(4),
            "width {width}"
        );
        let version = (width - 17) / 4;
        // ~110 bytes at level M need version 5 or 6 in byte mode.
        assert!(
            (5..=7).contains(&version),
            "version {version} for {} bytes",
            uri.len()
        );
        // The quiet zone is light all round.
        for (y, row) in dark.iter().enumerate() {
            for (x, d) in row.iter().enumerate() {
                let inside = (QUIET_ZONE..size - QUIET_ZONE).contains(&x)
                    && (QUIET_ZONE..size - QUIET_ZONE).contains(&y);
                assert!(inside || !d, "dark module in the quiet zone at {x},{y}");
            }
        }
        // Finder patterns in three corners, none in the fourth.
        let q = QUIET_ZONE;
        let far = size - QUIET_ZONE - 7;
        assert!(is_finder(&dark, q, q));
        assert!(is_finder(&dark, far, q));
        assert!(is_finder(&dark, q, far));
        assert!(!is_finder(&dark, far, far));
        // Timing patterns: row and column 6 alternate between the finders.
        for i in 8..width - 8 {
            assert_eq!(dark[q + 6][q + i], i % 2 == 0, "horizontal timing at {i}");
            assert_eq!(dark[q + i][q + 6], i % 2 == 0, "vertical timing at {i}");
        }
        // The dark module beside the lower-left finder (ISO/IEC 18004 §7.9.1).
        assert!(dark[q + 4 * version + 9][q + 8]);
    }

    /// Draws the SVG at 3 pixels a module, as a screen would, and reads it back with an
    /// independent decoder (`rqrr`): the same text, at level M.
    #[test]
    fn a_decoder_reads_back_the_uri_from_the_drawn_pixels() {
        let uri = crate::totp::otpauth_uri("admin", &crate::totp::new_secret().unwrap());
        let svg = svg(&uri, "QR").unwrap();
        let (size, dark) = modules(&svg);
        let scale = 3;
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(size * scale, size * scale, |x, y| {
                if dark[y / scale][x / scale] { 0 } else { 255 }
            });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one symbol in the picture");
        let (meta, content) = grids[0].decode().expect("a readable symbol");
        assert_eq!(content, uri);
        // rqrr numbers the levels as the format bits do: M = 0, L = 1, H = 2, Q = 3.
        assert_eq!(meta.ecc_level, 0, "error correction level M");
    }

    #[test]
    fn text_too_long_for_any_version_is_an_error_not_a_panic() {
        let e = svg(&"x".repeat(5000), "QR").unwrap_err();
        assert_eq!(e.len, 5000);
        assert!(e.to_string().contains("5000 bytes"), "{e}");
    }
}
