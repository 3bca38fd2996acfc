//! Raw venue captures in the formats found in the wild, merged by receive time.
//!
//! One record a line, any of:
//! - a bare JSON frame (`{...}` or `[...]`), with no timestamp: kept in file order;
//! - `<recv_ns> <frame>`: hftbacktest's collector (REST snapshots inline, recognised by content);
//! - cryptofeed logs: a `<url> <-> <connect_ts>` header (skipped), `<url> <- <ts>: <sent>` (our
//!   own subscription messages, skipped), `<ts_seconds>: <frame>`, and REST bodies
//!   `<url> -> <ts_seconds>: <body>` (usually in a second file, merged by time).
//!
//! gzip input is recognised by its magic bytes. Lines that fit none of these are reported with
//! their file and line number, never dropped silently.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::recording::MAX_FRAME_BYTES;
use crate::FeedError;

/// Where a record came from on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    /// A websocket frame (or an inline snapshot, which only its content tells apart).
    Ws,
    /// A REST response body for `url`.
    Rest { url: String },
}

/// One record of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Local receive time in nanoseconds; 0 when the format has none.
    pub ts_ns: u64,
    pub kind: RawKind,
    pub body: String,
    /// Index of the input file, and 1-based line in it.
    pub input: usize,
    pub line: u64,
}

/// A line that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct RawError {
    pub path: String,
    pub line: u64,
    pub reason: String,
}

/// Reads one capture file.
pub struct RawReader {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    input: usize,
    line: u64,
    buf: String,
}

impl std::fmt::Debug for RawReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReader").field("path", &self.path).field("line", &self.line).finish()
    }
}

impl RawReader {
    /// Opens a plain or gzip file.
    ///
    /// # Errors
    /// When the file cannot be opened or read.
    pub fn open(path: &Path, input: usize) -> Result<Self, FeedError> {
        let mut file = BufReader::new(File::open(path).map_err(|source| FeedError::open(path, source))?);
        let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read + Send> = if gz { Box::new(MultiGzDecoder::new(file)) } else { Box::new(file) };
        Ok(Self {
            reader: Box::new(BufReader::with_capacity(1 << 16, reader)),
            path: path.to_path_buf(),
            input,
            line: 0,
            buf: String::new(),
        })
    }

    fn error(&self, reason: impl Into<String>) -> RawError {
        RawError { path: self.path.display().to_string(), line: self.line, reason: reason.into() }
    }
}

impl Iterator for RawReader {
    type Item = Result<RawRecord, RawError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            let n = match self.reader.as_mut().take(MAX_FRAME_BYTES as u64 + 1).read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    self.line += 1;
                    // An unreadable rest of file (bad gzip, bad UTF-8) ends the input.
                    let err = self.error(format!("unreadable: {e}"));
                    self.reader = Box::new(std::io::empty());
                    return Some(Err(err));
                }
            };
            if n == 0 {
                return None;
            }
            self.line += 1;
            if n > MAX_FRAME_BYTES {
                let err = self.error(format!("line longer than {MAX_FRAME_BYTES} bytes"));
                // Skip the rest of the oversized line.
                let mut sink = Vec::new();
                let _ = self.reader.read_until(b'\n', &mut sink);
                return Some(Err(err));
            }
            let text = self.buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            match parse_line(text) {
                Ok(Some((ts_ns, kind, body))) => {
                    return Some(Ok(RawRecord {
                        ts_ns,
                        kind,
                        body: body.to_owned(),
                        input: self.input,
                        line: self.line,
                    }))
                }
                Ok(None) => continue,
                Err(reason) => return Some(Err(self.error(reason))),
            }
        }
    }
}

type Parsed<'a> = Option<(u64, RawKind, &'a str)>;

/// Classifies one line; `None` for lines that carry no venue data (headers, our own sends).
fn parse_line(line: &str) -> Result<Parsed<'_>, String> {
    if line.starts_with('{') || line.starts_with('[') {
        return Ok(Some((0, RawKind::Ws, line)));
    }
    let (head, rest) = line.split_once(' ').ok_or("no frame on the line")?;
    if !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()) {
        let ts = head.parse::<u64>().map_err(|e| format!("bad timestamp `{head}`: {e}"))?;
        return Ok(Some((ts, RawKind::Ws, rest)));
    }
    if head.contains("://") {
        let (arrow, rest) = rest.split_once(' ').ok_or("truncated cryptofeed line")?;
        return match arrow {
            "<->" | "<-" => Ok(None),
            "->" => {
                let (ts, body) = rest.split_once(": ").ok_or("REST line without `<ts>: <body>`")?;
                Ok(Some((seconds_to_ns(ts)?, RawKind::Rest { url: head.to_owned() }, body)))
            }
            other => Err(format!("unknown cryptofeed direction `{other}`")),
        };
    }
    if let Some(ts) = head.strip_suffix(':') {
        return Ok(Some((seconds_to_ns(ts)?, RawKind::Ws, rest)));
    }
    Err(format!("unrecognised line starting `{}`", head.chars().take(40).collect::<String>()))
}

