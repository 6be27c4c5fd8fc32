//! Reading one log: decompression detected from the bytes, format detection, the line
//! loop with its limits, and aggregation. Synchronous and streaming: memory is bounded by
//! the read buffers, the line limit and the object's datums (`Caps`); decompressed bytes
//! are bounded too, in all and in ratio to the compressed ones (a decompression bomb).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Serialize;
use shared::metrics::Datum;

use crate::aggregate::{Aggregator, Series};
use crate::config::Caps;
use crate::formats::{self, Format, LineParser, Parsed, Record};
use crate::lines::{Line, Lines};
use crate::routes::Routes;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// How often (in lines) the cancellation flag is looked at.
const CANCEL_CHECK_LINES: u64 = 4096;

/// How to read one log.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions<'a> {
    /// The object's key or file name: a format hint, and CloudFront's distribution id.
    pub key: &'a str,
    /// A format to use instead of detecting one.
    pub format: Option<Format>,
    pub max_line_bytes: usize,
    /// VPC flow logs: aggregate per `InterfaceId` too.
    pub vpc_interface_dimension: bool,
    /// Set by another thread to stop reading (the invocation's deadline is near).
    pub cancel: Option<&'a AtomicBool>,
}

/// What one log yields.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub format: Option<Format>,
    /// Entries parsed and counted.
    pub records: u64,
    /// Lines or records that could not be parsed (counted, never fatal): broken fields,
    /// lines over the limit, invalid UTF-8, NUL bytes.
    pub malformed: u64,
    /// Valid lines that are not counted: other entry types, headers, blank lines.
    pub skipped: u64,
    /// `skipped` and `malformed` by reason: every line is accounted for, and says why.
    pub skipped_reasons: BTreeMap<&'static str, u64>,
    pub malformed_reasons: BTreeMap<&'static str, u64>,
    /// Records counted under `other` or in fewer series than their own, and objects whose
    /// reading stopped at a limit (`Caps`), by reason (a record may have several).
    pub capped: u64,
    pub capped_reasons: BTreeMap<&'static str, u64>,
    /// What was counted, per minute and dimension set: what `METRICS_MODE=emf` writes.
    #[serde(skip)]
    pub series: Vec<Series>,
    /// `series` as the datums PutMetricData takes (and `logs summarize --json` prints).
    pub metrics: Vec<Datum>,
}

/// Why an object's reading stopped early, counted in `capped_reasons`: what was read
/// before is counted, the rest is not read.
pub const STOPPED_BYTES: &str = "object stopped at MAX_OBJECT_BYTES decompressed";
pub const STOPPED_RATIO: &str = "object stopped at MAX_DECOMPRESSION_RATIO (a decompression bomb)";

/// Decompressed bytes read before the ratio is judged: small objects of repeated lines
/// compress far better than logs, and cost little whatever their ratio.
const RATIO_AFTER_BYTES: u64 = 64 << 20;
/// How often (in bytes) the limits are looked at.
const LIMIT_CHECK_BYTES: u64 = 1 << 20;

/// The error a [`Limited`] read ends with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Stop(&'static str);

/// The stop reason in an I/O error, if a limit ended the read.
fn stop_reason(error: &io::Error) -> Option<&'static str> {
    error.get_ref().and_then(|e| e.downcast_ref::<Stop>()).map(|stop| stop.0)
}

/// Decompressed text, read up to `MAX_OBJECT_BYTES` and, compressed, to
/// `MAX_DECOMPRESSION_RATIO` times what was consumed of the source.
struct Limited<'a, R> {
    inner: R,
    read: u64,
    next_check: u64,
    caps: Caps,
    /// The compressed bytes consumed, when the source is compressed.
    compressed: Option<&'a AtomicU64>,
}

impl<'a, R> Limited<'a, R> {
    fn new(inner: R, caps: Caps, compressed: Option<&'a AtomicU64>) -> Self {
        Self { inner, read: 0, next_check: LIMIT_CHECK_BYTES.min(caps.object_bytes), caps, compressed }
    }

    fn check(&mut self) -> io::Result<()> {
        let stop = |why| Err(io::Error::new(io::ErrorKind::InvalidData, Stop(why)));
        if self.read > self.caps.object_bytes {
            return stop(STOPPED_BYTES);
        }
        if let Some(compressed) = self.compressed
            && self.read > RATIO_AFTER_BYTES
            && self.read / compressed.load(Ordering::Relaxed).max(1) > self.caps.decompression_ratio
        {
            return stop(STOPPED_RATIO);
        }
        // One past the byte limit, so that reading over it is seen.
        self.next_check = (self.read + LIMIT_CHECK_BYTES).min(self.caps.object_bytes.saturating_add(1));
        Ok(())
    }
}

