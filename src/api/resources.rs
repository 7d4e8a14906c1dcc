//! Per-process host limits from unit files: `resources` (enforced through
//! a cgroup per pod), `rlimits` (setrlimit in the child) and `umask`.
//! Types and parsing only: `runtime/` applies them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `resources = { memory = "256Mi", cpu = "0.5", pids = 100 }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryQuantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuQuantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpu.is_none() && self.pids.is_none()
    }
}

/// Bytes, written as Kubernetes quantities: "256Mi", "1Gi", "500M", "1024".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MemoryQuantity(pub u64);

/// Thousandths of a core, written "0.5", "2" or "500m".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CpuQuantity(pub u64);

/// Why a quantity was rejected; the message is shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("expected a size such as \"256Mi\", \"1Gi\" or \"500M\"")]
    Memory,
    #[error("expected a number of cores such as \"0.5\", \"2\" or \"500m\"")]
    Cpu,
    #[error("quantity is too large")]
    Overflow,
}

const MEMORY_SUFFIXES: [(&str, u64); 12] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

pub fn parse_memory(text: &str) -> Result<u64, QuantityError> {
    let s = text.trim();
    let (digits, factor) = MEMORY_SUFFIXES
        .iter()
        .find_map(|(suffix, f)| s.strip_suffix(suffix).map(|d| (d, *f)))
        .unwrap_or((s, 1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::Memory);
    }
    let n: u64 = digits.parse().map_err(|_| QuantityError::Overflow)?;
    n.checked_mul(factor).ok_or(QuantityError::Overflow)
}

pub fn parse_cpu(text: &str) -> Result<u64, QuantityError> {
    let s = text.trim();
    if let Some(m) = s.strip_suffix('m') {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QuantityError::Cpu);
        }
        return m.parse().map_err(|_| QuantityError::Overflow);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return Err(QuantityError::Cpu);
    }
    if frac.len() > 3 {
        return Err(QuantityError::Cpu);
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| QuantityError::Overflow)?
    };
    let f: u64 = format!("{frac:0<3}").parse().unwrap_or(0);
    w.checked_mul(1000)
        .and_then(|w| w.checked_add(f))
        .ok_or(QuantityError::Overflow)
}

impl TryFrom<String> for MemoryQuantity {
    type Error = QuantityError;
    fn try_from(s: String) -> Result<Self, QuantityError> {
        parse_memory(&s).map(MemoryQuantity)
    }
}

impl fmt::Display for MemoryQuantity {
    /// The largest binary suffix that divides the value exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, factor) in MEMORY_SUFFIXES[..6].iter().rev() {
            if self.0 >= *factor && self.0 % factor == 0 {
                return write!(f, "{}{suffix}", self.0 / factor);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl From<MemoryQuantity> for String {
    fn from(q: MemoryQuantity) -> String {
        q.to_string()
    }
}

impl TryFrom<String> for CpuQuantity {
    type Error = QuantityError;
    fn try_from(s: String) -> Result<Self, QuantityError> {
        parse_cpu(&s).map(CpuQuantity)
    }
}

impl fmt::Display for CpuQuantity {
    /// Kubernetes' canonical form: whole cores as "2", else "500m".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl From<CpuQuantity> for String {
    fn from(q: CpuQuantity) -> String {
        q.to_string()
    }
}

/// One `rlimits` value: a number (soft and hard limit alike) or
/// "unlimited".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RlimitValue {
    Limit(u64),
    #[serde(with = "unlimited")]
    Unlimited,
}

mod unlimited {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("unlimited")
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "unlimited" {
            Ok(())
        } else {
            Err(serde::de::Error::custom(
                "expected a number or \"unlimited\"",
            ))
        }
    }
}

/// A file mode creation mask, written as an octal string ("0027").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Umask(pub u32);

impl TryFrom<String> for Umask {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        let ok = !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !ok {
            return Err(format!(
                "`{s}` is not a umask: write 3 or 4 octal digits, such as \"0027\""
            ));
        }
        Ok(Umask(u32::from_str_radix(t, 8).expect("octal digits")))
    }
}

impl From<Umask> for String {
    fn from(u: Umask) -> String {
        format!("{:04o}", u.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities() {
        assert_eq!(parse_memory("256Mi"), Ok(256 << 20));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("500M"), Ok(500_000_000));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("1.5Gi"), Err(QuantityError::Memory));
        assert_eq!(parse_memory("Mi"), Err(QuantityError::Memory));
        assert_eq!(parse_memory("-1"), Err(QuantityError::Memory));
        assert_eq!(parse_memory("99999999999Ei"), Err(QuantityError::Overflow));
        assert_eq!(MemoryQuantity(256 << 20).to_string(), "256Mi");
        assert_eq!(MemoryQuantity(1000).to_string(), "1000");
    }

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu("2"), Ok(2000));
        assert_eq!(parse_cpu("500m"), Ok(500));
        assert_eq!(parse_cpu(".25"), Ok(250));
        assert_eq!(parse_cpu("0.0001"), Err(QuantityError::Cpu));
        assert_eq!(parse_cpu("half"), Err(QuantityError::Cpu));
        assert_eq!(parse_cpu("m"), Err(QuantityError::Cpu));
        assert_eq!(CpuQuantity(500).to_string(), "500m");
        assert_eq!(CpuQuantity(2000).to_string(), "2");
    }

    #[test]
    fn rlimits_and_umask() {
        let v: RlimitValue = serde_json::from_str("65536").unwrap();
        assert_eq!(v, RlimitValue::Limit(65536));
        let v: RlimitValue = serde_json::from_str("\"unlimited\"").unwrap();
        assert_eq!(v, RlimitValue::Unlimited);
        assert!(serde_json::from_str::<RlimitValue>("\"lots\"").is_err());
        assert_eq!(
            serde_json::to_string(&RlimitValue::Unlimited).unwrap(),
            "\"unlimited\""
        );
        assert_eq!(Umask::try_from("0027".to_string()), Ok(Umask(0o027)));
        assert_eq!(String::from(Umask(0o22)), "0022");
        assert!(Umask::try_from("0089".to_string()).is_err());
    }
}
