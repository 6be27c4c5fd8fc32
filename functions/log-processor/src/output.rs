//! `OUTPUT_URI`: the parsed records, normalized, as gzip NDJSON in S3 at
//! `<prefix>/<format>/dt=YYYY-MM-DD/<file>-<id>.ndjson.gz` (the date of the object's first
//! record; the id from bucket, key and version, so a retry overwrites rather than adds).
//! Written while the object is read: a multipart upload of 8 MiB parts, at most two in
//! flight, so memory stays bounded whatever the object's size.

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use flate2::write::GzEncoder;
use serde_json::{Map, Value, json};
use shared::AwsError;
use shared::s3uri::S3Uri;
use tokio::sync::mpsc;

use crate::formats::{Format, Measure, Record};
use crate::read::RecordSink;

const PART_BYTES: usize = 8 * 1024 * 1024;

/// One normalized record.
pub fn normalized(format: Format, record: &Record<'_>) -> Value {
    let mut object = Map::new();
    object.insert("minute".into(), json!(record.minute));
    object.insert("format".into(), json!(format.name()));
    let dimensions: Map<String, Value> = record.dimensions[..record.dimension_count]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(String::from_utf8_lossy(value))))
        .collect();
    object.insert("dimensions".into(), Value::Object(dimensions));
    match record.measure {
        Measure::Request { status, latency, received, sent, .. } => {
            object.insert("status".into(), json!(status));
            object.insert("latency_seconds".into(), json!(latency));
            object.insert("bytes_received".into(), json!(received));
            object.insert("bytes_sent".into(), json!(sent));
        }
        Measure::Flow { packets, bytes, rejected } => {
            object.insert("packets".into(), json!(packets));
            object.insert("bytes".into(), json!(bytes));
            object.insert("rejected".into(), json!(rejected));
        }
        Measure::Event { error } => {
            object.insert("error".into(), json!(error));
        }
    }
    Value::Object(object)
}

/// `YYYY-MM-DD` of a Unix time.
pub fn date_of(unix: i64) -> String {
    let (year, month, day) = shared::time::civil_date(unix);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A part of the output, in order; the first names the key. `End` follows the last part
/// of a whole read: a stream that stops without it is aborted, never completed.
pub enum Part {
    First { key: String, bytes: Vec<u8> },
    Next(Vec<u8>),
    End,
}

/// The writing side, on the parsing thread: records → NDJSON → gzip → parts.
pub struct NdjsonSink {
    prefix: String,
    name: String,
    gzip: GzEncoder<PartWriter>,
    /// Records written (the key is chosen at the first).
    records: u64,
    failed: bool,
}

struct PartWriter {
    parts: mpsc::Sender<Part>,
    /// Set at the first record; sent with the first part.
    key: Option<String>,
    buffer: Vec<u8>,
    /// A part is sent once this many bytes are buffered: [`PART_BYTES`] but in tests.
    part_bytes: usize,
}

impl PartWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let bytes = std::mem::take(&mut self.buffer);
        let part = match self.key.take() {
            Some(key) => Part::First { key, bytes },
            None => Part::Next(bytes),
        };
        self.parts.blocking_send(part).map_err(|_| std::io::Error::other("the uploader stopped"))
    }
}

impl Write for PartWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= self.part_bytes {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl NdjsonSink {
    /// Parts go to `parts` (the uploader); `name` identifies the source object within the
    /// day's folder.
    pub fn new(output: &S3Uri, name: String, parts: mpsc::Sender<Part>) -> Self {
        Self::with_part_bytes(output, name, parts, PART_BYTES)
    }

    /// With parts of `part_bytes` (S3 takes no part below 5 MiB but the last).
    fn with_part_bytes(output: &S3Uri, name: String, parts: mpsc::Sender<Part>, part_bytes: usize) -> Self {
        let writer = PartWriter { parts, key: None, buffer: Vec::with_capacity(part_bytes), part_bytes };
        Self {
            prefix: output.key.trim_end_matches('/').to_owned(),
            name,
            gzip: GzEncoder::new(writer, flate2::Compression::fast()),
            records: 0,
            failed: false,
        }
    }
}

impl RecordSink for NdjsonSink {
    /// Ends the stream: sends the last part and the end mark (nothing at all without
    /// records). `false` if writing failed on the way (the uploader has the reason).
    fn finish(self: Box<Self>) -> bool {
        if self.failed {
            return false;
        }
        let records = self.records;
        match self.gzip.finish() {
            Ok(mut writer) if records > 0 => {
                writer.send().is_ok() && writer.parts.blocking_send(Part::End).is_ok()
            }
            Ok(_) => true,
            Err(_) => false,
        }
    }

