//! A small ZIP writer for rebuilt packages: deflated entries (stored where a format wants
//! them stored, such as HWPX/ODF `mimetype`), UTF-8 names, fixed timestamps, no ZIP64 (a
//! rebuilt document above 4 GiB is refused).

use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;

/// One entry to write.
pub struct NewEntry<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
    pub stored: bool,
}

/// The archive's bytes, or why it cannot be written.
pub fn write(entries: &[NewEntry<'_>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let count = u16::try_from(entries.len()).map_err(|_| "more than 65,535 entries".to_owned())?;
    for e in entries {
        let name = e.name.as_bytes();
        let name_len =
            u16::try_from(name.len()).map_err(|_| format!("entry name {:?} too long", e.name))?;
        let crc = crc32fast::hash(e.data);
        let (method, body): (u16, std::borrow::Cow<'_, [u8]>) = if e.stored {
            (0, std::borrow::Cow::Borrowed(e.data))
        } else {
            let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
            enc.write_all(e.data)
                .map_err(|err| format!("{}: {err}", e.name))?;
            (
                8,
                std::borrow::Cow::Owned(enc.finish().map_err(|err| format!("{}: {err}", e.name))?),
            )
        };
        let too_big = || format!("{} is larger than 4 GiB", e.name);
        let csize = u32::try_from(body.len()).map_err(|_| too_big())?;
        let usize_ = u32::try_from(e.data.len()).map_err(|_| too_big())?;
        let offset =
            u32::try_from(out.len()).map_err(|_| "the package is larger than 4 GiB".to_owned())?;
        let header = |sig: u32, buf: &mut Vec<u8>, central: bool| {
            buf.extend(sig.to_le_bytes());
            if central {
                buf.extend(20u16.to_le_bytes()); // made by
            }
            buf.extend(20u16.to_le_bytes()); // needed
            buf.extend(0x0800u16.to_le_bytes()); // UTF-8 names
            buf.extend(method.to_le_bytes());
            buf.extend(0u16.to_le_bytes()); // time 00:00
            buf.extend(0x0021u16.to_le_bytes()); // date 1980-01-01
            buf.extend(crc.to_le_bytes());
            buf.extend(csize.to_le_bytes());
            buf.extend(usize_.to_le_bytes());
            buf.extend(name_len.to_le_bytes());
            buf.extend(0u16.to_le_bytes()); // extra
            if central {
                buf.extend(0u16.to_le_bytes()); // comment
                buf.extend(0u16.to_le_bytes()); // disk
                buf.extend(0u16.to_le_bytes()); // internal attributes
                buf.extend(0u32.to_le_bytes()); // external attributes
                buf.extend(offset.to_le_bytes());
            }
            buf.extend(name);
        };
        header(0x0403_4b50, &mut out, false);
        out.extend(body.iter());
        header(0x0201_4b50, &mut central, true);
    }
    let cd_offset =
        u32::try_from(out.len()).map_err(|_| "the package is larger than 4 GiB".to_owned())?;
    let cd_size = u32::try_from(central.len())
        .map_err(|_| "the directory is larger than 4 GiB".to_owned())?;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    Ok(out)
}
