//! A direct page decoder for catalog parts laid out the way argus writes them: every column
//! read is required (no nulls, no nesting), plain- or dictionary-encoded, and stored either
//! uncompressed or with zstd. Each column chunk is read with one read; its page headers are
//! parsed here ([`crate::page_header`]) and each page is decompressed with one zstd context
//! kept for the part, into one buffer kept for the column; the values go straight into small
//! per-column buffers of `i64`, a few rows at a time, without building Arrow arrays; the
//! catalog reader turns those rows into events. [`PageColumns::try_open`] says `None` for any
//! other file, which the catalog then reads through Arrow.
//!
//! Dictionary indices use parquet's RLE / bit-packed hybrid: a varint header per run, whose low
//! bit says bit-packed (groups of eight values, `width` bits each, least significant first) or
//! repeated (one value in `ceil(width / 8)` bytes).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use parquet::basic::{Compression, Encoding, Type as PhysicalType};
use parquet::file::metadata::ParquetMetaData;
use zstd::bulk::Decompressor;

use crate::page_header::{self, DATA_PAGE, DATA_PAGE_V2, DICTIONARY_PAGE};

/// A page claiming to decompress to more than this is refused (argus writes pages of at most
/// a few hundred KiB; parquet's own default limit is 1 MiB).
const MAX_PAGE_BYTES: usize = 256 << 20;

/// `Encoding` numbers (parquet.thrift) the decoder reads.
const PLAIN: i32 = 0;
const PLAIN_DICTIONARY: i32 = 2;
const RLE_DICTIONARY: i32 = 8;

/// What a column's values become in its `i64` buffer.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// INT64 (signed fixed point, or unsigned stored bit for bit).
    Int64,
    /// INT32 (small integers such as flags).
    Int32,
    /// BYTE_ARRAY text mapped to a small code (-1 for text the catalog does not know).
    Text(fn(&[u8]) -> i64),
}

impl Kind {
    fn physical(self) -> PhysicalType {
        match self {
            Kind::Int64 => PhysicalType::INT64,
            Kind::Int32 => PhysicalType::INT32,
            Kind::Text(_) => PhysicalType::BYTE_ARRAY,
        }
    }
}

/// A page that cannot be decoded (the part is then cut short and its remaining rows counted).
#[derive(Debug)]
pub(crate) struct PageError;

impl From<page_header::HeaderError> for PageError {
    fn from(_: page_header::HeaderError) -> Self {
        PageError
    }
}

/// How the current data page's values are stored.
enum Values {
    /// Plain values from byte `pos` on.
    Plain { pos: usize },
    /// Dictionary indices in the hybrid encoding.
    Dict(Hybrid),
}

/// The hybrid decoder's position in a page: the current run and where the next one starts.
struct Hybrid {
    width: u32,
    /// Values left in the current run.
    run_left: usize,
    /// A repeated run's value, or `None` in a bit-packed run.
    repeat: Option<u64>,
    /// In a bit-packed run, the bit offset of its next value.
    bit: usize,
    /// Byte offset of the next run's header.
    next: usize,
}

/// One column of a part, read page by page across its row groups.
struct Column {
    kind: Kind,
    /// The row groups whose chunk of this column is still to read.
    chunks: std::ops::Range<usize>,
    leaf: usize,
    /// The current column chunk (every page of it, headers included) and where its next page
    /// starts.
    chunk: Vec<u8>,
    at: usize,
    /// Whether the current chunk's pages are zstd-compressed (else stored as they are).
    zstd: bool,
    dict: Vec<i64>,
    /// The current page's values, decompressed.
    page: Vec<u8>,
    values: Values,
    /// Values left in the current data page.
    left: usize,
}