impl<R: Read> Read for Limited<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.next_check {
            self.check()?;
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Limited<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.read >= self.next_check {
            self.check()?;
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.read += amount as u64;
        self.inner.consume(amount);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "reading failed after line {line} ({records} records read, {compressed_offset} bytes of input consumed)"
    )]
    Io { line: u64, records: u64, compressed_offset: u64, source: io::Error },
    #[error(
        "the log format could not be detected from the key or the first line; name it (--format, LOG_FORMATS)"
    )]
    UnknownFormat,
    #[error("invalid CloudTrail JSON after {records} records")]
    Json { records: u64, source: formats::cloudtrail::Error },
    #[error("stopped after line {line}: the invocation's deadline is near")]
    Cancelled { line: u64 },
}

impl ReadError {
    /// Whether reading again could succeed (a broken connection, not a broken object).
    pub fn retryable(&self) -> bool {
        match self {
            ReadError::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
            ),
            ReadError::Cancelled { .. } => true,
            ReadError::UnknownFormat | ReadError::Json { .. } => false,
        }
    }
}

/// Counts the bytes read from the (compressed) source, to say where a failure happened.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Decompressed text from a thread of its own, in chunks over a bounded channel: with two
/// cores, decompression and parsing overlap, and memory stays at `PIPE_CHUNKS` chunks.
struct Pipe {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spare: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
}

const PIPE_CHUNK_BYTES: usize = 256 * 1024;
const PIPE_CHUNKS: usize = 4;

impl Pipe {
    fn spawn<'scope, R: Read + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        mut source: R,
    ) -> Pipe {
        let (chunk_tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(PIPE_CHUNKS);
        let (spare, spare_rx) = sync_channel::<Vec<u8>>(PIPE_CHUNKS + 2);
        scope.spawn(move || {
            loop {
                let mut chunk = spare_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(PIPE_CHUNK_BYTES));
                chunk.resize(PIPE_CHUNK_BYTES, 0);
                let mut filled = 0;
                let result = loop {
                    match source.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(filled);
                let end = filled < PIPE_CHUNK_BYTES;
                // A send fails when the reader stopped early (an error, the deadline): stop too.
                if filled > 0 && chunk_tx.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Err(e) = result {
                    let _ = chunk_tx.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            }
        });
        Pipe { chunks, spare, current: Vec::new(), position: 0 }
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pipe {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let used = std::mem::replace(&mut self.current, chunk);
                    let _ = self.spare.try_send(used);
                    self.position = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(&[]), // the decompressor is done
            }
        }
        Ok(&self.current[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.current.len());
    }
}

/// Every frame of a zstd stream (concatenated frames are one stream, as with gzip).
struct ZstdFrames<R: BufRead> {
    decoder: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> io::Result<Self> {
        let decoder = ruzstd::decoding::StreamingDecoder::new(source).map_err(io::Error::other)?;
        Ok(Self { decoder: Some(decoder) })
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else { return Ok(0) };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut source = self.decoder.take().expect("decoder").into_inner();
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.decoder = Some(
                ruzstd::decoding::StreamingDecoder::new(source)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            );
        }
    }
}

/// Reads a whole log (gzip, zstd or plain, detected from its first bytes) and aggregates it.
pub fn summarize(reader: impl Read + Send, options: &ReadOptions<'_>) -> Result<Summary, ReadError> {
    let mut summarizer = Summarizer::default();
    summarizer.read(reader, options)?;
    Ok(summarizer.finish())
}

fn io_error(consumed: &AtomicU64, line: u64, records: u64, source: io::Error) -> ReadError {
    ReadError::Io { line, records, compressed_offset: consumed.load(Ordering::Relaxed), source }
}

/// Receives every parsed record as well (the normalized output, `OUTPUT_URI`).
pub trait RecordSink: Send {
    fn record(&mut self, format: Format, record: &Record<'_>);

    /// Ends the output; `false` if it failed.
    fn finish(self: Box<Self>) -> bool;
}

/// Aggregates several logs into one summary (`autoscaler logs summarize FILE...`).
#[derive(Default)]
pub struct Summarizer {
    aggregator: Aggregator,
    summary: Summary,
    /// Whether logs of more than one format were read (the summary then names none).
    mixed: bool,
    /// The format of the log being read.
    current: Option<Format>,
    sink: Option<Box<dyn RecordSink>>,
    /// `ROUTES`; empty without.
    routes: Routes,
    /// Applied to each log read.
    caps: Caps,
}

impl Summarizer {
    /// Adds per-route metrics (`ROUTES`) for the formats that log request paths.
    pub fn set_routes(&mut self, routes: Routes) {
        self.routes = routes;
    }