/// `1633998512.0633569` -> nanoseconds, exactly (no float).
fn seconds_to_ns(s: &str) -> Result<u64, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let bad = || format!("bad timestamp `{s}`");
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = int.parse().map_err(|_| bad())?;
    let mut nanos = 0_u64;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u64::from(b - b'0') * 10_u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000).and_then(|v| v.checked_add(nanos)).ok_or_else(bad)
}

/// Several captures merged by receive time; ties keep input order, then line order.
#[derive(Debug)]
pub struct MergedInputs {
    readers: Vec<RawReader>,
    heads: Vec<Option<RawRecord>>,
    errors: Vec<RawError>,
}

impl MergedInputs {
    /// # Errors
    /// When a file cannot be opened.
    pub fn open(paths: &[PathBuf]) -> Result<Self, FeedError> {
        let readers = paths.iter().enumerate().map(|(i, p)| RawReader::open(p, i)).collect::<Result<Vec<_>, _>>()?;
        let mut m = Self { heads: vec![None; readers.len()], readers, errors: Vec::new() };
        for i in 0..m.readers.len() {
            m.refill(i);
        }
        Ok(m)
    }

    fn refill(&mut self, i: usize) {
        self.heads[i] = loop {
            match self.readers[i].next() {
                Some(Ok(r)) => break Some(r),
                Some(Err(e)) => self.errors.push(e),
                None => break None,
            }
        };
    }

    /// Lines that were not records, so far.
    pub fn take_errors(&mut self) -> Vec<RawError> {
        std::mem::take(&mut self.errors)
    }
}

impl Iterator for MergedInputs {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        let i = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|r| (r.ts_ns, i)))
            .min()
            .map(|(_, i)| i)?;
        let r = self.heads[i].take();
        self.refill(i);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_format_is_recognised() {
        let ws = r#"{"e":"trade"}"#;
        assert_eq!(parse_line(ws), Ok(Some((0, RawKind::Ws, ws))));
        assert_eq!(
            parse_line(&format!("1723161256123456789 {ws}")),
            Ok(Some((1_723_161_256_123_456_789, RawKind::Ws, ws)))
        );
        assert_eq!(
            parse_line(&format!("1633998512.0633569: {ws}")),
            Ok(Some((1_633_998_512_063_356_900, RawKind::Ws, ws)))
        );
        assert_eq!(parse_line("wss://stream.binance.com:9443/stream?streams=a <-> 1633998511.159679"), Ok(None));
        assert_eq!(parse_line(r#"wss://ws.kraken.com <- 1633998511.2: {"event":"subscribe"}"#), Ok(None));
        assert_eq!(
            parse_line(
                r#"https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000 -> 1633998512.320639: {"a":1}"#
            ),
            Ok(Some((
                1_633_998_512_320_639_000,
                RawKind::Rest { url: "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000".into() },
                r#"{"a":1}"#
            )))
        );
        for bad in ["hello world", "12x {}", "1.2.3: {}", "wss://x ?? 1: {}", "nospace"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inputs_merge_by_time_and_report_bad_lines() {
        let dir = std::env::temp_dir().join(format!("argus-rawlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("ws.log");
        let b = dir.join("http.log");
        std::fs::write(&a, "wss://x <-> 1.0\n1.5: {\"n\":1}\ngarbage here\n3.0: {\"n\":3}\n").unwrap();
        std::fs::write(&b, "https://x/depth -> 2.0: {\"n\":2}\n").unwrap();
        let mut m = MergedInputs::open(&[a, b]).unwrap();
        let got: Vec<(u64, String)> = m.by_ref().map(|r| (r.ts_ns, r.body)).collect();
        assert_eq!(
            got,
            [
                (1_500_000_000, "{\"n\":1}".to_owned()),
                (2_000_000_000, "{\"n\":2}".to_owned()),
                (3_000_000_000, "{\"n\":3}".to_owned())
            ]
        );
        let errs = m.take_errors();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3);
    }
}