/// The columns of one part that the catalog decodes, in the order asked for.
pub(crate) struct PageColumns {
    file: File,
    file_len: u64,
    meta: Arc<ParquetMetaData>,
    /// One zstd context for every page of the part.
    zstd: Decompressor<'static>,
    cols: Vec<Column>,
    /// Rows not yet decoded.
    pub(crate) rows_left: u64,
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, PageError> {
    let mut v = 0_u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or(PageError)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(PageError)
}

/// `width` bits at bit offset `bit` of `b`, least significant first (zero past the end).
#[inline(always)]
fn bits(b: &[u8], bit: usize, mask: u64) -> u64 {
    let at = bit / 8;
    let word = match b.get(at..at + 8) {
        Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
        None => {
            let mut w = [0_u8; 8];
            let tail = b.get(at..).unwrap_or(&[]);
            w[..tail.len().min(8)].copy_from_slice(&tail[..tail.len().min(8)]);
            u64::from_le_bytes(w)
        }
    };
    (word >> (bit % 8)) & mask
}

/// Eight bytes of `b` from `at` as a little-endian word.
#[inline(always)]
fn le64(b: &[u8], at: usize) -> u64 {
    let w = &b[at..at + 8];
    u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
}

/// `out.len()` bit-packed indices of `width` bits from bit `bit` of `page`, looked up in `dict`:
/// eight at a time through a decoder compiled for the width (constant shifts, one bounds check
/// a group), the rest and any group too near the page's end one by one.
fn unpack(width: u32, page: &[u8], bit: usize, mask: u64, dict: &[i64], out: &mut [i64]) -> Result<(), PageError> {
    macro_rules! widths {
        ($($w:literal)*) => {
            match width {
                $($w => unpack_width::<$w>(page, bit, mask, dict, out),)*
                _ => unpack_rest(width as usize, page, bit, mask, dict, out),
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32)
}

#[inline(always)]
fn unpack_width<const W: usize>(
    page: &[u8],
    bit: usize,
    mask: u64,
    dict: &[i64],
    out: &mut [i64],
) -> Result<(), PageError> {
    let mut done = 0;
    if bit.is_multiple_of(8) {
        // A byte-aligned start: eight values are exactly the next `W` bytes.
        let mut at = bit / 8;
        for group in out.chunks_exact_mut(8) {
            // `W + 8` bytes so that every word load below stays inside `src`.
            let Some(src) = page.get(at..at + W + 8) else { break };
            let mut idx = [0_usize; 8];
            let mut any = 0;
            for (v, i) in idx.iter_mut().enumerate() {
                *i = ((le64(src, v * W / 8) >> (v * W % 8)) & mask) as usize;
                any |= *i;
            }
            if any < dict.len() {
                // Every index is at most `any`, so none is out of the dictionary.
                for (slot, &i) in group.iter_mut().zip(&idx) {
                    *slot = dict[i];
                }
            } else {
                for (slot, &i) in group.iter_mut().zip(&idx) {
                    *slot = *dict.get(i).ok_or(PageError)?;
                }
            }
            at += W;
            done += 8;
        }
    }
    unpack_rest(W, page, bit + done * W, mask, dict, &mut out[done..])
}

/// The one-by-one decoder (any width, any alignment, up to the page's last byte).
fn unpack_rest(
    width: usize,
    page: &[u8],
    bit: usize,
    mask: u64,
    dict: &[i64],
    out: &mut [i64],
) -> Result<(), PageError> {
    for (j, slot) in out.iter_mut().enumerate() {
        let i = bits(page, bit + j * width, mask) as usize;
        *slot = *dict.get(i).ok_or(PageError)?;
    }
    Ok(())
}

impl Hybrid {
    /// Starts at the page's first run (after its bit-width byte at `pos`).
    fn new(page: &[u8], pos: usize) -> Result<Self, PageError> {
        let width = u32::from(*page.get(pos).ok_or(PageError)?);
        if width > 32 {
            return Err(PageError);
        }
        Ok(Self { width, run_left: 0, repeat: None, bit: 0, next: pos + 1 })
    }

    /// Reads the next run's header.
    fn start_run(&mut self, page: &[u8]) -> Result<(), PageError> {
        let header = varint(page, &mut self.next)?;
        let count = usize::try_from(header >> 1).map_err(|_| PageError)?;
        if header & 1 == 1 {
            // `count` groups of eight values, `width` bytes each group.
            self.run_left = count.checked_mul(8).ok_or(PageError)?;
            self.repeat = None;
            self.bit = self.next * 8;
            self.next = count
                .checked_mul(self.width as usize)
                .and_then(|n| n.checked_add(self.next))
                .filter(|&end| end <= page.len())
                .ok_or(PageError)?;
        } else {
            let len = (self.width as usize).div_ceil(8);
            let b = page.get(self.next..self.next + len).ok_or(PageError)?;
            self.repeat = Some(b.iter().rev().fold(0_u64, |v, &x| (v << 8) | u64::from(x)));
            self.run_left = count;
            self.next += len;
        }
        if self.run_left == 0 {
            return Err(PageError);
        }
        Ok(())
    }

    /// Looks up the next `out.len()` indices in `dict`.
    fn fill(&mut self, page: &[u8], dict: &[i64], out: &mut [i64]) -> Result<(), PageError> {
        let mut done = 0;
        let mask = (1_u64 << self.width) - 1;
        while done < out.len() {
            if self.run_left == 0 {
                self.start_run(page)?;
            }
            let k = self.run_left.min(out.len() - done);
            let chunk = &mut out[done..done + k];
            match self.repeat {
                Some(i) => {
                    let v = *usize::try_from(i).ok().and_then(|i| dict.get(i)).ok_or(PageError)?;
                    chunk.fill(v);
                }
                None => {
                    unpack(self.width, page, self.bit, mask, dict, chunk)?;
                    self.bit += k * self.width as usize;
                }
            }
            self.run_left -= k;
            done += k;
        }
        Ok(())
    }
}

/// Plain values of `kind` from `page[*pos..]` into `out`.
fn plain(kind: Kind, page: &[u8], pos: &mut usize, out: &mut [i64]) -> Result<(), PageError> {
    match kind {
        Kind::Int64 => {
            let b = page.get(*pos..*pos + out.len() * 8).ok_or(PageError)?;
            for (slot, v) in out.iter_mut().zip(b.chunks_exact(8)) {
                *slot = i64::from_le_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]);
            }
            *pos += out.len() * 8;
        }
        Kind::Int32 => {
            let b = page.get(*pos..*pos + out.len() * 4).ok_or(PageError)?;
            for (slot, v) in out.iter_mut().zip(b.chunks_exact(4)) {
                *slot = i64::from(i32::from_le_bytes([v[0], v[1], v[2], v[3]]));
            }
            *pos += out.len() * 4;
        }
        Kind::Text(code) => {
            for slot in out.iter_mut() {
                let len = page.get(*pos..*pos + 4).ok_or(PageError)?;
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let text = page.get(*pos + 4..*pos + 4 + len).ok_or(PageError)?;
                *slot = code(text);
                *pos += 4 + len;
            }
        }
    }
    Ok(())
}

/// A page's body (`src`, `size` bytes once decompressed) into `out`.
fn inflate(
    zstd: Option<&mut Decompressor<'static>>,
    src: &[u8],
    size: usize,
    out: &mut Vec<u8>,
) -> Result<(), PageError> {
    out.clear();
    if size > MAX_PAGE_BYTES {
        return Err(PageError);
    }
    match zstd {
        None if src.len() == size => out.extend_from_slice(src),
        None => return Err(PageError),
        Some(z) => {
            out.reserve(size);
            if z.decompress_to_buffer(src, out).map_err(|_| PageError)? != size {
                return Err(PageError);
            }
        }
    }
    Ok(())
}

/// The part's file and the zstd context for its pages, for [`Column::fill`] (`catalog.rs` has its
/// own `Source`: pages or Arrow).
struct PartFile<'a> {
    file: &'a File,
    file_len: u64,
    meta: &'a ParquetMetaData,
    zstd: &'a mut Decompressor<'static>,
}