    /// Limits each log read to `caps` (the defaults otherwise).
    pub fn set_caps(&mut self, caps: Caps) {
        self.caps = caps;
    }

    /// Records also go to `sink`; [`Summarizer::take_sink`] gives it back.
    pub fn with_sink(sink: Box<dyn RecordSink>) -> Self {
        Self { sink: Some(sink), ..Self::default() }
    }

    pub fn take_sink(&mut self) -> Option<Box<dyn RecordSink>> {
        self.sink.take()
    }

    pub fn finish(mut self) -> Summary {
        if self.mixed {
            self.summary.format = None;
        }
        self.summary.series = self.aggregator.series();
        self.summary.metrics = self.summary.series.iter().flat_map(Series::datums).collect();
        let (capped, reasons) = self.aggregator.capped();
        self.summary.capped = self.summary.capped.saturating_add(capped);
        for (reason, n) in reasons {
            *self.summary.capped_reasons.entry(reason).or_default() += n;
        }
        self.summary
    }

    /// A limit stopped the read: counted, and what was read before stays counted.
    fn stopped(&mut self, why: &'static str) {
        tracing::debug!(why, "reading stopped");
        self.summary.capped = self.summary.capped.saturating_add(1);
        *self.summary.capped_reasons.entry(why).or_default() += 1;
    }

    /// Reads one log into the totals. On error, what was read before it stays counted.
    pub fn read(&mut self, reader: impl Read + Send, options: &ReadOptions<'_>) -> Result<(), ReadError> {
        let consumed = Arc::new(AtomicU64::new(0));
        let mut buffered =
            BufReader::with_capacity(READ_BUFFER_BYTES, Counting { inner: reader, count: consumed.clone() });
        let head = buffered.fill_buf().map_err(|source| io_error(&consumed, 0, 0, source))?;
        let (gzip, zstd) = (head.starts_with(&GZIP_MAGIC), head.starts_with(&ZSTD_MAGIC));
        self.aggregator.start_object(self.caps);
        std::thread::scope(|scope| {
            let text: Box<dyn BufRead> = if gzip {
                // Multi-member: concatenated gzip files are one valid stream.
                Box::new(Pipe::spawn(scope, flate2::bufread::MultiGzDecoder::new(buffered)))
            } else if zstd {
                let frames = ZstdFrames::new(buffered).map_err(|e| io_error(&consumed, 0, 0, e))?;
                Box::new(Pipe::spawn(scope, frames))
            } else {
                Box::new(buffered)
            };
            self.read_text(text, options, &consumed, gzip || zstd)
        })
    }

