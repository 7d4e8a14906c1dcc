//! Time zones for cron schedules, from the system's tz database
//! (/usr/share/zoneinfo, Debian's `tzdata` package; $TZDIR elsewhere), as
//! chrono [`TimeZone`]s.
//!
//! Why not a copy compiled into the binary (chrono-tz): its tables are
//! ~1 MiB of pointers, which a position-independent executable relocates
//! at every start, so all of it became private dirty memory of the daemon
//! (PSS +1.0 MiB with 100 pods) for the few zones a host uses; and the
//! system's database is the one the distribution keeps up to date.
//!
//! Owns: reading TZif files (RFC 8536, versions 1 to 4) and the POSIX TZ
//! rule in their footer (instants after the last listed transition), and
//! the one cache of loaded zones. A zone is read once per name and kept for
//! the life of the process, so [`Zone`] is `Copy`, like chrono-tz's `Tz`.
//! Everything but [`Zone::named`] and [`names`] is pure.

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// A time zone: UTC, or one read from the tz database.
#[derive(Clone, Copy)]
pub struct Zone(&'static ZoneData);

/// The offset of a [`Zone`] at some instant: what chrono keeps in a
/// `DateTime<Zone>`.
#[derive(Clone, Copy, Debug)]
pub struct ZoneOffset {
    zone: Zone,
    /// Seconds east of UTC.
    utc_offset: i32,
    abbreviation: &'static str,
}

/// Why a zone could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    /// Not a zone the database lists (or no database to ask).
    #[error("unknown time zone \"{0}\"")]
    Unknown(String),
    /// Listed, but its file is not a TZif file drover can read.
    #[error("time zone file {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

pub struct ZoneData {
    name: String,
    /// Instants (seconds since the epoch, UTC) at which the local time type
    /// changes, ascending, with the index of the type from then on.
    transitions: Vec<(i64, usize)>,
    types: Vec<LocalType>,
    /// For instants after the last transition (the TZif footer).
    rule: Option<PosixRule>,
}

#[derive(Clone, Debug, PartialEq)]
struct LocalType {
    utc_offset: i32,
    abbreviation: &'static str,
}

static UTC_DATA: OnceLock<ZoneData> = OnceLock::new();

impl Zone {
    /// UTC, without any file.
    pub fn utc() -> Zone {
        Zone(UTC_DATA.get_or_init(|| ZoneData {
            name: "UTC".into(),
            transitions: vec![],
            types: vec![LocalType {
                utc_offset: 0,
                abbreviation: "UTC",
            }],
            rule: None,
        }))
    }

    /// The zone named `name` (an IANA name such as `Europe/Berlin`), read
    /// from the tz database the first time it is asked for.
    pub fn named(name: &str) -> Result<Zone, ZoneError> {
        if name == "UTC" {
            return Ok(Zone::utc());
        }
        static LOADED: OnceLock<Mutex<BTreeMap<String, Zone>>> = OnceLock::new();
        let loaded = LOADED.get_or_init(Default::default);
        if let Some(zone) = loaded.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(*zone);
        }
        let zone = load(name)?;
        loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), zone);
        Ok(zone)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The offset in effect at `t` (seconds since the epoch).
    fn offset_at(&self, t: i64) -> ZoneOffset {
        let ty = self.0.type_at(t);
        ZoneOffset {
            zone: *self,
            utc_offset: ty.utc_offset,
            abbreviation: ty.abbreviation,
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.0.name == other.0.name
    }
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset).expect("TZif offsets are within a day")
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.abbreviation)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    /// The instants whose local time is `local`: none in a gap (spring
    /// forward), two when the clock falls back (earliest first), else one.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        let wall = local.and_utc().timestamp();
        let mut found: Vec<(i64, ZoneOffset)> = vec![];
        for offset in self.0.offsets_near(wall) {
            let instant = wall - i64::from(offset);
            let at = self.offset_at(instant);
            if at.utc_offset == offset && !found.iter().any(|(i, _)| *i == instant) {
                found.push((instant, at));
            }
        }
        found.sort_by_key(|(instant, _)| *instant);
        match found.as_slice() {
            [] => LocalResult::None,
            [(_, one)] => LocalResult::Single(*one),
            [(_, first), .., (_, last)] => LocalResult::Ambiguous(*first, *last),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.offset_at(utc.and_utc().timestamp())
    }
}

