//! Recorded venue traffic: one frame a line, prefixed by the local receive time in nanoseconds
//! (`<recv_ns> <frame>`), optionally gzip-compressed (the hftbacktest collector format).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::FeedError;

/// Bytes a single recorded frame may have; longer lines are an error, not an allocation bomb.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// A frame read from a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    /// Local receive time of the original capture.
    pub ts_recv_ns: u64,
    pub frame: String,
    /// 1-based line number.
    pub line: u64,
}

impl RecordedFrame {
    /// A REST depth snapshot (recorded inline by the collector) rather than a websocket frame.
    pub fn is_snapshot(&self) -> bool {
        self.frame.starts_with("{\"lastUpdateId\"")
    }
}

/// Streams frames from a recording file.
pub struct RecordingReader {
    reader: Box<dyn BufRead + Send>,
    line: u64,
    buf: String,
}

impl std::fmt::Debug for RecordingReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingReader").field("line", &self.line).finish()
    }
}

impl RecordingReader {
    /// Opens a `.gz` or plain recording.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, FeedError> {
        let file = File::open(path).map_err(|source| FeedError::open(path, source))?;
        let reader: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        Ok(Self::from_reader(Box::new(BufReader::with_capacity(1 << 16, reader))))
    }

    pub fn from_reader(reader: Box<dyn BufRead + Send>) -> Self {
        Self { reader, line: 0, buf: String::new() }
    }

    /// Reads every frame into memory.
    ///
    /// # Errors
    /// The first malformed line.
    pub fn read_all(path: &Path) -> Result<Vec<RecordedFrame>, FeedError> {
        Self::open(path)?.collect()
    }
}

impl Iterator for RecordingReader {
    type Item = Result<RecordedFrame, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            let n = match self.reader.as_mut().take(MAX_FRAME_BYTES as u64 + 1).read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) => return Some(Err(FeedError::Recording { line: self.line + 1, reason: e.to_string() })),
            };
            if n == 0 {
                return None;
            }
            self.line += 1;
            if n > MAX_FRAME_BYTES {
                return Some(Err(FeedError::Recording { line: self.line, reason: "line too long".into() }));
            }
            let line = self.buf.trim_end();
            if line.is_empty() {
                continue;
            }
            let Some((ts, frame)) = line.split_once(' ') else {
                return Some(Err(FeedError::Recording {
                    line: self.line,
                    reason: "expected `<recv_ns> <frame>`".into(),
                }));
            };
            let Ok(ts_recv_ns) = ts.parse::<u64>() else {
                return Some(Err(FeedError::Recording { line: self.line, reason: format!("bad timestamp `{ts}`") }));
            };
            return Some(Ok(RecordedFrame { ts_recv_ns, frame: frame.to_owned(), line: self.line }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_reports_bad_ones() {
        let text = "1 {\"a\":1}\n\n2 {\"lastUpdateId\":5}\nbad\nx {}\n";
        let r = RecordingReader::from_reader(Box::new(std::io::Cursor::new(text)));
        let got: Vec<_> = r.collect();
        assert_eq!(got.len(), 4);
        let first = got[0].as_ref().unwrap();
        assert_eq!((first.ts_recv_ns, first.frame.as_str(), first.line), (1, "{\"a\":1}", 1));
        assert!(got[1].as_ref().unwrap().is_snapshot());
        assert!(matches!(got[2], Err(FeedError::Recording { line: 4, .. })));
        assert!(matches!(got[3], Err(FeedError::Recording { line: 5, .. })));
    }
}