    fn read_text(
        &mut self,
        text: Box<dyn BufRead + '_>,
        options: &ReadOptions<'_>,
        consumed: &AtomicU64,
        compressed: bool,
    ) -> Result<(), ReadError> {
        let mut text = Limited::new(text, self.caps, compressed.then_some(consumed));
        let io_error = |line, records, source| io_error(consumed, line, records, source);
        let head = text.fill_buf().map_err(|e| io_error(0, 0, e))?;
        let format = if head.is_empty() {
            // An empty object: nothing to count, whatever its format.
            match options.format.or_else(|| formats::format_from_key(options.key)) {
                Some(format) => format,
                None => return Ok(()),
            }
        } else {
            options
                .format
                .or_else(|| formats::format_from_content(head))
                .or_else(|| formats::format_from_key(options.key))
                .ok_or(ReadError::UnknownFormat)?
        };
        match self.summary.format {
            Some(seen) if seen != format => self.mixed = true,
            _ => self.summary.format = Some(format),
        }
        self.current = Some(format);
        self.aggregator.set_object_dimensions(&format.object_dimensions(options.key));

        let Some(mut parser) = LineParser::new(format, options.key, options.vpc_interface_dimension) else {
            // CloudTrail: one JSON document.
            let records_before = self.summary.records;
            let result =
                formats::cloudtrail::read(text, options.max_line_bytes, &mut |parsed| self.count(parsed));
            let records = self.summary.records - records_before;
            return match result {
                Ok(()) => Ok(()),
                Err(formats::cloudtrail::Error::Io(source)) => match stop_reason(&source) {
                    Some(why) => {
                        self.stopped(why);
                        Ok(())
                    }
                    None => Err(io_error(0, records, source)),
                },
                Err(source) => Err(ReadError::Json { records, source }),
            };
        };

        let mut lines = Lines::new(text, options.max_line_bytes);
        let (mut line_number, records_before) = (0, self.summary.records);
        loop {
            if line_number % CANCEL_CHECK_LINES == 0
                && options.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(ReadError::Cancelled { line: line_number });
            }
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(()),
                Err(source) => {
                    if let Some(why) = stop_reason(&source) {
                        self.stopped(why);
                        return Ok(());
                    }
                    return Err(io_error(line_number, self.summary.records - records_before, source));
                }
            };
            line_number += 1;
            let parsed = match line {
                Line::TooLong => Parsed::Malformed("line too long"),
                Line::Text(text) if text.iter().all(u8::is_ascii_whitespace) => Parsed::Skipped("blank line"),
                Line::Text(text) if memchr::memchr(0, text).is_some() => Parsed::Malformed("NUL byte"),
                Line::Text(text) if !text.is_ascii() && std::str::from_utf8(text).is_err() => {
                    Parsed::Malformed("invalid UTF-8")
                }
                Line::Text(text) => parser.parse(text),
            };
            if let Parsed::Malformed(why) = parsed {
                tracing::debug!(line = line_number, why, "malformed line");
            }
            self.count(parsed);
        }
    }

    fn count(&mut self, parsed: Parsed<'_>) {
        match parsed {
            Parsed::Record(record) => {
                self.summary.records += 1;
                let route = match record.request {
                    Some(request) if !self.routes.is_empty() => Some(self.routes.route(request)),
                    _ => None,
                };
                self.aggregator.add(&record, route);
                if let (Some(sink), Some(format)) = (self.sink.as_mut(), self.current) {
                    sink.record(format, &record);
                }
            }
            Parsed::Skipped(reason) => {
                self.summary.skipped += 1;
                *self.summary.skipped_reasons.entry(reason).or_default() += 1;
            }
            Parsed::Malformed(why) => {
                self.summary.malformed += 1;
                *self.summary.malformed_reasons.entry(why).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use shared::metrics::DatumValue;

    use super::*;
    use crate::aggregate;

    fn fixture(name: &str) -> Vec<u8> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/logs").join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn options(key: &str) -> ReadOptions<'_> {
        ReadOptions { key, max_line_bytes: 1024 * 1024, ..ReadOptions::default() }
    }

    /// `name{dim=value,...}` → value (a distribution's sample count).
    fn values(summary: &Summary) -> BTreeMap<String, f64> {
        summary
            .metrics
            .iter()
            .map(|d| {
                let dims: Vec<String> = d.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let value = match &d.value {
                    DatumValue::Single { value } => *value,
                    DatumValue::Distribution { counts, .. } => counts.iter().sum(),
                };
                (format!("{}@{}{{{}}}", d.name, d.timestamp % 3600 / 60, dims.join(",")), value)
            })
            .collect()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_format_from_its_fixture() {
        // (fixture, key, format, records, malformed, skipped, expected values)
        type Case<'a> = (&'a str, &'a str, Format, u64, u64, u64, &'a [(&'a str, f64)]);
        let cases: [Case; 8] = [
            (
                "alb.log",
                "alb.log",
                Format::Alb,
                7,
                1,
                0,
                &[
                    ("RequestCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 5.0),
                    ("RequestCount@1{LoadBalancer=app/shop-alb/50dc6c495c0c9188}", 2.0),
                ],
            ),
            (
                "elb.log",
                "x.log",
                Format::Elb,
                5,
                1,
                0,
                &[
                    ("RequestCount@0{LoadBalancerName=shop-classic}", 4.0),
                    ("HTTPCode_5XX_Count@0{LoadBalancerName=shop-classic}", 1.0),
                    ("Latency@0{LoadBalancerName=shop-classic}", 3.0),
                    ("HTTPCode_4XX_Count@1{LoadBalancerName=shop-classic}", 1.0),
                ],
            ),
            (
                "nlb.log",
                "x.log",
                Format::Nlb,
                2,
                0,
                0,
                &[
                    ("RequestCount@0{LoadBalancer=net/shop-nlb/c6e77e28c25b2234}", 2.0),
                    ("BytesSent@0{LoadBalancer=net/shop-nlb/c6e77e28c25b2234}", 4342.0),
                ],
            ),
            (
                "cloudfront.log",
                "cf/E2QWRUHAPOMQZL.2026-11-30-12.a1b2c3d4",
                Format::CloudFront,
                3,
                0,
                2,
                &[
                    ("RequestCount@0{DistributionId=E2QWRUHAPOMQZL}", 2.0),
                    ("HTTPCode_2XX_Count@0{DistributionId=E2QWRUHAPOMQZL}", 1.0),
                    ("Latency@0{DistributionId=E2QWRUHAPOMQZL}", 2.0),
                    ("HTTPCode_5XX_Count@1{DistributionId=E2QWRUHAPOMQZL}", 1.0),
                    ("BytesSent@1{DistributionId=E2QWRUHAPOMQZL}", 1045619.0),
                ],
            ),
            (
                "s3-access.log",
                "x",
                Format::S3,
                3,
                0,
                0,
                &[
                    ("RequestCount@0{BucketName=shop-assets}", 2.0),
                    ("HTTPCode_4XX_Count@0{BucketName=shop-assets}", 1.0),
                    ("BytesSent@0{BucketName=shop-assets}", 356.0),
                    ("BytesSent@1{BucketName=shop-assets}", 0.0),
                ],
            ),
            (
                "vpcflow.log",
                "x",
                Format::VpcFlow,
                3,
                0,
                2,
                &[
                    ("FlowCount@0{}", 2.0),
                    ("RejectedFlowCount@0{}", 1.0),
                    ("Bytes@0{}", 8498.0),
                    ("Packets@1{}", 3.0),
                ],
            ),
            (
                "cloudtrail.json",
                "x",
                Format::CloudTrail,
                3,
                1,
                0,
                &[
                    ("RequestCount@0{EventSource=s3.amazonaws.com}", 1.0),
                    ("ErrorCount@0{EventSource=ec2.amazonaws.com}", 1.0),
                    ("ErrorCount@1{EventSource=s3.amazonaws.com}", 0.0),
                ],
            ),
            (
                "app.jsonl",
                "x",
                Format::JsonLines,
                3,
                2,
                1,
                &[("RequestCount@0{}", 2.0), ("HTTPCode_5XX_Count@0{}", 1.0), ("BytesReceived@1{}", 2048.0)],
            ),
        ];
        for (name, key, format, records, malformed, skipped, expected) in cases {
            let summary = summarize(&fixture(name)[..], &options(key)).unwrap();
            assert_eq!(summary.format, Some(format), "{name}");
            assert_eq!(
                (summary.records, summary.malformed, summary.skipped),
                (records, malformed, skipped),
                "{name}"
            );
            let values = values(&summary);
            for (metric, value) in expected {
                assert_eq!(values.get(*metric), Some(value), "{name}: {metric} in {values:#?}");
            }
            // The same through gzip, found by its magic bytes.
            assert_eq!(summarize(&gzip(&fixture(name))[..], &options(key)).unwrap(), summary, "{name} gzip");
        }
    }

    #[test]
    fn header_only_and_empty_logs_yield_nothing() {
        let summary = summarize(&fixture("cloudfront-header-only.log")[..], &options("x")).unwrap();
        assert_eq!((summary.format, summary.records, summary.skipped), (Some(Format::CloudFront), 0, 2));
        assert!(summary.metrics.is_empty());
        let empty = summarize(&b""[..], &options("x")).unwrap();
        assert_eq!((empty.format, empty.records), (None, 0));
        let empty_gzip = summarize(&gzip(b"")[..], &options("AWSLogs/1/vpcflowlogs/x.log.gz")).unwrap();
        assert_eq!((empty_gzip.format, empty_gzip.records), (Some(Format::VpcFlow), 0));
    }

    #[test]
    fn multi_member_gzip_and_zstd_frames_are_read_whole() {
        let log = fixture("elb.log");
        let (first, second) = log.split_at(log.len() / 2);
        let mut members = gzip(first);
        members.extend(gzip(second));
        let plain = summarize(&log[..], &options("x")).unwrap();
        assert_eq!(summarize(&members[..], &options("x")).unwrap(), plain);
        let mut frames =
            ruzstd::encoding::compress_to_vec(first, ruzstd::encoding::CompressionLevel::Fastest);
        frames.extend(ruzstd::encoding::compress_to_vec(second, ruzstd::encoding::CompressionLevel::Fastest));
        assert_eq!(summarize(&frames[..], &options("x")).unwrap(), plain);
    }

    #[test]
    fn a_truncated_gzip_is_an_error_that_says_where() {
        let log = fixture("alb.log").repeat(200);
        let compressed = gzip(&log);
        let truncated = &compressed[..compressed.len() * 2 / 3];
        let error = summarize(truncated, &options("x")).unwrap_err();
        let ReadError::Io { line, records, compressed_offset, .. } = &error else { panic!("{error:?}") };
        assert!(*line > 0 && *records > 0, "{error}");
        assert_eq!(*compressed_offset, truncated.len() as u64, "{error}");
        assert!(!error.retryable(), "a broken object stays broken");
        let mut corrupt = compressed.clone();
        corrupt[20..40].fill(0xff);
        assert!(summarize(&corrupt[..], &options("x")).is_err());
    }

    #[test]
    fn bad_lines_are_counted_never_fatal() {
        let mut log = fixture("elb.log");
        log.extend_from_slice(b"2026-11-30T12:00:01Z shop\0classic\n");
        log.extend_from_slice(b"2026-11-30T12:00:01Z \xff\xfe invalid utf-8\n");
        log.extend_from_slice(&[b'x'; 300]);
        log.push(b'\n');
        let summary = summarize(&log[..], &ReadOptions { max_line_bytes: 250, ..options("x") }).unwrap();
        assert_eq!((summary.records, summary.malformed), (5, 4));
    }

    #[test]
    fn an_unknown_format_is_an_error_unless_named() {
        let log = b"hello world\n";
        assert!(matches!(summarize(&log[..], &options("x")), Err(ReadError::UnknownFormat)));
        let named = summarize(&log[..], &ReadOptions { format: Some(Format::Elb), ..options("x") }).unwrap();
        assert_eq!(named.malformed, 1);
    }

    #[test]
    fn a_cancelled_read_stops() {
        let cancel = AtomicBool::new(true);
        let error =
            summarize(&fixture("elb.log")[..], &ReadOptions { cancel: Some(&cancel), ..options("x") });
        assert!(matches!(error, Err(ReadError::Cancelled { line: 0 })));
    }

    #[test]
    fn routes_add_a_route_dimension_to_requests_of_alb_elb_and_cloudfront() {
        let routes = Routes::parse("/api/**=api, /=home", 20).unwrap();
        for (name, key, expected) in [
            (
                "alb.log",
                "x",
                &[
                    ("RequestCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188,Route=api}", 2.0),
                    ("HTTPCode_5XX_Count@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188,Route=api}", 2.0),
                    ("RequestCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188,Route=home}", 1.0),
                    // `/cart` and `/old` match no pattern.
                    ("RequestCount@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188,Route=other}", 2.0),
                    ("TargetResponseTime@0{LoadBalancer=app/shop-alb/50dc6c495c0c9188,Route=other}", 2.0),
                ][..],
            ),
            (
                "elb.log",
                "x",
                &[
                    ("RequestCount@0{LoadBalancerName=shop-classic,Route=home}", 3.0),
                    ("Latency@0{LoadBalancerName=shop-classic,Route=home}", 2.0),
                    // A TCP listener's entry has no path.
                    ("RequestCount@0{LoadBalancerName=shop-classic,Route=other}", 1.0),
                ],
            ),
            (
                "cloudfront.log",
                "cf/E2QWRUHAPOMQZL.2026-11-30-12.a1b2c3d4",
                &[
                    ("RequestCount@0{DistributionId=E2QWRUHAPOMQZL,Route=other}", 2.0),
                    ("Latency@1{DistributionId=E2QWRUHAPOMQZL,Route=other}", 1.0),
                ],
            ),
        ] {
            let mut summarizer = Summarizer::default();
            summarizer.set_routes(routes.clone());
            summarizer.read(&fixture(name)[..], &options(key)).unwrap();
            let with_routes = summarizer.finish();
            let values = values(&with_routes);
            for (metric, value) in expected {
                assert_eq!(values.get(*metric), Some(value), "{name}: {metric} in {values:#?}");
            }
            // Only request counts, status classes and latency per route; the rest unchanged.
            assert!(!values.keys().any(|k| k.contains("Route=") && k.starts_with("Bytes")), "{name}");
            let without = summarize(&fixture(name)[..], &options(key)).unwrap();
            let plain: Vec<_> =
                with_routes.metrics.iter().filter(|d| !d.dimensions.contains_key("Route")).collect();
            assert_eq!(plain, without.metrics.iter().collect::<Vec<_>>(), "{name}");
        }
        // Formats without paths get no Route dimension.
        let mut summarizer = Summarizer::default();
        summarizer.set_routes(routes);
        summarizer.read(&fixture("nlb.log")[..], &options("x")).unwrap();
        assert!(summarizer.finish().metrics.iter().all(|d| !d.dimensions.contains_key("Route")));
    }

    /// An ALB access line for load balancer `lb`, target group `tg`, at `minute` past
    /// 2026-11-30T12:00Z, with the target's time `target`.
    fn alb_line(lb: &str, tg: &str, minute: u32, target: &str) -> String {
        format!(
            "http 2026-11-30T{:02}:{:02}:01.100000Z {lb} 192.168.131.39:2817 10.0.0.1:80 0.001 {target} 0.000 200 200 134 1366 \"GET http://shop.example.com:80/ HTTP/1.1\" \"curl/8.5.0\" - - arn:aws:elasticloadbalancing:us-east-1:123456789012:{tg} \"Root=1-58337262-36d228ad5d99923122bbe354\"\n",
            12 + minute / 60 % 12,
            minute % 60
        )
    }

    fn read_with(caps: Caps, log: &[u8]) -> Summary {
        let mut summarizer = Summarizer::default();
        summarizer.set_caps(caps);
        summarizer.read(log, &options("x")).unwrap();
        summarizer.finish()
    }

    /// Per dimension name, the distinct values among the datums.
    fn distinct_values(summary: &Summary) -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut values: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for datum in &summary.metrics {
            for (name, value) in &datum.dimensions {
                values.entry(name.clone()).or_default().insert(value.clone());
            }
        }
        values
    }

    /// RequestCount summed over the series of the first dimension alone (or of none).
    fn first_level_requests(summary: &Summary) -> f64 {
        summary
            .metrics
            .iter()
            .filter(|d| d.name == "RequestCount" && d.dimensions.len() <= 1)
            .map(|d| match d.value {
                DatumValue::Single { value } => value,
                DatumValue::Distribution { .. } => unreachable!("a count"),
            })
            .sum()
    }

    /// The security review's cardinality bomb: every line its own load balancer and
    /// target group (320,000 datums from 20,000 lines before the caps).
    #[test]
    fn a_cardinality_bomb_keeps_200_values_per_dimension_and_counts_the_rest_under_other() {
        let log: String = (0..20_000)
            .map(|i| {
                alb_line(
                    &format!("app/lb-{i}/{i:016x}"),
                    &format!("targetgroup/tg-{i}/{i:016x}"),
                    i % 3,
                    "0.040",
                )
            })
            .collect();
        let summary = read_with(Caps::default(), log.as_bytes());
        assert_eq!(summary.records, 20_000);
        let values = distinct_values(&summary);
        assert_eq!(values["LoadBalancer"].len(), 201, "200 and other");
        assert_eq!(values["TargetGroup"].len(), 201, "200 and other");
        assert!(values["LoadBalancer"].contains(aggregate::OTHER));
        // Every record in a series, the rest under other: the totals stay right.
        assert_eq!(first_level_requests(&summary), 20_000.0);
        assert!(summary.metrics.len() <= Caps::default().datums, "{}", summary.metrics.len());
        assert_eq!(summary.capped, 20_000 - 200);
        assert_eq!(summary.capped_reasons, BTreeMap::from([(aggregate::CAPPED_VALUES, 20_000 - 200)]),);
    }

    /// Lines in as many minutes as there are lines: no cap on values helps; the datums'
    /// does, and the records left out of every series are counted.
    #[test]
    fn series_beyond_the_datum_cap_are_not_created_and_their_records_are_counted() {
        let log: String =
            (0..2_000).map(|i| alb_line("app/shop/1", "targetgroup/web/1", i, "0.040")).collect();
        let caps = Caps { datums: 1_000, ..Caps::default() };
        let summary = read_with(caps, log.as_bytes());
        assert_eq!(summary.records, 2_000);
        assert!(summary.metrics.len() <= 1_000, "{}", summary.metrics.len());
        let in_no_series = summary.capped_reasons[aggregate::CAPPED_NO_SERIES];
        assert!(in_no_series > 0);
        assert_eq!(first_level_requests(&summary) as u64 + in_no_series, summary.records);
        // Below the cap, nothing is capped.
        let small: String =
            (0..20).map(|i| alb_line("app/shop/1", "targetgroup/web/1", i, "0.040")).collect();
        let summary = read_with(caps, small.as_bytes());
        assert_eq!((summary.capped, first_level_requests(&summary)), (0, 20.0));
    }

    /// Times spread over 600 orders of magnitude take a datum per 150 samples per series:
    /// the datums a sample may add are charged to the object's.
    #[test]
    fn a_spread_of_times_is_charged_to_the_datums_and_what_is_left_out_counted() {
        let log: String = (0..600)
            .map(|i| alb_line("app/shop/1", "targetgroup/web/1", 0, &format!("1e{}", i - 300)))
            .collect();
        let unbounded = read_with(Caps::default(), log.as_bytes());
        assert!(unbounded.metrics.len() > 24, "{}", unbounded.metrics.len());
        assert_eq!(unbounded.capped, 0);
        // Two series of 9 datums, then each target time distribution grows.
        let caps = Caps { datums: 24, ..Caps::default() };
        let summary = read_with(caps, log.as_bytes());
        assert!(summary.metrics.len() <= 24, "{}", summary.metrics.len());
        assert!(summary.capped_reasons[aggregate::CAPPED_SAMPLE] > 0, "{:?}", summary.capped_reasons);
        assert_eq!(first_level_requests(&summary), 600.0, "requests counted whatever their time");
    }

    #[test]
    fn a_dimension_value_over_cloudwatchs_length_is_counted_under_other() {
        let log = alb_line(&format!("app/{}/1", "x".repeat(2_000)), "targetgroup/web/1", 0, "0.040");
        let summary = read_with(Caps::default(), log.as_bytes());
        assert_eq!(summary.capped_reasons, BTreeMap::from([(aggregate::CAPPED_LENGTH, 1)]));
        assert_eq!(distinct_values(&summary)["LoadBalancer"].iter().collect::<Vec<_>>(), [aggregate::OTHER]);
        assert_eq!(first_level_requests(&summary), 1.0);
    }

    /// A gzip bomb: a few real lines, then members of blank-ish megabytes that compress
    /// a thousandfold. Reading stops past 64 MiB; what was read is counted.
    #[test]
    fn a_decompression_bomb_stops_at_the_ratio_and_is_counted() {
        let lines = fixture("alb.log");
        let mut bomb = gzip(&lines);
        let mut spaces = vec![b' '; 1 << 20];
        for at in (0..spaces.len()).step_by(1 << 16) {
            spaces[at] = b'\n';
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&spaces).unwrap();
        let member = encoder.finish().unwrap();
        for _ in 0..80 {
            bomb.extend_from_slice(&member);
        }
        let summary = read_with(Caps::default(), &bomb);
        assert_eq!(summary.capped_reasons, BTreeMap::from([(STOPPED_RATIO, 1)]));
        assert_eq!(summary.records, 7, "the lines before the stop");
        // A ratio allowed, the whole object is read.
        let whole = read_with(Caps { decompression_ratio: 10_000, ..Caps::default() }, &bomb);
        assert_eq!((whole.capped, whole.records), (0, 7));
        assert_eq!(whole.skipped, 80 * 16 + 1, "blank lines, and the fixture's end");
    }

    #[test]
    fn an_object_over_the_byte_cap_stops_there_counted() {
        let log = fixture("alb.log").repeat(100);
        for input in [log.clone(), gzip(&log)] {
            let summary = read_with(Caps { object_bytes: 10_000, ..Caps::default() }, &input);
            assert_eq!(summary.capped_reasons, BTreeMap::from([(STOPPED_BYTES, 1)]));
            assert!(summary.records > 0 && summary.records < 700, "{}", summary.records);
        }
    }

    /// The review's CloudTrail case: one huge string (100 MB there). Never kept whole: the
    /// event is malformed, the others counted.
    #[test]
    fn a_cloudtrail_event_over_the_line_limit_is_malformed_and_the_rest_read() {
        let event =
            |source: &str| format!(r#"{{"eventTime": "2026-11-30T12:00:05Z", "eventSource": "{source}"}}"#);
        let doc = format!(
            r#"{{"Records": [{}, {}, {}]}}"#,
            event("s3.amazonaws.com"),
            event(&"x".repeat(3 << 20)),
            event("ec2.amazonaws.com")
        );
        let summary = summarize(&gzip(doc.as_bytes())[..], &options("x")).unwrap();
        assert_eq!((summary.records, summary.malformed), (2, 1));
        assert_eq!(summary.malformed_reasons, BTreeMap::from([("event over MAX_LINE_BYTES", 1)]));
    }

    #[test]
    fn several_logs_add_up() {
        let mut summarizer = Summarizer::default();
        summarizer.read(&fixture("elb.log")[..], &options("x")).unwrap();
        summarizer.read(&fixture("elb.log")[..], &options("x")).unwrap();
        let twice = summarizer.finish();
        assert_eq!(values(&twice)["RequestCount@0{LoadBalancerName=shop-classic}"], 8.0);
        let mut summarizer = Summarizer::default();
        summarizer.read(&fixture("elb.log")[..], &options("x")).unwrap();
        summarizer.read(&fixture("nlb.log")[..], &options("x")).unwrap();
        assert_eq!(summarizer.finish().format, None, "mixed formats");
    }
}
