//! What a scenario measured and which of its bounds broke: one line each as it ends, a markdown
//! table and JSON at the end.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Context, Error};

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub passed: bool,
    pub figures: Vec<Figure>,
    /// One message per broken bound (or why the scenario could not run).
    pub failures: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Figure {
    pub name: &'static str,
    pub value: Value,
    pub unit: &'static str,
}

impl Report {
    pub fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
            passed: true,
            figures: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub fn figure(&mut self, name: &'static str, value: impl Into<Value>, unit: &'static str) {
        self.figures.push(Figure {
            name,
            value: value.into(),
            unit,
        });
    }

    /// A figure in MiB, to a tenth, from KiB.
    pub fn mib(&mut self, name: &'static str, kib: u64) {
        self.figure(name, mib(kib), "MiB");
    }

    pub fn fail(&mut self, message: impl Into<String>) {
        self.passed = false;
        self.failures.push(message.into());
    }

    /// Records `message` as a broken bound unless `holds`.
    pub fn bound(&mut self, holds: bool, message: impl FnOnce() -> String) {
        if !holds {
            self.fail(message());
        }
    }

    /// Ends the report of a scenario that could not run to its end.
    pub fn broken(mut self, err: &Error) -> Self {
        self.fail(format!("could not run: {err}"));
        self
    }

    pub fn figures_text(&self) -> String {
        let shown: Vec<String> = self
            .figures
            .iter()
            .map(|figure| {
                let value = match &figure.value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                match figure.unit {
                    "" => format!("{} {value}", figure.name),
                    unit => format!("{} {value} {unit}", figure.name),
                }
            })
            .collect();
        shown.join(", ")
    }

    pub fn line(&self) -> String {
        let mut line = format!(
            "{}: {}: {}",
            self.scenario,
            verdict(self),
            self.figures_text()
        );
        for failure in &self.failures {
            line.push_str(&format!("\n  FAILED: {failure}"));
        }
        line
    }
}

/// How many answers of each kind a worker saw, with the first few noted ones spelled out.
#[derive(Debug, Default)]
pub struct Tally {
    counts: BTreeMap<&'static str, u64>,
    examples: Vec<String>,
}

const EXAMPLES: usize = 3;

impl Tally {
    pub fn count(&mut self, outcome: &'static str) {
        *self.counts.entry(outcome).or_default() += 1;
    }

    /// Counts an outcome, keeping its description if it is among the first few noted.
    pub fn note(&mut self, outcome: &'static str, example: impl FnOnce() -> String) {
        self.count(outcome);
        if self.examples.len() < EXAMPLES {
            self.examples.push(example());
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (outcome, count) in other.counts {
            *self.counts.entry(outcome).or_default() += count;
        }
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    pub fn get(&self, outcome: &str) -> u64 {
        self.counts.get(outcome).copied().unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The first noted descriptions, for a failure message or a figure.
    pub fn examples(&self) -> String {
        self.examples.join("; ")
    }
}

/// Seconds, to a tenth.
pub fn tenths(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

pub fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn verdict(report: &Report) -> &'static str {
    if report.passed {
        "passed"
    } else {
        "FAILED"
    }
}

pub fn markdown(reports: &[Report]) -> String {
    let mut table =
        String::from("| scenario | result | figures | broken bounds |\n|---|---|---|---|\n");
    for report in reports {
        let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            report.scenario,
            verdict(report),
            cell(&report.figures_text()),
            cell(&report.failures.join("; ")),
        ));
    }
    table
}

pub fn write_json(path: &Path, reports: &[Report]) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(reports).context("cannot encode the figures")?;
    std::fs::write(path, json + "\n").context(format!("cannot write {}", path.display()))
}
