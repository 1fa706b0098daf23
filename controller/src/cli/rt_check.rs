//! `takt rt-check`: the RT self-check of [`crate::rt::check`], printed without running.
//!
//! The same findings `takt run` logs at start and refuses on with `--require-rt`; the exit
//! status is 0 when nothing falls short (advice does not count), 1 otherwise, so a deployment
//! script can gate on it.

use std::process::ExitCode;

use crate::rt::check::{Finding, RtReport, RtWanted, Verdict, assess, gather};

/// Arguments of `takt rt-check`.
#[derive(Debug, clap::Args)]
pub struct RtCheckArgs {
    /// The SCHED_FIFO priority the cycle thread will ask for (as `takt run --priority`).
    #[arg(long, value_name = "1-99", default_value_t = 80)]
    pub priority: u8,
    /// The CPU the cycle thread will be pinned to (as `takt run --cpu`).
    #[arg(long, value_name = "N")]
    pub cpu: Option<usize>,
}

/// Runs `takt rt-check`.
pub fn rt_check(args: RtCheckArgs) -> ExitCode {
    let report = assess(
        &gather(),
        &RtWanted {
            priority: args.priority,
            cpu: args.cpu,
        },
    );
    println!(
        "takt rt-check: SCHED_FIFO {}, CPU {}",
        args.priority,
        args.cpu
            .map_or_else(|| "not pinned".into(), |c| c.to_string())
    );
    for f in &report.findings {
        println!("{}", line(f));
        if let Some(fix) = &f.fix {
            println!("  {:<9} {:<15} fix: {fix}", "", "");
        }
    }
    println!("{}", summary(&report));
    if report.ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The label of a verdict, aligned in reports.
pub fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Advice => "advice",
        Verdict::Shortfall => "SHORTFALL",
    }
}

/// One finding on one line: verdict, check, detail.
pub fn line(f: &Finding) -> String {
    format!(
        "  {:<9} {:<15} {}",
        label(f.verdict),
        f.check.name(),
        f.detail
    )
}

/// The closing line.
pub fn summary(report: &RtReport) -> String {
    let short = report.shortfalls().count();
    let advice = report
        .findings
        .iter()
        .filter(|f| f.verdict == Verdict::Advice)
        .count();
    if short == 0 {
        format!("result: ready for real time ({advice} advice)")
    } else {
        format!(
            "result: not ready for real time: {short} shortfall(s), {advice} advice \
             (takt run --require-rt refuses to start)"
        )
    }
}

/// The self-check `takt run` does at start: every finding as a log line (shortfalls and
/// advice as warnings), and with `require_rt` a refusal when anything falls short.
pub fn at_start(priority: u8, cpu: Option<usize>, require_rt: bool) -> Result<(), String> {
    let report = assess(&gather(), &RtWanted { priority, cpu });
    for f in &report.findings {
        let fix = f
            .fix
            .as_deref()
            .map(|x| format!(" (fix: {x})"))
            .unwrap_or_default();
        match f.verdict {
            Verdict::Ok => tracing::info!("rt-check {}: {}", f.check.name(), f.detail),
            Verdict::Advice | Verdict::Shortfall => tracing::warn!(
                "rt-check {} {}: {}{fix}",
                f.check.name(),
                label(f.verdict),
                f.detail
            ),
        }
    }
    if require_rt && !report.ready() {
        return Err(refusal(&report));
    }
    Ok(())
}

/// The refusal of `--require-rt`: every shortfall with its fix.
fn refusal(report: &RtReport) -> String {
    let mut text = String::from("--require-rt: this host falls short of real time:");
    for f in report.shortfalls() {
        text.push_str(&format!("\n  {}: {}", f.check.name(), f.detail));
        if let Some(fix) = &f.fix {
            text.push_str(&format!("\n    fix: {fix}"));
        }
    }
    text.push_str("\n(`takt rt-check` prints the whole self-check)");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::check::{DmaLatencyAccess, Limit, RtFacts};

    #[test]
    fn the_refusal_names_each_shortfall_and_its_fix() {
        let facts = RtFacts {
            realtime_sysfs: Some(true),
            kernel_release: "6.1.0-56-rt-amd64".into(),
            kernel_version: "#1 SMP PREEMPT_RT".into(),
            rtprio: Limit {
                soft: Some(0),
                hard: Some(0),
            },
            memlock_bytes: Limit::UNLIMITED,
            cap_sys_nice: false,
            cap_ipc_lock: false,
            online_cpus: vec![0, 1],
            affinity: vec![0, 1],
            isolated_cpus: vec![],
            nohz_full_cpus: vec![],
            rcu_nocbs_cpus: vec![],
            dma_latency: DmaLatencyAccess::Writable,
        };
        let report = assess(
            &facts,
            &RtWanted {
                priority: 95,
                cpu: None,
            },
        );
        let text = refusal(&report);
        assert!(text.contains("rtprio: SCHED_FIFO 95 refused"), "{text}");
        assert!(text.contains("fix: add LimitRTPRIO=95 to the unit, or `ulimit -r 95`"));
        assert!(!text.contains("cpu:"), "advice is not a refusal: {text}");
        assert!(summary(&report).contains("1 shortfall(s), 1 advice"));
    }
}
