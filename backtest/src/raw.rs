//! Raw frames beside the catalog: what a venue sent, byte for byte, one frame a line as
//! `<recv_ns> <frame>` (the hftbacktest collector format `argus feeds check` and
//! `argus data import --format raw` read), gzip-compressed, one file per venue and hour or day:
//!
//! ```text
//! <root>/raw/venue=<venue>/date=<YYYY-MM-DD>/frames-<HH>-<NNNNNN>.log.gz
//! ```
//!
//! Like catalog parts, a file is written under a hidden `.tmp` name and renamed into place when
//! it is closed (rotation or [`RawWriter::finish`]), so a reader never sees a half-written one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::catalog::{date, fresh_part, io, safe, Rotation};
use crate::BacktestError;

struct OpenFile {
    period: u64,
    tmp: PathBuf,
    path: PathBuf,
    gz: GzEncoder<BufWriter<File>>,
    frames: u64,
}

/// A closed file of frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFileWritten {
    pub path: PathBuf,
    pub frames: u64,
}

/// Appends frames of one venue; call [`RawWriter::finish`] to close the open file.
pub struct RawWriter {
    dir: PathBuf,
    rotation: Rotation,
    open: Option<OpenFile>,
    seq: u64,
    written: Vec<RawFileWritten>,
}

impl std::fmt::Debug for RawWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWriter").field("dir", &self.dir).field("written", &self.written.len()).finish()
    }
}

impl RawWriter {
    /// Frames of `venue` under `<root>/raw/venue=<venue>/`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(root: &Path, venue: &str, rotation: Rotation) -> Result<Self, BacktestError> {
        let dir = root.join("raw").join(format!("venue={}", safe(venue)));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(Self { dir, rotation, open: None, seq: 0, written: Vec::new() })
    }

    /// Appends one frame received at `recv_ns`. Line breaks inside the frame (a pretty-printed
    /// REST body) become spaces: JSON strings cannot hold raw ones, so the JSON is unchanged.
    ///
    /// # Errors
    /// I/O failures; the frame is then not written (the caller counts it).
    pub fn write(&mut self, recv_ns: u64, frame: &str) -> Result<(), BacktestError> {
        let period = self.rotation.period(recv_ns);
        if self.open.as_ref().is_some_and(|f| f.period != period) {
            self.close_open()?;
        }
        if self.open.is_none() {
            self.open = Some(self.open_file(recv_ns, period)?);
        }
        let Some(file) = self.open.as_mut() else { return Ok(()) };
        let line_break = |c: char| c == '\n' || c == '\r';
        let written = if frame.contains(line_break) {
            writeln!(file.gz, "{recv_ns} {}", frame.replace(line_break, " "))
        } else {
            writeln!(file.gz, "{recv_ns} {frame}")
        };
        written.map_err(io(&file.tmp))?;
        file.frames += 1;
        Ok(())
    }

    fn open_file(&mut self, recv_ns: u64, period: u64) -> Result<OpenFile, BacktestError> {
        let day = i64::try_from(recv_ns / 86_400_000_000_000).unwrap_or(0);
        let hour = (recv_ns / 3_600_000_000_000) % 24;
        let dir = self.dir.join(format!("date={}", date(day)));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (path, tmp) = fresh_part(&dir, &mut self.seq, |seq| format!("frames-{hour:02}-{seq:06}.log.gz"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let gz = GzEncoder::new(BufWriter::with_capacity(1 << 16, file), Compression::new(6));
        Ok(OpenFile { period, tmp, path, gz, frames: 0 })
    }

    fn close_open(&mut self) -> Result<(), BacktestError> {
        let Some(f) = self.open.take() else { return Ok(()) };
        let file = f.gz.finish().and_then(|w| w.into_inner().map_err(std::io::IntoInnerError::into_error));
        file.and_then(|file| file.sync_all()).map_err(io(&f.tmp))?;
        std::fs::rename(&f.tmp, &f.path).map_err(io(&f.path))?;
        self.written.push(RawFileWritten { path: f.path, frames: f.frames });
        Ok(())
    }

    /// Closes the open file (renamed into place) and returns every file written.
    ///
    /// # Errors
    /// When the open file cannot be completed; the files closed before it are on disk.
    pub fn finish(mut self) -> Result<Vec<RawFileWritten>, BacktestError> {
        self.close_open()?;
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Read;

    const HOUR: u64 = 3_600_000_000_000;

    #[test]
    fn frames_rotate_by_hour_into_gzip_files_renamed_into_place() {
        let root = std::env::temp_dir().join(format!("argus-raw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let t0 = 1_723_161_253_937_085_768_u64; // 2024-08-08 23:54 UTC
        let mut w = RawWriter::new(&root, "binance_spot", Rotation::Hour).unwrap();
        w.write(t0, r#"{"a":1}"#).unwrap();
        w.write(t0 + 1, "{\n  \"lastUpdateId\": 7\n}").unwrap();
        w.write(t0 + HOUR, r#"{"a":2}"#).unwrap();
        let venue = root.join("raw/venue=binance_spot");
        let names = |d: &str| -> Vec<String> {
            std::fs::read_dir(venue.join(d)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
        };
        assert_eq!(names("date=2024-08-08"), ["frames-23-000001.log.gz"], "the first hour's file closed");
        assert_eq!(names("date=2024-08-09"), [".frames-00-000002.log.gz.tmp"], "the next one still hidden");
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files.iter().map(|f| f.frames).collect::<Vec<_>>(), [2, 1]);
        assert!(files[0].path.ends_with("raw/venue=binance_spot/date=2024-08-08/frames-23-000001.log.gz"));
        assert!(files[1].path.ends_with("date=2024-08-09/frames-00-000002.log.gz"));
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&files[0].path).unwrap()).read_to_string(&mut text).unwrap();
        assert_eq!(text, format!("{t0} {{\"a\":1}}\n{} {{   \"lastUpdateId\": 7 }}\n", t0 + 1));
        assert_eq!(names("date=2024-08-09"), ["frames-00-000002.log.gz"], "renamed into place");
        // A second writer into the same root never overwrites.
        let mut again = RawWriter::new(&root, "binance_spot", Rotation::Hour).unwrap();
        again.write(t0, "{}").unwrap();
        let more = again.finish().unwrap();
        assert!(more[0].path.ends_with("date=2024-08-08/frames-23-000002.log.gz"), "{:?}", more[0].path);
        let _ = std::fs::remove_dir_all(&root);
    }
}
