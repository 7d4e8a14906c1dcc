//! The cgroup controllers drover uses, as a small set type. Pure.

use std::fmt;

/// One controller. `Cpuacct` and `Freezer` exist only in cgroup v1 (v2
/// accounts CPU time and freezes in every cgroup, without a controller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
    Cpuacct,
    Freezer,
}

impl Controller {
    pub const ALL: [Controller; 5] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Pids,
        Controller::Cpuacct,
        Controller::Freezer,
    ];

    /// The name the kernel uses (mount options, cgroup.controllers).
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
            Controller::Cpuacct => "cpuacct",
            Controller::Freezer => "freezer",
        }
    }

    pub fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of controllers.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Controllers(u8);

impl Controllers {
    pub const NONE: Controllers = Controllers(0);
    /// What limits need (`resources`: memory, cpu, pids).
    pub const LIMITS: Controllers = Controllers(0b111);
    /// What a v1 host must offer for everything to work: the limits, CPU
    /// accounting, and the freezer for a race-free whole-tree kill.
    pub const V1_WANTED: Controllers = Controllers(0b1_1111);

    pub fn of(list: &[Controller]) -> Controllers {
        list.iter().fold(Controllers::NONE, |s, c| s.with(*c))
    }

    /// The controllers named in a space- or comma-separated list
    /// (`cgroup.controllers`, v1 mount options); other words are ignored.
    pub fn parse(text: &str) -> Controllers {
        text.split([' ', ',', '\n'])
            .filter_map(Controller::from_name)
            .fold(Controllers::NONE, |s, c| s.with(c))
    }

    pub fn with(self, c: Controller) -> Controllers {
        Controllers(self.0 | c.bit())
    }

    pub fn contains(self, c: Controller) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersect(self, other: Controllers) -> Controllers {
        Controllers(self.0 & other.0)
    }

    pub fn union(self, other: Controllers) -> Controllers {
        Controllers(self.0 | other.0)
    }

    /// How many of the limit controllers (memory, cpu, pids) are here:
    /// how a hierarchy is ranked against another.
    pub fn limit_count(self) -> u32 {
        (self.0 & Controllers::LIMITS.0).count_ones()
    }

    pub fn iter(self) -> impl Iterator<Item = Controller> {
        Controller::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl fmt::Display for Controllers {
    /// "memory, cpu, pids", or "none".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Controller::name).collect();
        f.write_str(&names.join(", "))
    }
}

impl fmt::Debug for Controllers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ignores_other_words_and_counts_limits() {
        let s = Controllers::parse("cpuset cpu io memory hugetlb pids rdma misc");
        assert_eq!(s.to_string(), "memory, cpu, pids");
        assert_eq!(s.limit_count(), 3);
        let v1 = Controllers::parse("rw,cpu,cpuacct");
        assert_eq!(v1, Controllers::of(&[Controller::Cpu, Controller::Cpuacct]));
        assert_eq!(v1.limit_count(), 1);
        assert_eq!(Controllers::parse("rw,name=systemd"), Controllers::NONE);
        assert_eq!(Controllers::NONE.to_string(), "none");
        assert_eq!(
            Controllers::V1_WANTED.to_string(),
            "memory, cpu, pids, cpuacct, freezer"
        );
    }
}