impl Column {
    /// Reads the next row group's chunk of this column.
    fn load_chunk(&mut self, src: &PartFile<'_>) -> Result<(), PageError> {
        let rg = self.chunks.next().ok_or(PageError)?;
        let c = src.meta.row_group(rg).column(self.leaf);
        // The chunk starts at its dictionary page, if any (some old writers put 0 there when
        // there is none).
        let start = match c.dictionary_page_offset() {
            Some(d) if d > 0 && d < c.data_page_offset() => d,
            _ => c.data_page_offset(),
        };
        let start = u64::try_from(start).map_err(|_| PageError)?;
        let len = u64::try_from(c.compressed_size()).map_err(|_| PageError)?;
        if start.checked_add(len).is_none_or(|end| end > src.file_len) {
            return Err(PageError);
        }
        // Read into the buffer's spare capacity, not over zeros written first: `take` ends the
        // read at the chunk's end, and a short file is an error.
        let want = usize::try_from(len).map_err(|_| PageError)?;
        self.chunk.clear();
        self.chunk.try_reserve_exact(want).map_err(|_| PageError)?;
        let mut file = src.file;
        file.seek(SeekFrom::Start(start)).map_err(|_| PageError)?;
        if file.take(len).read_to_end(&mut self.chunk).map_err(|_| PageError)? != want {
            return Err(PageError);
        }
        self.zstd = matches!(c.compression(), Compression::ZSTD(_));
        self.at = 0;
        self.dict.clear();
        Ok(())
    }

