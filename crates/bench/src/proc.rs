//! What the report reads from `/proc`: a process's peak RSS and CPU time, the machine's CPU,
//! memory and load. Read here rather than with the procfs crate: five fields of five files are
//! these few lines, procfs would add a dozen crates to the tree.

use std::time::Duration;

/// Linux's `USER_HZ`: 100 on every architecture Rust targets.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// A process whose figures are read: this one (the load generator) or a child.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    Own,
    Child(u32),
}

impl Process {
    fn read(self, file: &str) -> Option<String> {
        let path = match self {
            Process::Own => format!("/proc/self/{file}"),
            Process::Child(pid) => format!("/proc/{pid}/{file}"),
        };
        std::fs::read_to_string(path).ok()
    }

    /// Peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(self) -> Option<u64> {
        let status = self.read("status")?;
        first_number_after(&status, "VmHWM:")
    }

    /// User + system CPU time so far.
    pub fn cpu_time(self) -> Option<Duration> {
        let stat = self.read("stat")?;
        // The command name is in parentheses and may hold spaces: count fields after the last ')'.
        let after = stat.get(stat.rfind(')')? + 1..)?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line; 'state' (field 3) is fields[0].
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Duration::from_millis(
            (utime + stime) * 1000 / CLOCK_TICKS_PER_SECOND,
        ))
    }
}

/// The number after the line start `key` (`VmHWM:    1234 kB`).
fn first_number_after(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

pub fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| first_number_after(&info, "MemTotal:"))
        .map_or(0, |kib| kib / 1024)
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|avg| avg.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_figures_and_the_machines() {
        assert!(Process::Own.cpu_time().is_some());
        assert!(Process::Own.peak_rss_kib().is_some_and(|kib| kib > 0));
        assert!(memory_mib() > 0);
        assert_eq!(load_average().split(' ').count(), 3);
    }
}