    fn record(&mut self, format: Format, record: &Record<'_>) {
        if self.failed {
            return;
        }
        if self.records == 0 {
            self.gzip.get_mut().key = Some(format!(
                "{}/{}/dt={}/{}.ndjson.gz",
                self.prefix,
                format.name(),
                date_of(record.minute),
                self.name
            ));
        }
        self.records += 1;
        let mut line = normalized(format, record).to_string();
        line.push('\n');
        if self.gzip.write_all(line.as_bytes()).is_err() {
            self.failed = true;
        }
    }
}

/// The uploading side: a multipart upload of the parts as they come; completed when the
/// sender is dropped, aborted on failure. Returns the key written, if any.
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    mut parts: mpsc::Receiver<Part>,
) -> Result<Option<String>, AwsError> {
    // Nothing, or only the end mark: no records, no object.
    let Some(Part::First { key, bytes }) = parts.recv().await else { return Ok(None) };
    let created = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(&key)
        .content_type("application/x-ndjson")
        .content_encoding("gzip")
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("CreateMultipartUpload", e))?;
    let upload_id = created.upload_id().unwrap_or_default().to_owned();
    let result = async {
        let mut completed = Vec::new();
        let mut next = Some(bytes);
        while let Some(bytes) = next.take() {
            let number = completed.len() as i32 + 1;
            let output = s3
                .upload_part()
                .bucket(bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("UploadPart", e))?;
            completed.push(CompletedPart::builder().part_number(number).set_e_tag(output.e_tag).build());
            next = match parts.recv().await {
                Some(Part::Next(bytes) | Part::First { bytes, .. }) => Some(bytes),
                Some(Part::End) => None,
                None => {
                    let broke = "the stream of records ended before its end (the read failed)";
                    return Err(AwsError::other("UploadPart", broke.into()));
                }
            };
        }
        s3.complete_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("CompleteMultipartUpload", e))?;
        Ok(())
    }
    .await;
    if let Err(error) = result {
        // Dropping the receiver stops the writer; the incomplete upload is removed.
        drop(parts);
        let abort = s3.abort_multipart_upload().bucket(bucket).key(&key).upload_id(&upload_id).send().await;
        if let Err(abort_error) = abort {
            tracing::warn!(error = %AwsError::from_sdk("AbortMultipartUpload", abort_error), "could not abort the output upload; the bucket's lifecycle rule removes it");
        }
        return Err(error);
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_unix_times() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_796_040_000), "2026-11-30");
        assert_eq!(date_of(1_709_208_000), "2024-02-29");
    }

    #[test]
    fn records_are_normalized() {
        let record = Record::new(
            60,
            Measure::Request { http: true, status: Some(503), latency: None, received: Some(1), sent: 2 },
        )
        .with("LoadBalancer", b"app/x/1");
        let value = normalized(Format::Alb, &record);
        assert_eq!(
            value,
            json!({"minute": 60, "format": "alb", "dimensions": {"LoadBalancer": "app/x/1"}, "status": 503,
                   "latency_seconds": null, "bytes_received": 1, "bytes_sent": 2})
        );
    }

    #[test]
    fn the_sink_sends_gzip_ndjson_in_parts_named_by_the_first_record() {
        let (tx, mut rx) = mpsc::channel(1024);
        let mut sink = NdjsonSink::new(&"s3://out/normalized/".parse().unwrap(), "x-1".into(), tx);
        let record = Record::new(1_796_040_000, Measure::Event { error: false }).with("EventSource", b"s3");
        for _ in 0..3 {
            sink.record(Format::CloudTrail, &record);
        }
        assert!(Box::new(sink).finish());
        let Some(Part::First { key, bytes }) = rx.blocking_recv() else { panic!("no first part") };
        assert_eq!(key, "normalized/cloudtrail/dt=2026-11-30/x-1.ndjson.gz");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(matches!(rx.blocking_recv(), Some(Part::End)), "one part, then the end mark");
        assert!(rx.blocking_recv().is_none());
        let (tx, mut rx) = mpsc::channel(4);
        assert!(Box::new(NdjsonSink::new(&"s3://out/n".parse().unwrap(), "y".into(), tx)).finish());
        assert!(rx.blocking_recv().is_none(), "no records, no object");
    }

    #[test]
    fn a_sink_dropped_unfinished_sends_no_end_mark() {
        let (tx, mut rx) = mpsc::channel(1024);
        let mut sink = NdjsonSink::new(&"s3://out/n".parse().unwrap(), "z".into(), tx);
        sink.record(Format::CloudTrail, &Record::new(60, Measure::Event { error: false }));
        drop(sink);
        assert!(rx.blocking_recv().is_none(), "nothing sent: the uploader sees the stream end unmarked");
    }

    #[test]
    fn parts_are_8_mib() {
        // S3's minimum part is 5 MiB (but the last); 8 MiB parts keep two in flight small.
        assert_eq!(PART_BYTES, 8 * 1024 * 1024);
    }

    #[test]
    fn the_output_is_split_into_parts_of_the_part_size_but_the_last() {
        const PART: usize = 64 * 1024;
        let (tx, mut rx) = mpsc::channel(1024);
        let mut sink = NdjsonSink::with_part_bytes(&"s3://out/n".parse().unwrap(), "big".into(), tx, PART);
        // Values that do not compress (a xorshift sequence), so the gzip is about as large.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let records = 20_000;
        for _ in 0..records {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let value = format!("{x:016x}");
            sink.record(
                Format::CloudTrail,
                &Record::new(60, Measure::Event { error: false }).with("Id", value.as_bytes()),
            );
        }
        assert!(Box::new(sink).finish());
        let mut parts = Vec::new();
        loop {
            match rx.blocking_recv() {
                Some(Part::First { bytes, .. }) if parts.is_empty() => parts.push(bytes),
                Some(Part::Next(bytes)) if !parts.is_empty() => parts.push(bytes),
                Some(Part::End) => break,
                _ => panic!("parts out of order"),
            }
        }
        assert!(parts.len() > 3, "{} part(s)", parts.len());
        let (last, full) = parts.split_last().unwrap();
        // Each sent as soon as it reaches the size: no larger than that plus one of gzip's writes.
        for part in full {
            assert!((PART..2 * PART).contains(&part.len()), "part of {} bytes", part.len());
        }
        assert!(!last.is_empty() && last.len() < 2 * PART);
        let whole: Vec<u8> = parts.concat();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&whole[..]), &mut text).unwrap();
        assert_eq!(text.lines().count(), records, "the parts together are the whole gzip stream");
    }
}