impl ZoneData {
    fn type_at(&self, t: i64) -> &LocalType {
        let after = self.transitions.partition_point(|(at, _)| *at <= t);
        match &self.rule {
            // After the last transition (or with none at all): the footer.
            Some(rule) if after == self.transitions.len() => rule.type_at(t),
            // Before the first transition: the first type (RFC 8536 3.2).
            _ if after == 0 => &self.types[0],
            _ => &self.types[self.transitions[after - 1].1],
        }
    }

    /// Every offset in effect within two days of `wall` (taken as UTC):
    /// the candidates for a local time.
    fn offsets_near(&self, wall: i64) -> Vec<i32> {
        const TWO_DAYS: i64 = 2 * 86_400;
        let (from, to) = (wall - TWO_DAYS, wall + TWO_DAYS);
        let mut out = vec![self.type_at(from).utc_offset];
        let first = self.transitions.partition_point(|(at, _)| *at <= from);
        for (at, ty) in &self.transitions[first..] {
            if *at > to {
                break;
            }
            out.push(self.types[*ty].utc_offset);
        }
        if let Some(rule) = &self.rule {
            out.extend(rule.dst.iter().map(|d| d.local.utc_offset));
            out.push(rule.std.utc_offset);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The database's folder: $TZDIR, else /usr/share/zoneinfo.
fn database() -> PathBuf {
    std::env::var_os("TZDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"))
}

/// Every zone name the database lists (its tzdata.zi: zones and links),
/// and UTC; empty without a database.
pub fn names() -> Vec<String> {
    let text = std::fs::read_to_string(database().join("tzdata.zi")).unwrap_or_default();
    let mut out = listed_names(&text);
    out.push("UTC".into());
    out.sort();
    out.dedup();
    out
}

/// `Z NAME ...` (a zone) and `L TARGET NAME` (a link) lines of tzdata.zi.
fn listed_names(tzdata_zi: &str) -> Vec<String> {
    tzdata_zi
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            match fields.next()? {
                "Z" => fields.next(),
                "L" => fields.nth(1),
                _ => None,
            }
        })
        .map(str::to_string)
        .collect()
}

fn load(name: &str) -> Result<Zone, ZoneError> {
    let unknown = || ZoneError::Unknown(name.to_string());
    // Names are paths under the database: nothing that climbs out of it,
    // and only names the database lists (not its posix/ and right/
    // variants, nor localtime).
    let safe = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    // Without a list (no tzdata.zi), any readable TZif file will do.
    let listed = names();
    if !safe || (listed.len() > 1 && !listed.iter().any(|n| n == name)) {
        return Err(unknown());
    }
    let path = database().join(name);
    let bytes = std::fs::read(&path).map_err(|_| unknown())?;
    let data = parse_tzif(name, &bytes).map_err(|reason| ZoneError::Unreadable {
        path: path.display().to_string(),
        reason,
    })?;
    Ok(Zone(Box::leak(Box::new(data))))
}

