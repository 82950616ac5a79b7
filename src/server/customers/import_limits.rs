//! Bounds on what an import file may make Herald hold: the csv crate keeps a whole record in
//! memory before it hands it over, so a file without a line break (or with a quote that never
//! closes) would be read whole. [`Bounded`] counts each record's bytes as they stream past
//! (a line break inside quotes continues the record, as in CSV) and stops the read at
//! [`MAX_RECORD_BYTES`], naming the line.

use std::io::{self, Read};

/// The longest record (one customer's line, quoted line breaks included).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The longest cell.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
/// The most columns a header may name.
pub const MAX_COLUMNS: usize = 100;

/// Where in a CSV field the reader is, as the csv crate reads it: a quote opens quoting only
/// at a field's start (elsewhere it is a character like any other), and inside quotes a
/// doubled quote is a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Start,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the next byte says whether it was doubled.
    QuoteInQuoted,
}

impl Field {
    /// The state after byte `b`, and whether `b` ended the record.
    fn next(self, b: u8) -> (Field, bool) {
        match (self, b) {
            (Field::Quoted, b'"') => (Field::QuoteInQuoted, false),
            (Field::Quoted, _) => (Field::Quoted, false),
            (Field::QuoteInQuoted, b'"') => (Field::Quoted, false),
            (Field::Start, b'"') => (Field::Quoted, false),
            (_, b',') => (Field::Start, false),
            // Line ends as the csv crate takes them: `\n`, `\r\n` or a lone `\r`.
            (_, b'\n' | b'\r') => (Field::Start, true),
            _ => (Field::Unquoted, false),
        }
    }
}

/// A reader that refuses a record longer than `limit` bytes.
pub struct Bounded<R> {
    inner: R,
    limit: usize,
    field: Field,
    record_bytes: usize,
    /// The physical line being read (1-based) and the one the current record began on.
    line: u64,
    /// The byte before (a `\r\n` is one line break).
    last: u8,
    record_line: u64,
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_RECORD_BYTES)
    }

    pub fn with_limit(inner: R, limit: usize) -> Self {
        Bounded {
            inner,
            limit,
            field: Field::Start,
            record_bytes: 0,
            line: 1,
            record_line: 1,
            last: 0,
        }
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line {} is longer than {} KB: a customer's line is far shorter (is a closing quote missing?)",
                self.record_line,
                self.limit / 1024
            ),
        )
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            let (field, ended) = self.field.next(b);
            self.field = field;
            if b == b'\r' || (b == b'\n' && self.last != b'\r') {
                self.line += 1;
            }
            self.last = b;
            if ended {
                self.record_bytes = 0;
                self.record_line = self.line;
                continue;
            }
            self.record_bytes += 1;
            if self.record_bytes > self.limit {
                return Err(self.too_long());
            }
        }
        Ok(n)
    }
}

/// Why a row's cells are refused (one too long), if they are.
pub fn check_cells<'a>(cells: impl Iterator<Item = &'a str>) -> Result<(), String> {
    for (i, cell) in cells.enumerate() {
        if cell.len() > MAX_FIELD_BYTES {
            return Err(format!(
                "column {} is longer than {} KB",
                i + 1,
                MAX_FIELD_BYTES / 1024
            ));
        }
    }
    Ok(())
}

/// Why a header is refused (too many columns, a name too long), if it is.
pub fn check_header(header: &csv::StringRecord) -> Result<(), String> {
    if header.len() > MAX_COLUMNS {
        return Err(format!(
            "The header names {} columns; an import takes at most {MAX_COLUMNS}. Remove the columns Herald does not import.",
            header.len()
        ));
    }
    if let Some(name) = header.iter().find(|h| h.chars().count() > 200) {
        let start: String = name.chars().take(40).collect();
        return Err(format!(
            "The header's column “{start}…” has a name longer than 200 characters: is the first line really the header?"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        Bounded::with_limit(data, limit)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn records_are_counted_across_quoted_line_breaks_and_named_by_line() {
        assert!(read_all(b"name,phone\nAnn,1\nBob,2\n", 12).is_ok());
        let e = read_all(b"name,phone\nAnn,1\nBob is far too long,2\n", 12).unwrap_err();
        assert!(e.starts_with("line 3 is longer"), "{e}");
        // A quoted line break continues the record: counted as one.
        let e = read_all(b"a\n\"x\nyyyy\nzzzz\"\n", 10).unwrap_err();
        assert!(e.starts_with("line 2 is longer"), "{e}");
        // Doubled quotes inside a quoted cell are no end of the quote.
        assert!(read_all(b"\"a\"\"b\"\n\"c\"\n", 8).is_ok());
        // Old Macintosh line ends (a lone CR) end lines too.
        assert!(read_all(b"name\rAnn\rBob\r", 4).is_ok());
        let e = read_all(b"name\r\nAnn\r\nBartholomew\r\n", 8).unwrap_err();
        assert!(e.starts_with("line 3 is longer"), "{e}");
        // A quote inside an unquoted cell (12" pizza) is a character: the line ends as usual.
        let inches = b"name,size\nAnn,12\" pizza\nBob,9\" pan\nCy,10\n";
        assert!(read_all(inches, 16).is_ok());
        // No line break at all.
        assert!(read_all(&[b'x'; 100], 64).is_err());
    }

    #[test]
    fn long_cells_and_wide_headers_are_refused() {
        assert!(check_cells(["a", "b"].into_iter()).is_ok());
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let e = check_cells(["a", long.as_str()].into_iter()).unwrap_err();
        assert!(e.contains("column 2"), "{e}");
        let wide = csv::StringRecord::from(vec!["c"; MAX_COLUMNS + 1]);
        assert!(check_header(&wide).unwrap_err().contains("at most 100"));
    }
}
