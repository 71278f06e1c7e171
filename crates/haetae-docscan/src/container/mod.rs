//! Container readers shared by every format: the OLE2 compound file ([`cfb`]), ZIP
//! ([`zip`]) and deflate/zlib ([`inflate`]) with output caps, plus CRC-32 ([`crc32`]).
//! They are strict: structural problems become findings with locations, and every read is
//! bounded by the scan's budgets.

pub mod cfb;
pub mod crc32;
pub mod inflate;
pub mod zip;