/// Abbreviations live as long as their zone, which lives as long as the
/// process.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// A TZif file (RFC 8536): the 64-bit data of version 2 and later (the
/// 32-bit block of version 1 otherwise), and the footer's rule.
fn parse_tzif(name: &str, bytes: &[u8]) -> Result<ZoneData, String> {
    struct Counts {
        isut: usize,
        isstd: usize,
        leap: usize,
        time: usize,
        types: usize,
        chars: usize,
    }
    fn header(bytes: &[u8]) -> Result<(u8, Counts), String> {
        if bytes.len() < 44 || &bytes[..4] != b"TZif" {
            return Err("not a TZif file".into());
        }
        let count = |i: usize| {
            u32::from_be_bytes(bytes[20 + 4 * i..24 + 4 * i].try_into().unwrap()) as usize
        };
        Ok((
            bytes[4],
            Counts {
                isut: count(0),
                isstd: count(1),
                leap: count(2),
                time: count(3),
                types: count(4),
                chars: count(5),
            },
        ))
    }
    fn block_len(c: &Counts, time_size: usize) -> usize {
        c.time * time_size
            + c.time
            + c.types * 6
            + c.chars
            + c.leap * (time_size + 4)
            + c.isstd
            + c.isut
    }

    let (version, v1) = header(bytes)?;
    let (data, counts, time_size, footer) = if version >= b'2' {
        let second = 44 + block_len(&v1, 4);
        let rest = bytes.get(second..).ok_or("truncated")?;
        let (_, counts) = header(rest)?;
        let len = block_len(&counts, 8);
        let data = rest.get(44..44 + len).ok_or("truncated")?;
        (data, counts, 8, &rest[44 + len..])
    } else {
        let data = bytes.get(44..44 + block_len(&v1, 4)).ok_or("truncated")?;
        (data, v1, 4, &[][..])
    };
    if counts.types == 0 {
        return Err("no local time types".into());
    }
    if counts.leap > 0 {
        return Err("leap-second (\"right/\") zones are not supported".into());
    }
    let times = &data[..counts.time * time_size];
    let indices = &data[counts.time * time_size..counts.time * (time_size + 1)];
    let infos_at = counts.time * (time_size + 1);
    let infos = &data[infos_at..infos_at + counts.types * 6];
    let chars = &data[infos_at + counts.types * 6..infos_at + counts.types * 6 + counts.chars];

    let mut types = Vec::with_capacity(counts.types);
    for info in infos.chunks_exact(6) {
        let utc_offset = i32::from_be_bytes(info[..4].try_into().unwrap());
        if utc_offset.unsigned_abs() >= 86_400 {
            return Err(format!("offset {utc_offset}s is a day or more"));
        }
        let at = info[5] as usize;
        let tail = chars.get(at..).ok_or("abbreviation index out of range")?;
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let abbreviation = leak(&String::from_utf8_lossy(&tail[..end]));
        types.push(LocalType {
            utc_offset,
            abbreviation,
        });
    }
    let mut transitions = Vec::with_capacity(counts.time);
    for (i, &ty) in indices.iter().enumerate() {
        let raw = &times[i * time_size..(i + 1) * time_size];
        let at = if time_size == 8 {
            i64::from_be_bytes(raw.try_into().unwrap())
        } else {
            i64::from(i32::from_be_bytes(raw.try_into().unwrap()))
        };
        if ty as usize >= types.len() {
            return Err("transition to an unknown local time type".into());
        }
        transitions.push((at, ty as usize));
    }
    let rule = match footer {
        [b'\n', rest @ ..] => {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("unterminated footer")?;
            let text = std::str::from_utf8(&rest[..end]).map_err(|_| "footer is not UTF-8")?;
            if text.is_empty() {
                None
            } else {
                Some(PosixRule::parse(text).map_err(|e| format!("footer \"{text}\": {e}"))?)
            }
        }
        _ => None,
    };
    Ok(ZoneData {
        name: name.to_string(),
        transitions,
        types,
        rule,
    })
}

/// A POSIX TZ string as TZif footers hold it (RFC 8536 §3.3), e.g.
/// `CET-1CEST,M3.5.0,M10.5.0/3`: standard time, and daylight saving time
/// with the two yearly changes, when there is one.
#[derive(Clone, Debug, PartialEq)]
struct PosixRule {
    std: LocalType,
    dst: Option<Dst>,
}

