//! Binary `COPY ... FROM STDIN` streamed from a task that holds the
//! transaction, so the server stores one batch while the import prepares the
//! next.
//!
//! [`Rows`] encodes rows in PostgreSQL's binary COPY format (the server
//! parses no text: floats, integers and timestamps go as their bytes).
//! [`CopyStream`] takes the transaction, opens the COPY on it and sends each
//! batch as it is queued; [`CopyStream::finish`] ends the COPY and hands the
//! transaction back with the number of rows the server stored. Dropped
//! without `finish`, the COPY is aborted and the transaction rolled back.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Transaction};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Signature, flags (no OIDs) and an empty header extension.
const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// A field count of -1 ends the data.
const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Batches queued ahead of the server.
const QUEUED: usize = 4;

/// Rows in the binary COPY format. Each row starts with [`Rows::row`] and
/// then gives exactly the statement's columns, in order, with the column's
/// type (`int8`, `int4`, `float8`, `text`, `timestamptz`).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    bytes: Vec<u8>,
    rows: u64,
}

/// A value as its column's binary COPY field.
pub(crate) trait Field {
    /// Appends length and bytes.
    fn put(&self, out: &mut Vec<u8>);
}

fn sized(out: &mut Vec<u8>, bytes: &[u8]) {
    // Values here are single tree attributes, far below 2 GiB; a batch that
    // large would fail as a whole on the server, leaving nothing.
    out.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Field for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        sized(out, &self.to_be_bytes());
    }
}

impl Field for i32 {
    fn put(&self, out: &mut Vec<u8>) {
        sized(out, &self.to_be_bytes());
    }
}

/// The value's IEEE 754 bits: what is stored is exactly what was sent.
impl Field for f64 {
    fn put(&self, out: &mut Vec<u8>) {
        sized(out, &self.to_bits().to_be_bytes());
    }
}

/// UTF-8 bytes (the connection's encoding); the server refuses a U+0000.
impl Field for &str {
    fn put(&self, out: &mut Vec<u8>) {
        sized(out, self.as_bytes());
    }
}

/// Microseconds since 2000-01-01 UTC (sub-microsecond parts are dropped, as the column would).
impl Field for DateTime<Utc> {
    fn put(&self, out: &mut Vec<u8>) {
        sized(out, &(self.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
    }
}

/// `None` is SQL NULL.
impl<T: Field> Field for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.put(out),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

impl Rows {
    /// Room for about `bytes` of data.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Rows { bytes: Vec::with_capacity(bytes), rows: 0 }
    }

    /// Starts a row of `fields` columns.
    pub(crate) fn row(&mut self, fields: i16) {
        self.bytes.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
    }

    /// Appends the next field of the current row.
    pub(crate) fn put(&mut self, value: impl Field) {
        value.put(&mut self.bytes);
    }

    /// Rows started so far.
    pub(crate) fn len(&self) -> u64 {
        self.rows
    }
}

enum Message {
    Rows(Vec<u8>),
    Finish,
}

type Outcome = (Transaction<'static, Postgres>, sqlx::Result<u64>);

/// One binary COPY in progress on a transaction (see the module documentation).
#[derive(Debug)]
pub(crate) struct CopyStream {
    queue: mpsc::Sender<Message>,
    task: JoinHandle<Outcome>,
    /// Rows queued.
    sent: u64,
}

/// How a stream ended: the transaction back (unless the task was lost), the
/// rows queued, and what the server answered.
pub(crate) struct Finished {
    pub(crate) tx: Option<Transaction<'static, Postgres>>,
    pub(crate) sent: u64,
    pub(crate) result: std::result::Result<u64, sqlx::Error>,
}

impl CopyStream {
    /// Starts `statement` (a `COPY ... FROM STDIN (FORMAT binary)`) on `tx` in a task.
    pub(crate) fn begin(tx: Transaction<'static, Postgres>, statement: &'static str) -> Self {
        let (queue, rx) = mpsc::channel(QUEUED);
        let task = tokio::spawn(async move {
            let mut tx = tx;
            let result = stream(&mut tx, statement, rx).await;
            (tx, result)
        });
        CopyStream { queue, task, sent: 0 }
    }

    /// Queues `rows`, waiting while [`QUEUED`] batches are ahead of them.
    /// `false` when the stream has stopped: [`CopyStream::finish`] says why.
    pub(crate) async fn send(&mut self, rows: Rows) -> bool {
        self.sent += rows.rows;
        self.queue.send(Message::Rows(rows.bytes)).await.is_ok()
    }

    /// Ends the COPY once everything queued is sent, and waits for the server.
    pub(crate) async fn finish(self) -> Finished {
        let CopyStream { queue, task, sent } = self;
        // A stream that stopped early has already dropped its end of the queue.
        let _ = queue.send(Message::Finish).await;
        match task.await {
            Ok((tx, result)) => Finished { tx: Some(tx), sent, result },
            Err(e) => Finished {
                tx: None,
                sent,
                result: Err(sqlx::Error::Protocol(format!("the COPY task of an import failed: {e}"))),
            },
        }
    }
}

async fn stream(conn: &mut PgConnection, statement: &str, mut rx: mpsc::Receiver<Message>) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(&HEADER[..]).await?;
    loop {
        match rx.recv().await {
            Some(Message::Rows(bytes)) => {
                copy.send(bytes).await?;
            }
            Some(Message::Finish) => {
                copy.send(&TRAILER[..]).await?;
                return copy.finish().await;
            }
            None => {
                // The import was dropped: nothing it sent is kept (the transaction rolls back too).
                copy.abort("import abandoned").await?;
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fields_encode_as_postgresql_reads_them() {
        let mut rows = Rows::default();
        rows.row(7);
        rows.put(1i64);
        rows.put(-2i32);
        rows.put(0.1f64);
        rows.put("Ri6 – sầu riêng");
        rows.put(None::<f64>);
        rows.put(DateTime::<Utc>::from_timestamp(946_684_801, 5_000).unwrap());
        rows.put(Some(3i64));
        assert_eq!(rows.len(), 1);
        let mut want = vec![0, 7];
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend([0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe]);
        want.extend([0, 0, 0, 8]);
        want.extend(0.1f64.to_bits().to_be_bytes());
        let text = "Ri6 – sầu riêng".as_bytes();
        want.extend((text.len() as i32).to_be_bytes());
        want.extend(text);
        want.extend([0xff, 0xff, 0xff, 0xff]);
        // One second and five microseconds after 2000-01-01.
        want.extend([0, 0, 0, 8]);
        want.extend(1_000_005i64.to_be_bytes());
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(rows.bytes, want);
        assert_eq!(&HEADER[..11], b"PGCOPY\n\xff\r\n\0");
    }

    #[test]
    fn times_before_2000_are_negative() {
        let mut out = Vec::new();
        DateTime::<Utc>::from_timestamp(0, 0).unwrap().put(&mut out);
        assert_eq!(out[4..], (-PG_EPOCH_MICROS).to_be_bytes());
    }
}
