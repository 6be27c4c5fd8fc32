//! Traces: `time,<metric id>,...[,load]`, one row per sample; a row holds until the next.
//! Rows at negative times are history from before the run (what a seasonal profile is
//! built from).

/// A metric trace: `time,<metric id>,...[,load]`, one row per tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub metric_ids: Vec<String>,
    pub rows: Vec<TraceRow>,
    pub has_load: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// Seconds from the start.
    pub time: i64,
    /// In `metric_ids` order; `None` is an empty cell (missing data).
    pub values: Vec<Option<f64>>,
    pub load: Option<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TraceError {
    #[error("the trace is empty: it needs a header line time,<metric id>,...")]
    Empty,
    #[error("line 1: the first column must be `time`, found {0:?}")]
    NoTimeColumn(String),
    #[error("line {line}: expected {expected} fields, found {found}")]
    FieldCount { line: usize, expected: usize, found: usize },
    #[error("line {line}, column {column}: {value:?} is not a number")]
    NotANumber { line: usize, column: String, value: String },
    #[error("line {line}: time {time} does not increase")]
    TimeNotIncreasing { line: usize, time: i64 },
}

pub fn parse_trace(text: &str) -> Result<Trace, TraceError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(TraceError::Empty)?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_owned()).collect();
    if columns[0] != "time" {
        return Err(TraceError::NoTimeColumn(columns[0].clone()));
    }
    let load_column = columns.iter().position(|c| c == "load");
    let metric_ids: Vec<String> = columns[1..].iter().filter(|c| *c != "load").cloned().collect();
    let mut rows: Vec<TraceRow> = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(TraceError::FieldCount { line: number, expected: columns.len(), found: cells.len() });
        }
        let parse = |i: usize| -> Result<Option<f64>, TraceError> {
            if cells[i].is_empty() {
                return Ok(None);
            }
            cells[i].parse::<f64>().map(Some).map_err(|_| TraceError::NotANumber {
                line: number,
                column: columns[i].clone(),
                value: cells[i].to_owned(),
            })
        };
        let time = parse(0)?.map(|t| t.round()).ok_or_else(|| TraceError::NotANumber {
            line: number,
            column: "time".into(),
            value: String::new(),
        })? as i64;
        if rows.last().is_some_and(|r| r.time >= time) {
            return Err(TraceError::TimeNotIncreasing { line: number, time });
        }
        let mut values = Vec::with_capacity(metric_ids.len());
        for i in 1..columns.len() {
            if Some(i) != load_column {
                values.push(parse(i)?);
            }
        }
        let load = load_column.map(parse).transpose()?.flatten();
        rows.push(TraceRow { time, values, load });
    }
    Ok(Trace { metric_ids, rows, has_load: load_column.is_some() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_parse_with_missing_cells_and_clear_errors() {
        let trace = parse_trace("time,cpu,load\n0,50,\n10,,200\n").unwrap();
        assert_eq!(trace.metric_ids, ["cpu"]);
        assert_eq!(trace.rows[1].values, [None]);
        assert_eq!(trace.rows[1].load, Some(200.0));
        assert_eq!(parse_trace(""), Err(TraceError::Empty));
        assert_eq!(parse_trace("t,cpu\n"), Err(TraceError::NoTimeColumn("t".into())));
        assert_eq!(
            parse_trace("time,cpu\n0,1,2\n"),
            Err(TraceError::FieldCount { line: 2, expected: 2, found: 3 })
        );
        assert_eq!(
            parse_trace("time,cpu\n10,1\n10,2\n"),
            Err(TraceError::TimeNotIncreasing { line: 3, time: 10 })
        );
        assert!(matches!(parse_trace("time,cpu\n0,abc\n"), Err(TraceError::NotANumber { line: 2, .. })));
    }
}
