//! Parquet page headers, read from Thrift's compact protocol: just the fields the page
//! decoder needs, every other field (statistics, CRC, index pages' contents) skipped. Parsing
//! them here lets the catalog read a whole column chunk with one read and decompress each page
//! with one reused zstd context into one reused buffer, where parquet's page reader opens a
//! fresh decoder and a fresh buffer for every page.
//!
//! The compact protocol: a struct is a list of fields, each a header byte (field-id delta in
//! the high nibble, or 0 and a zigzag varint id after it; the type in the low nibble, which for
//! a bool field is also its value), then the value; a zero byte ends the struct. Integers are
//! zigzag varints, binary values a varint length and the bytes, lists a header byte (size in
//! the high nibble, 15 meaning a varint size follows; element type in the low nibble).
//! Malformed input is an error, never a panic, and no loop runs longer than its input: every
//! value read consumes at least one byte.

/// A page header that cannot be parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct HeaderError;

/// Page types (parquet.thrift `PageType`).
pub(crate) const DATA_PAGE: i32 = 0;
pub(crate) const DICTIONARY_PAGE: i32 = 2;
pub(crate) const DATA_PAGE_V2: i32 = 3;

/// What the decoder needs of a page header.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PageHeader {
    /// `PageType`.
    pub kind: i32,
    pub uncompressed_size: usize,
    pub compressed_size: usize,
    /// Values in a data or dictionary page (0 for other pages).
    pub num_values: u32,
    /// The values' `Encoding` (parquet.thrift numbering).
    pub encoding: i32,
    /// A v2 data page's repetition and definition levels, stored uncompressed before the values.
    pub levels_len: usize,
    /// Whether a v2 data page's values are compressed (v1 pages always are when the chunk is).
    pub values_compressed: bool,
}

// Compact protocol type ids.
const T_STOP: u8 = 0;
const T_TRUE: u8 = 1;
const T_FALSE: u8 = 2;
const T_BYTE: u8 = 3;
const T_I16: u8 = 4;
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_DOUBLE: u8 = 7;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_SET: u8 = 10;
const T_MAP: u8 = 11;
const T_STRUCT: u8 = 12;

/// Nesting deeper than this is refused (page headers nest three levels).
const MAX_DEPTH: u32 = 16;

struct Compact<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Compact<'_> {
    fn byte(&mut self) -> Result<u8, HeaderError> {
        let v = *self.b.get(self.pos).ok_or(HeaderError)?;
        self.pos += 1;
        Ok(v)
    }

    fn varint(&mut self) -> Result<u64, HeaderError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(HeaderError)
    }

    fn zigzag(&mut self) -> Result<i64, HeaderError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Result<i32, HeaderError> {
        i32::try_from(self.zigzag()?).map_err(|_| HeaderError)
    }

    /// A size or count: an `i32` that must not be negative.
    fn size(&mut self) -> Result<usize, HeaderError> {
        usize::try_from(self.i32()?).map_err(|_| HeaderError)
    }

    /// The next field's id and type, or `None` at the end of the struct.
    fn field(&mut self, last: &mut i16) -> Result<Option<(i16, u8)>, HeaderError> {
        let h = self.byte()?;
        if h == T_STOP {
            return Ok(None);
        }
        let delta = i16::from(h >> 4);
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?).map_err(|_| HeaderError)?
        } else {
            last.checked_add(delta).ok_or(HeaderError)?
        };
        *last = id;
        Ok(Some((id, h & 0x0f)))
    }

    /// A bool field's value, carried by its type.
    fn bool_field(ty: u8) -> Result<bool, HeaderError> {
        match ty {
            T_TRUE => Ok(true),
            T_FALSE => Ok(false),
            _ => Err(HeaderError),
        }
    }

    /// Skips a value of type `ty`; `element` when it is inside a list, set or map, where a
    /// bool takes a byte of its own.
    fn skip(&mut self, ty: u8, element: bool, depth: u32) -> Result<(), HeaderError> {
        if depth > MAX_DEPTH {
            return Err(HeaderError);
        }
        match ty {
            T_TRUE | T_FALSE => {
                if element {
                    self.byte()?;
                }
            }
            T_BYTE => {
                self.byte()?;
            }
            T_I16 | T_I32 | T_I64 => {
                self.varint()?;
            }
            T_DOUBLE => self.advance(8)?,
            T_BINARY => {
                let n = usize::try_from(self.varint()?).map_err(|_| HeaderError)?;
                self.advance(n)?;
            }
            T_LIST | T_SET => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => usize::try_from(self.varint()?).map_err(|_| HeaderError)?,
                    n => usize::from(n),
                };
                for _ in 0..n {
                    self.skip(h & 0x0f, true, depth + 1)?;
                }
            }
            T_MAP => {
                let n = usize::try_from(self.varint()?).map_err(|_| HeaderError)?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.skip(kv >> 4, true, depth + 1)?;
                        self.skip(kv & 0x0f, true, depth + 1)?;
                    }
                }
            }
            T_STRUCT => {
                let mut last = 0;
                while let Some((_, t)) = self.field(&mut last)? {
                    self.skip(t, false, depth + 1)?;
                }
            }
            _ => return Err(HeaderError),
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) -> Result<(), HeaderError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or(HeaderError)?;
        self.pos = end;
        Ok(())
    }

    /// `DataPageHeader` (1: num_values, 2: encoding), `DictionaryPageHeader` (the same two)
    /// and `DataPageHeaderV2` (1: num_values, 4: encoding, 5 and 6: the levels' byte lengths,
    /// 7: is_compressed), told apart by `v2`.
    fn data_header(&mut self, h: &mut PageHeader, v2: bool) -> Result<(), HeaderError> {
        let (mut last, mut seen) = (0, 0u8);
        let encoding_field = if v2 { 4 } else { 2 };
        while let Some((id, ty)) = self.field(&mut last)? {
            match (id, ty) {
                (1, T_I32) => {
                    h.num_values = u32::try_from(self.i32()?).map_err(|_| HeaderError)?;
                    seen |= 1;
                }
                (i, T_I32) if i == encoding_field => {
                    h.encoding = self.i32()?;
                    seen |= 2;
                }
                (5 | 6, T_I32) if v2 => {
                    h.levels_len = h.levels_len.checked_add(self.size()?).ok_or(HeaderError)?;
                }
                (7, T_TRUE | T_FALSE) if v2 => h.values_compressed = Self::bool_field(ty)?,
                (_, t) => self.skip(t, false, 1)?,
            }
        }
        if seen == 3 {
            Ok(())
        } else {
            Err(HeaderError)
        }
    }
}

