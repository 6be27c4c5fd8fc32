//! Line splitting with a length limit, so one enormous line cannot exhaust memory.

use std::io::{self, BufRead};

pub enum Line<'a> {
    Text(&'a [u8]),
    /// The line exceeded the limit; its bytes were discarded.
    TooLong,
}

pub struct Lines<R> {
    inner: R,
    line: Vec<u8>,
    max_len: usize,
}

impl<R: BufRead> Lines<R> {
    pub fn new(inner: R, max_len: usize) -> Self {
        Self { inner, line: Vec::with_capacity(4096), max_len }
    }

    /// The next line without its `\n` (or `\r\n`); `None` at the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.line.clear();
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                if !saw_any {
                    return Ok(None);
                }
                break;
            }
            saw_any = true;
            let (chunk, consumed, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long {
                if self.line.len() + chunk.len() > self.max_len {
                    too_long = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.inner.consume(consumed);
            if done {
                break;
            }
        }
        if too_long {
            return Ok(Some(Line::TooLong));
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Some(Line::Text(&self.line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut lines = Lines::new(io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(match line {
                Line::Text(t) => Some(t.to_vec()),
                Line::TooLong => None,
            });
        }
        out
    }

    #[test]
    fn splits_across_buffer_boundaries_and_limits_length() {
        let out = collect(b"short\r\nthis one is long\nok\nlast", 8);
        assert_eq!(out, vec![Some(b"short".to_vec()), None, Some(b"ok".to_vec()), Some(b"last".to_vec())]);
        assert!(collect(b"", 8).is_empty());
        assert_eq!(collect(b"\n", 8), vec![Some(vec![])]);
    }
}
