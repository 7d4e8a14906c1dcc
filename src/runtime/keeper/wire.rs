//! What the keeper and the daemon say to each other over their
//! `SOCK_SEQPACKET` socketpair: one message per packet, fixed-size
//! little-endian records, so a packet is never split or merged and
//! nothing needs a parser beyond slicing.
//!
//! Keeper to daemon: the exits it recorded (a [`Message::Table`] batch at
//! the daemon's start, closed by [`Message::TableEnd`]; then
//! [`Message::Exits`] as its children exit) and [`Message::Halt`] (stop
//! every pod gracefully, then exit). Daemon to keeper: [`Message::Ready`]
//! once it serves (an exit after that is a crash to restart from, not a
//! start-up failure to report).
//!
//! Pure: no I/O here.

/// One exit the keeper reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    pub pid: i32,
    /// The raw wait status (decode with `linux::decode_status`).
    pub status: i32,
    /// Field 22 of /proc/PID/stat, read before the reap: with the pid it
    /// names one process (pids are reused, start ticks are not).
    pub start_ticks: u64,
    /// When it was reaped: milliseconds since the Unix epoch.
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Exits recorded before this daemon started (more may follow).
    Table(Vec<ExitRecord>),
    /// The recorded exits are all sent.
    TableEnd,
    /// Exits of the keeper's children while this daemon runs.
    Exits(Vec<ExitRecord>),
    /// Stop every pod gracefully and exit (SIGTERM, SIGINT or SIGPWR
    /// reached the keeper). A second one: kill what is left now.
    Halt,
    /// The daemon serves: its exits from now on are crashes.
    Ready,
}

const TABLE: u32 = 1;
const TABLE_END: u32 = 2;
const EXITS: u32 = 3;
const HALT: u32 = 4;
const READY: u32 = 5;

const HEADER: usize = 8;
const RECORD: usize = 32;

/// Records per packet at most: 8 KiB packets, well under any socket
/// buffer, so a packet is always accepted whole or not at all.
pub const MAX_RECORDS: usize = 256;

/// The largest packet [`encode`] makes.
pub const MAX_PACKET: usize = HEADER + MAX_RECORDS * RECORD;

/// A message as one packet. Batches longer than [`MAX_RECORDS`] must be
/// split by the caller ([`table_packets`]).
pub fn encode(msg: &Message) -> Vec<u8> {
    let (kind, records): (u32, &[ExitRecord]) = match msg {
        Message::Table(r) => (TABLE, r),
        Message::TableEnd => (TABLE_END, &[]),
        Message::Exits(r) => (EXITS, r),
        Message::Halt => (HALT, &[]),
        Message::Ready => (READY, &[]),
    };
    let mut out = Vec::with_capacity(HEADER + records.len() * RECORD);
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.pid.to_le_bytes());
        out.extend_from_slice(&r.status.to_le_bytes());
        out.extend_from_slice(&r.start_ticks.to_le_bytes());
        out.extend_from_slice(&r.at_ms.to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
    }
    out
}

/// One packet back into a message; None for anything malformed (a
/// truncated packet, an unknown kind, a count that does not fit).
pub fn decode(packet: &[u8]) -> Option<Message> {
    let word = |at: usize| -> Option<[u8; 4]> { packet.get(at..at + 4)?.try_into().ok() };
    let long = |at: usize| -> Option<[u8; 8]> { packet.get(at..at + 8)?.try_into().ok() };
    let kind = u32::from_le_bytes(word(0)?);
    let count = u32::from_le_bytes(word(4)?) as usize;
    if packet.len() != HEADER + count.checked_mul(RECORD)? {
        return None;
    }
    let records = (0..count)
        .map(|i| {
            let at = HEADER + i * RECORD;
            Some(ExitRecord {
                pid: i32::from_le_bytes(word(at)?),
                status: i32::from_le_bytes(word(at + 4)?),
                start_ticks: u64::from_le_bytes(long(at + 8)?),
                at_ms: i64::from_le_bytes(long(at + 16)?),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let bare = |m: Message| records.is_empty().then_some(m);
    match kind {
        TABLE => Some(Message::Table(records)),
        TABLE_END => bare(Message::TableEnd),
        EXITS => Some(Message::Exits(records)),
        HALT => bare(Message::Halt),
        READY => bare(Message::Ready),
        _ => None,
    }
}

/// The recorded exits as packets: `Table` batches, then `TableEnd`.
pub fn table_packets<'a>(records: impl IntoIterator<Item = &'a ExitRecord>) -> Vec<Vec<u8>> {
    let all: Vec<ExitRecord> = records.into_iter().copied().collect();
    let mut out: Vec<Vec<u8>> = all
        .chunks(MAX_RECORDS)
        .map(|c| encode(&Message::Table(c.to_vec())))
        .collect();
    out.push(encode(&Message::TableEnd));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: i32) -> ExitRecord {
        ExitRecord {
            pid,
            status: 7 << 8,
            start_ticks: 1_234_567_890_123,
            at_ms: -5,
        }
    }

    #[test]
    fn every_message_survives_a_round_trip() {
        for msg in [
            Message::Table(vec![record(1), record(i32::MAX)]),
            Message::Table(vec![]),
            Message::TableEnd,
            Message::Exits(vec![record(42)]),
            Message::Halt,
            Message::Ready,
        ] {
            assert_eq!(decode(&encode(&msg)), Some(msg));
        }
    }

    #[test]
    fn malformed_packets_are_refused() {
        let good = encode(&Message::Exits(vec![record(3)]));
        assert_eq!(decode(&good[..good.len() - 1]), None, "truncated");
        assert_eq!(decode(&good[..4]), None, "no count");
        let mut unknown = good.clone();
        unknown[0] = 99;
        assert_eq!(decode(&unknown), None, "unknown kind");
        let mut halt_with_records = good;
        halt_with_records[0] = HALT as u8;
        assert_eq!(
            decode(&halt_with_records),
            None,
            "records on a bare message"
        );
        let mut huge = encode(&Message::Halt);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None, "a count past the packet");
    }

    #[test]
    fn a_long_table_is_split_into_packets_that_fit() {
        let records: Vec<ExitRecord> = (0..600).map(record).collect();
        let packets = table_packets(&records);
        assert_eq!(packets.len(), 4, "256 + 256 + 88, then the end");
        assert!(packets.iter().all(|p| p.len() <= MAX_PACKET));
        let mut back = vec![];
        for p in &packets[..3] {
            match decode(p) {
                Some(Message::Table(r)) => back.extend(r),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, records);
        assert_eq!(decode(&packets[3]), Some(Message::TableEnd));
        assert_eq!(table_packets(&[]), vec![encode(&Message::TableEnd)]);
    }
}