    /// Loads pages until a data page with values left is current.
    fn next_data_page(&mut self, src: &mut PartFile<'_>) -> Result<(), PageError> {
        loop {
            if self.at >= self.chunk.len() {
                // This row group's chunk is done: the next row group's, if any.
                self.load_chunk(src)?;
                continue;
            }
            let rest = &self.chunk[self.at..];
            let (h, header_len) = page_header::parse(rest)?;
            let end = header_len.checked_add(h.compressed_size).ok_or(PageError)?;
            let body = rest.get(header_len..end).ok_or(PageError)?;
            self.at += end;
            let zstd = self.zstd.then_some(&mut *src.zstd);
            match h.kind {
                DICTIONARY_PAGE => {
                    if !matches!(h.encoding, PLAIN | PLAIN_DICTIONARY) {
                        return Err(PageError);
                    }
                    inflate(zstd, body, h.uncompressed_size, &mut self.page)?;
                    // Every value takes at least 4 bytes (8 for INT64): a header claiming more
                    // than the page holds is refused before anything is allocated for it.
                    let least = if matches!(self.kind, Kind::Int64) { 8 } else { 4 };
                    if h.num_values as usize > self.page.len() / least {
                        return Err(PageError);
                    }
                    self.dict.clear();
                    self.dict.resize(h.num_values as usize, 0);
                    plain(self.kind, &self.page, &mut 0, &mut self.dict)?;
                }
                DATA_PAGE => {
                    inflate(zstd, body, h.uncompressed_size, &mut self.page)?;
                    return self.start_page(h.num_values, h.encoding);
                }
                DATA_PAGE_V2 => {
                    // Levels first, never compressed (and empty for required columns), then
                    // the values.
                    let values = body.get(h.levels_len..).ok_or(PageError)?;
                    let size = h.uncompressed_size.checked_sub(h.levels_len).ok_or(PageError)?;
                    inflate(zstd.filter(|_| h.values_compressed), values, size, &mut self.page)?;
                    return self.start_page(h.num_values, h.encoding);
                }
                // Index pages, and any kind a later format adds.
                _ => {}
            }
        }
    }