/// Parses the page header at the start of `b`: the header and its length in bytes.
pub(crate) fn parse(b: &[u8]) -> Result<(PageHeader, usize), HeaderError> {
    let mut c = Compact { b, pos: 0 };
    let mut h = PageHeader { values_compressed: true, ..PageHeader::default() };
    let (mut last, mut seen) = (0, 0u8);
    while let Some((id, ty)) = c.field(&mut last)? {
        match (id, ty) {
            (1, T_I32) => {
                h.kind = c.i32()?;
                seen |= 1;
            }
            (2, T_I32) => {
                h.uncompressed_size = c.size()?;
                seen |= 2;
            }
            (3, T_I32) => {
                h.compressed_size = c.size()?;
                seen |= 4;
            }
            (5, T_STRUCT) if h.kind == DATA_PAGE => {
                c.data_header(&mut h, false)?;
                seen |= 8;
            }
            (7, T_STRUCT) if h.kind == DICTIONARY_PAGE => {
                c.data_header(&mut h, false)?;
                seen |= 8;
            }
            (8, T_STRUCT) if h.kind == DATA_PAGE_V2 => {
                c.data_header(&mut h, true)?;
                seen |= 8;
            }
            (_, t) => c.skip(t, false, 0)?,
        }
    }
    // The three sizes, and for a data or dictionary page its own header.
    let values_page = matches!(h.kind, DATA_PAGE | DICTIONARY_PAGE | DATA_PAGE_V2);
    if seen & 7 != 7 || (values_page && seen & 8 == 0) {
        return Err(HeaderError);
    }
    Ok((h, c.pos))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A compact-protocol writer for the tests: field headers with deltas, zigzag varints.
    struct W {
        out: Vec<u8>,
        last: Vec<i16>,
    }

    impl W {
        fn varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.out.push((v as u8 & 0x7f) | 0x80);
                v >>= 7;
            }
            self.out.push(v as u8);
        }
        fn head(&mut self, id: i16, ty: u8) {
            let last = self.last.last_mut().unwrap();
            let delta = id - *last;
            *last = id;
            if (1..=15).contains(&delta) {
                self.out.push((delta as u8) << 4 | ty);
            } else {
                self.out.push(ty);
                self.varint(((id << 1) ^ (id >> 15)) as u16 as u64);
            }
        }
        fn i32(&mut self, id: i16, v: i32) -> &mut Self {
            self.head(id, T_I32);
            self.varint(((v << 1) ^ (v >> 31)) as u32 as u64);
            self
        }
        fn bool(&mut self, id: i16, v: bool) -> &mut Self {
            self.head(id, if v { T_TRUE } else { T_FALSE });
            self
        }
        fn binary(&mut self, id: i16, b: &[u8]) -> &mut Self {
            self.head(id, T_BINARY);
            self.varint(b.len() as u64);
            self.out.extend_from_slice(b);
            self
        }
        fn begin(&mut self, id: i16) -> &mut Self {
            self.head(id, T_STRUCT);
            self.last.push(0);
            self
        }
        fn end(&mut self) -> &mut Self {
            self.out.push(T_STOP);
            self.last.pop();
            self
        }
        fn new() -> Self {
            Self { out: Vec::new(), last: vec![0] }
        }
    }

    #[test]
    fn headers_parquet_writes_parse_to_their_fields() {
        // A v1 data page with statistics and a CRC, as parquet-rs and pyarrow write them.
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(2, 8_000).i32(3, 3_000).i32(4, -12_345);
        w.begin(5).i32(1, 1_000).i32(2, 8).i32(3, 3).i32(4, 3);
        w.begin(5).binary(1, &[9; 8]).binary(2, &[1; 8]).bool(7, true).end();
        w.end();
        w.end();
        let tail = w.out.len();
        w.out.extend_from_slice(&[0xAA; 5]); // the page body follows
        let (h, len) = parse(&w.out).unwrap();
        assert_eq!(len, tail);
        assert_eq!(
            h,
            PageHeader {
                kind: DATA_PAGE,
                uncompressed_size: 8_000,
                compressed_size: 3_000,
                num_values: 1_000,
                encoding: 8,
                levels_len: 0,
                values_compressed: true,
            }
        );

        // A dictionary page (field 7), with an is_sorted bool.
        let mut w = W::new();
        w.i32(1, DICTIONARY_PAGE).i32(2, 80).i32(3, 40).begin(7).i32(1, 10).i32(2, 0).bool(3, false).end().end();
        let (h, _) = parse(&w.out).unwrap();
        assert_eq!((h.kind, h.num_values, h.encoding, h.compressed_size), (DICTIONARY_PAGE, 10, 0, 40));

        // A v2 data page: levels' lengths add up; is_compressed false is kept.
        let mut w = W::new();
        w.i32(1, DATA_PAGE_V2).i32(2, 100).i32(3, 90).begin(8);
        w.i32(1, 7).i32(2, 0).i32(3, 7).i32(4, 8).i32(5, 3).i32(6, 2).bool(7, false).end().end();
        let (h, _) = parse(&w.out).unwrap();
        assert_eq!((h.num_values, h.encoding, h.levels_len, h.values_compressed), (7, 8, 5, false));

        // A field id far from the last one takes the long form; unknown fields are skipped.
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(2, 1).i32(3, 1).binary(40, b"future").begin(5).i32(1, 1).i32(2, 0).end().end();
        assert_eq!(parse(&w.out).unwrap().0.num_values, 1);
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(2, 8_000).i32(3, 3_000).begin(5).i32(1, 1_000).i32(2, 8).end().end();
        let good = w.out.clone();
        assert!(parse(&good).is_ok());
        // Cut anywhere: an error, not a panic.
        for n in 0..good.len() {
            assert_eq!(parse(&good[..n]), Err(HeaderError), "cut at {n}");
        }
        // A required field missing.
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(3, 3).begin(5).i32(1, 1).i32(2, 0).end().end();
        assert_eq!(parse(&w.out), Err(HeaderError));
        // A data page without its own header, and one whose own header lacks its encoding.
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(2, 3).i32(3, 3).end();
        assert_eq!(parse(&w.out), Err(HeaderError));
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(2, 3).i32(3, 3).begin(5).i32(1, 1).end().end();
        assert_eq!(parse(&w.out), Err(HeaderError));
        // Negative sizes.
        let mut w = W::new();
        w.i32(1, DATA_PAGE).i32(2, -1).i32(3, 3).begin(5).i32(1, 1).i32(2, 0).end().end();
        assert_eq!(parse(&w.out), Err(HeaderError));
        // An unknown type id, and nesting past the limit.
        assert_eq!(parse(&[0x1d]), Err(HeaderError));
        let deep: Vec<u8> = std::iter::repeat_n(0x1c, 100).collect();
        assert_eq!(parse(&deep), Err(HeaderError));
        // A list claiming more elements than there are bytes ends at the input's end.
        assert_eq!(parse(&[0x19, 0xf5, 0xff, 0xff, 0xff, 0x0f, 0x02]), Err(HeaderError));
    }

    #[test]
    fn real_parquet_files_parse_page_by_page() {
        use parquet::file::properties::WriterProperties;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        // Write a file with parquet-rs (statistics, several pages, a dictionary) and walk its
        // column chunk with `parse` alone; the pages must tile the chunk exactly.
        let dir = std::env::temp_dir().join(format!("argus-page-header-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.parquet");
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
            "x",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        let col = arrow::array::Int64Array::from_iter_values((0..5_000).map(|i| i * 7 % 1_001));
        let batch = arrow::record_batch::RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(col)]).unwrap();
        let props = WriterProperties::builder()
            .set_data_page_row_count_limit(700)
            .set_write_batch_size(700)
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let c = reader.metadata().row_group(0).column(0);
        let start = c.dictionary_page_offset().unwrap() as usize;
        let end = start + c.compressed_size() as usize;
        let (mut at, mut values, mut dict, mut data) = (start, 0, 0, 0);
        while at < end {
            let (h, len) = parse(&bytes[at..end]).unwrap();
            match h.kind {
                DICTIONARY_PAGE => dict += 1,
                DATA_PAGE => {
                    data += 1;
                    values += h.num_values;
                }
                k => panic!("page type {k}"),
            }
            at += len + h.compressed_size;
        }
        assert_eq!(at, end);
        assert_eq!((dict, values), (1, 5_000));
        assert!(data >= 7, "{data} data pages");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
