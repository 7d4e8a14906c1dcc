//! The journal's byte format (STATE_DIR/store.journal), pure: no I/O here,
//! so torn and corrupt files are tested as byte slices.
//!
//! ```text
//! header  "drvjrnl1" | snapshot length: u64 LE | snapshot CRC-32: u32 LE
//! record  payload length: u32 LE | CRC-32 of (length bytes + payload): u32 LE | payload
//! ```
//!
//! The header names the snapshot (store.json) the records apply to, by
//! length and CRC-32 of its bytes: a journal left beside a different
//! snapshot (a compaction interrupted between its two steps, an older
//! drover that rewrote store.json without knowing the journal, a restored
//! backup) is not replayed over it.
//!
//! A record's payload is JSON, `{"put": [object, ...], "deleted":
//! [["Pod", "web-x"], ...]}`: whole objects and whole keys, so replaying a
//! record twice, or over a snapshot that already contains it, gives the
//! same store (the compaction argument in `embedded.rs` rests on this).
//!
//! Why CRC-32 rather than a simple sum: the checksum must catch a torn
//! write (a tail of zeros or of stale blocks) and a flipped bit; CRC-32
//! detects every burst error up to 32 bits and any odd number of flipped
//! bits, which an additive checksum does not (zeros add nothing to it).
//! The length is inside the CRC so a corrupt length is caught too.

use super::{Changes, Key};
use crate::api::{Kind, Object};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MAGIC: &[u8; 8] = b"drvjrnl1";
pub const HEADER_LEN: usize = 8 + 8 + 4;
const FRAME_LEN: usize = 4 + 4;

/// The header of a journal whose records apply on top of `snapshot`.
pub fn header(snapshot: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&(snapshot.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc32fast::hash(snapshot).to_le_bytes());
    h
}

/// The records part of `journal` if its header says they apply on top of
/// `snapshot`; None if they do not (or the header is not drover's).
pub fn records_after<'j>(journal: &'j [u8], snapshot: &[u8]) -> Option<&'j [u8]> {
    let (head, body) = journal.split_at_checked(HEADER_LEN)?;
    (head == header(snapshot).as_slice()).then_some(body)
}

/// One record's payload, framed. Errors only if the payload would not fit
/// the 32-bit length (gigabytes of changes in one persist).
pub fn frame(changes: &Changes) -> anyhow::Result<Vec<u8>> {
    let record = RecordRef {
        put: changes.put().collect(),
        deleted: changes.deleted().collect(),
    };
    let mut out = vec![0; FRAME_LEN];
    serde_json::to_writer(&mut out, &record)?;
    let len = u32::try_from(out.len() - FRAME_LEN)?.to_le_bytes();
    out[..4].copy_from_slice(&len);
    let crc = crc_of(&len, &out[FRAME_LEN..]);
    out[4..FRAME_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn crc_of(len: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// The complete, valid records at the start of `body`, in order, and how
/// many bytes they span. Scanning stops at the first frame that is short
/// or fails its CRC: everything from there on is a torn tail.
pub fn scan(body: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut records = vec![];
    let mut at = 0;
    while let Some(frame) = body.get(at..at + FRAME_LEN) {
        let (len, crc) = frame.split_at(4);
        let n = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let Some(payload) = body.get(at + FRAME_LEN..at + FRAME_LEN + n) else {
            break;
        };
        if crc_of(len, payload) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            break;
        }
        records.push(payload);
        at += FRAME_LEN + n;
    }
    (records, at)
}

/// Applies one record's payload to `objects`. An error means a record
/// that passed its CRC but is not a drover record this version reads
/// (written by a newer drover, say): the caller must not guess.
pub fn apply(payload: &[u8], objects: &mut BTreeMap<Key, Object>) -> anyhow::Result<()> {
    let record: Record = serde_json::from_slice(payload)?;
    for obj in record.put {
        objects.insert((obj.kind(), obj.name().to_string()), obj);
    }
    for key in record.deleted {
        objects.remove(&key);
    }
    Ok(())
}

#[derive(Serialize)]
struct RecordRef<'a> {
    put: Vec<&'a Object>,
    deleted: Vec<(Kind, &'a str)>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    put: Vec<Object>,
    #[serde(default)]
    deleted: Vec<Key>,
}