    fn start_page(&mut self, num_values: u32, encoding: i32) -> Result<(), PageError> {
        self.values = match encoding {
            PLAIN => Values::Plain { pos: 0 },
            RLE_DICTIONARY | PLAIN_DICTIONARY => Values::Dict(Hybrid::new(&self.page, 0)?),
            _ => return Err(PageError),
        };
        self.left = num_values as usize;
        Ok(())
    }

    /// The column's next `out.len()` values.
    fn fill(&mut self, src: &mut PartFile<'_>, out: &mut [i64]) -> Result<(), PageError> {
        let mut done = 0;
        while done < out.len() {
            if self.left == 0 {
                self.next_data_page(src)?;
                continue;
            }
            let k = self.left.min(out.len() - done);
            let chunk = &mut out[done..done + k];
            match &mut self.values {
                Values::Plain { pos } => plain(self.kind, &self.page, pos, chunk)?,
                Values::Dict(h) => h.fill(&self.page, &self.dict, chunk)?,
            }
            self.left -= k;
            done += k;
        }
        Ok(())
    }
}

impl PageColumns {
    /// The columns `wanted` (name and kind) of a part, or `None` when the part is not laid out
    /// as this decoder expects (a column missing, nullable or nested, of another physical type,
    /// or with an encoding other than plain and dictionary).
    pub(crate) fn try_open(file: &File, meta: Arc<ParquetMetaData>, wanted: &[(&str, Kind)]) -> Option<Self> {
        let descr = meta.file_metadata().schema_descr();
        let mut cols = Vec::with_capacity(wanted.len());
        for &(name, kind) in wanted {
            let leaf = (0..descr.num_columns()).find(|&i| descr.column(i).name() == name)?;
            let c = descr.column(leaf);
            if c.max_def_level() != 0 || c.max_rep_level() != 0 || c.physical_type() != kind.physical() {
                return None;
            }
            let supported = |e: Encoding| {
                matches!(e, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY | Encoding::RLE)
            };
            let stored = |c: Compression| matches!(c, Compression::UNCOMPRESSED | Compression::ZSTD(_));
            if !meta.row_groups().iter().all(|rg| {
                let c = rg.column(leaf);
                c.encodings().all(supported) && stored(c.compression())
            }) {
                return None;
            }
            cols.push(Column {
                kind,
                chunks: 0..meta.num_row_groups(),
                leaf,
                chunk: Vec::new(),
                at: 0,
                zstd: false,
                dict: Vec::new(),
                page: Vec::new(),
                values: Values::Plain { pos: 0 },
                left: 0,
            });
        }
        let rows_left = u64::try_from(meta.file_metadata().num_rows()).ok()?;
        let file_len = file.metadata().ok()?.len();
        let zstd = Decompressor::new().ok()?;
        Some(Self { file: file.try_clone().ok()?, file_len, meta, zstd, cols, rows_left })
    }