#[derive(Clone, Debug, PartialEq)]
struct Dst {
    local: LocalType,
    /// DST starts at this local (standard) time...
    start: (RuleDate, i32),
    /// ...and ends at this local (daylight) time; seconds after midnight.
    end: (RuleDate, i32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RuleDate {
    /// `Jn`: day 1..=365, February 29 never counted.
    Julian1(u16),
    /// `n`: day 0..=365, February 29 counted in leap years.
    Julian0(u16),
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay(u8, u8, u8),
}

impl PosixRule {
    fn parse(text: &str) -> Result<PosixRule, String> {
        let mut s = Cursor(text.as_bytes());
        let std_name = s.name()?;
        let std_offset = -s.hms(true)?;
        let std = LocalType {
            utc_offset: std_offset,
            abbreviation: leak(std_name),
        };
        if s.0.is_empty() {
            return Ok(PosixRule { std, dst: None });
        }
        let dst_name = s.name()?;
        let dst_offset = if s.0.first().is_some_and(|c| *c != b',') {
            -s.hms(true)?
        } else {
            std_offset + 3600
        };
        // RFC 8536 footers always carry the rule; POSIX's default is the
        // US rule of 2007.
        let (start, end) = if s.0.is_empty() {
            (
                (RuleDate::MonthWeekDay(3, 2, 0), 7200),
                (RuleDate::MonthWeekDay(11, 1, 0), 7200),
            )
        } else {
            s.expect(b',')?;
            let start = s.rule_date()?;
            s.expect(b',')?;
            let end = s.rule_date()?;
            (start, end)
        };
        if !s.0.is_empty() {
            return Err(format!("unexpected \"{}\"", String::from_utf8_lossy(s.0)));
        }
        Ok(PosixRule {
            std,
            dst: Some(Dst {
                local: LocalType {
                    utc_offset: dst_offset,
                    abbreviation: leak(dst_name),
                },
                start,
                end,
            }),
        })
    }

    fn type_at(&self, t: i64) -> &LocalType {
        let Some(dst) = &self.dst else {
            return &self.std;
        };
        let year = chrono::DateTime::from_timestamp(t + i64::from(self.std.utc_offset), 0)
            .map(|d| chrono::Datelike::year(&d.naive_utc()))
            .unwrap_or(1970);
        let (start, end) = self.changes(dst, year);
        let in_dst = if start < end {
            start <= t && t < end
        } else {
            // Southern hemisphere: DST spans the new year.
            !(end <= t && t < start)
        };
        if in_dst {
            &dst.local
        } else {
            &self.std
        }
    }

    /// The instants DST starts and ends in `year`.
    fn changes(&self, dst: &Dst, year: i32) -> (i64, i64) {
        let at = |(date, time): (RuleDate, i32), offset: i32| {
            let day = date.day_in(year);
            day.and_utc().timestamp() + i64::from(time) - i64::from(offset)
        };
        (
            at(dst.start, self.std.utc_offset),
            at(dst.end, dst.local.utc_offset),
        )
    }
}

impl RuleDate {
    fn day_in(self, year: i32) -> NaiveDateTime {
        let jan1 = NaiveDate::from_ymd_opt(year, 1, 1).expect("a year chrono can hold");
        let date = match self {
            RuleDate::Julian0(n) => jan1 + chrono::Days::new(u64::from(n)),
            RuleDate::Julian1(n) => {
                let leap = NaiveDate::from_ymd_opt(year, 2, 29).is_some();
                let skip = u64::from(leap && n >= 60);
                jan1 + chrono::Days::new(u64::from(n) - 1 + skip)
            }
            RuleDate::MonthWeekDay(m, w, d) => {
                let first = NaiveDate::from_ymd_opt(year, u32::from(m), 1).expect("month 1..=12");
                let first_dow = chrono::Datelike::weekday(&first).num_days_from_sunday() as u8;
                let mut day = 1 + (7 + d - first_dow) % 7 + 7 * (w - 1);
                let days_in_month = first
                    .checked_add_months(chrono::Months::new(1))
                    .map(|next| (next - first).num_days() as u8)
                    .unwrap_or(31);
                while day > days_in_month {
                    day -= 7;
                }
                NaiveDate::from_ymd_opt(year, u32::from(m), u32::from(day)).expect("a day of m")
            }
        };
        date.and_time(chrono::NaiveTime::MIN)
    }
}

/// A reader over the rest of a POSIX TZ string.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.0.split_first() {
            Some((first, rest)) if *first == c => {
                self.0 = rest;
                Ok(())
            }
            _ => Err(format!("expected '{}'", c as char)),
        }
    }

    /// `EST` or `<+0330>`.
    fn name(&mut self) -> Result<&'a str, String> {
        let (name, rest) = if let Some(quoted) = self.0.strip_prefix(b"<") {
            let end = quoted
                .iter()
                .position(|&c| c == b'>')
                .ok_or("unterminated <name>")?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = self
                .0
                .iter()
                .position(|c| !c.is_ascii_alphabetic())
                .unwrap_or(self.0.len());
            self.0.split_at(end)
        };
        if name.len() < 3 {
            return Err("a zone abbreviation has at least 3 characters".into());
        }
        self.0 = rest;
        Ok(std::str::from_utf8(name).expect("ASCII"))
    }

    /// `[+-]h[h][:mm[:ss]]` in seconds (the sign only where allowed).
    fn hms(&mut self, signed: bool) -> Result<i32, String> {
        let mut sign = 1;
        if signed || self.0.first() == Some(&b'-') {
            if let Some((c @ (b'+' | b'-'), rest)) = self.0.split_first() {
                sign = if *c == b'-' { -1 } else { 1 };
                self.0 = rest;
            }
        }
        let mut total = 0;
        for (i, scale) in [3600, 60, 1].into_iter().enumerate() {
            if i > 0 {
                if self.0.first() != Some(&b':') {
                    break;
                }
                self.0 = &self.0[1..];
            }
            let end = self
                .0
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(self.0.len());
            if end == 0 || end > 3 {
                return Err("expected hours, minutes or seconds".into());
            }
            let n: i32 = std::str::from_utf8(&self.0[..end])
                .unwrap()
                .parse()
                .unwrap();
            total += n * scale;
            self.0 = &self.0[end..];
        }
        Ok(sign * total)
    }

    /// `Jn`, `n` or `Mm.w.d`, then `/time` (02:00 by default; RFC 8536
    /// allows -167..=167 hours).
    fn rule_date(&mut self) -> Result<(RuleDate, i32), String> {
        let number = |c: &mut Cursor| -> Result<u16, String> {
            let end =
                c.0.iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(c.0.len());
            let n = std::str::from_utf8(&c.0[..end])
                .unwrap()
                .parse()
                .map_err(|_| "expected a number")?;
            c.0 = &c.0[end..];
            Ok(n)
        };
        let date = match self.0.first() {
            Some(b'J') => {
                self.0 = &self.0[1..];
                match number(self)? {
                    n @ 1..=365 => RuleDate::Julian1(n),
                    n => return Err(format!("J{n} is not a day 1..365")),
                }
            }
            Some(b'M') => {
                self.0 = &self.0[1..];
                let m = number(self)?;
                self.expect(b'.')?;
                let w = number(self)?;
                self.expect(b'.')?;
                let d = number(self)?;
                if !(1..=12).contains(&m) || !(1..=5).contains(&w) || d > 6 {
                    return Err(format!("M{m}.{w}.{d} is not a month, week and weekday"));
                }
                RuleDate::MonthWeekDay(m as u8, w as u8, d as u8)
            }
            _ => match number(self)? {
                n @ 0..=365 => RuleDate::Julian0(n),
                n => return Err(format!("{n} is not a day 0..365")),
            },
        };
        let time = if self.0.first() == Some(&b'/') {
            self.0 = &self.0[1..];
            self.hms(false)?
        } else {
            7200
        };
        Ok((date, time))
    }
}

#[cfg(test)]
mod tests;