    /// Decodes the next `n` rows (at most [`PageColumns::rows_left`]): column `c`'s values go
    /// to `out[c * stride..c * stride + n]`.
    ///
    /// # Errors
    /// A page that cannot be read or decoded; the part should then be abandoned.
    pub(crate) fn fill(&mut self, n: usize, out: &mut [i64], stride: usize) -> Result<(), PageError> {
        if n as u64 > self.rows_left || n > stride {
            return Err(PageError);
        }
        let mut src = PartFile { file: &self.file, file_len: self.file_len, meta: &self.meta, zstd: &mut self.zstd };
        for (c, col) in self.cols.iter_mut().enumerate() {
            let dst = out.get_mut(c * stride..c * stride + n).ok_or(PageError)?;
            col.fill(&mut src, dst)?;
        }
        self.rows_left -= n as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Encodes `idx` in the hybrid encoding: runs of 8+ equal values repeated, the rest
    /// bit-packed in groups of eight (the last group padded with zeros).
    fn hybrid(idx: &[u64], width: u32) -> Vec<u8> {
        fn put_varint(out: &mut Vec<u8>, mut v: u64) {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        let mut out = vec![width as u8];
        let mut i = 0;
        while i < idx.len() {
            let same = idx[i..].iter().take_while(|&&v| v == idx[i]).count();
            if same >= 8 {
                put_varint(&mut out, (same as u64) << 1);
                out.extend(&idx[i].to_le_bytes()[..(width as usize).div_ceil(8)]);
                i += same;
                continue;
            }
            let groups = (idx.len() - i).min(8).div_ceil(8);
            put_varint(&mut out, ((groups as u64) << 1) | 1);
            let mut acc = 0_u128;
            let mut nbits = 0;
            for j in 0..groups * 8 {
                let v = idx.get(i + j).copied().unwrap_or(0);
                acc |= u128::from(v) << nbits;
                nbits += width;
                while nbits >= 8 {
                    out.push(acc as u8);
                    acc >>= 8;
                    nbits -= 8;
                }
            }
            i += 8;
        }
        out
    }

    #[test]
    fn hybrid_runs_decode_to_their_dictionary_values_at_every_width() {
        for width in [0_u32, 1, 3, 7, 8, 13, 17, 24, 32] {
            let n_dict = if width == 0 { 1 } else { (1_u64 << width.min(12)) as usize };
            let dict: Vec<i64> = (0..n_dict as i64).map(|i| i * 1_000 - 7).collect();
            let mut idx = Vec::new();
            let mut s = 0x9e37_79b9_u64;
            for k in 0..3_000_u64 {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                // Stretches of repeats between stretches of noise.
                let v = if (k / 50) % 3 == 0 { 5 % n_dict as u64 } else { (s >> 33) % n_dict as u64 };
                idx.push(v);
            }
            let page = hybrid(&idx, width);
            let mut h = Hybrid::new(&page, 0).unwrap();
            let mut out = vec![0_i64; idx.len()];
            // Odd chunk sizes cross run boundaries.
            let mut at = 0;
            for step in [1, 7, 64, 333, 1024].iter().cycle() {
                let end = (at + step).min(out.len());
                h.fill(&page, &dict, &mut out[at..end]).unwrap();
                at = end;
                if at == out.len() {
                    break;
                }
            }
            let want: Vec<i64> = idx.iter().map(|&i| dict[i as usize]).collect();
            assert_eq!(out, want, "width {width}");
        }
    }

    #[test]
    fn indices_outside_the_dictionary_and_truncated_runs_are_errors() {
        let page = hybrid(&[0, 1, 2, 3], 2);
        let mut out = [0_i64; 4];
        assert!(Hybrid::new(&page, 0).unwrap().fill(&page, &[10, 11], &mut out).is_err());
        assert!(Hybrid::new(&page[..2], 0).unwrap().fill(&page[..2], &[10, 11, 12, 13], &mut out).is_err());
        assert!(Hybrid::new(&[33], 0).is_err());
        let mut ok = Hybrid::new(&page, 0).unwrap();
        ok.fill(&page, &[10, 11, 12, 13], &mut out).unwrap();
        assert_eq!(out, [10, 11, 12, 13]);
        // The same inside whole groups of eight with bytes to spare (the width-compiled path):
        // one index past a three-entry dictionary is caught, and without it all decode.
        let mut idx: Vec<u64> = (0..64).map(|i| i % 3).collect();
        let page = hybrid(&idx, 2);
        let mut out = [0_i64; 64];
        Hybrid::new(&page, 0).unwrap().fill(&page, &[10, 11, 12], &mut out).unwrap();
        assert!(out.iter().enumerate().all(|(i, &v)| v == 10 + (i as i64 % 3)));
        idx[17] = 3;
        let page = hybrid(&idx, 2);
        assert!(Hybrid::new(&page, 0).unwrap().fill(&page, &[10, 11, 12], &mut out).is_err());
    }
}
