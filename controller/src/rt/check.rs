//! The RT self-check: can this host run the cycle in real time, and if not, what must change.
//!
//! [`gather`] reads the facts (kernel, resource limits, capabilities, CPUs, the PM QoS
//! device) into [`RtFacts`]; [`assess`] turns facts plus what the run asks for into
//! [`Finding`]s, each `Ok`, `Advice` (tuning that lowers latency; the loop still runs in real
//! time without it) or `Shortfall` (a real-time guarantee is missing). `takt rt-check` prints
//! them, `takt run` logs them at start, and `takt run --require-rt` refuses to start on any
//! shortfall. Keeping the decision apart from the reading is what lets it be tested on fake
//! hosts.
//!
//! Where each fact comes from:
//! - PREEMPT_RT: `/sys/kernel/realtime` (reads `1` on PREEMPT_RT kernels) and `uname -v`
//!   (`PREEMPT_RT` in the version string);
//! - RLIMIT_RTPRIO, RLIMIT_MEMLOCK: getrlimit(2); CAP_SYS_NICE and CAP_IPC_LOCK lift them
//!   (capabilities(7)), read from `CapEff` in `/proc/self/status`;
//! - CPUs: `/sys/devices/system/cpu/{online,isolated,nohz_full}`, `rcu_nocbs=` on
//!   `/proc/cmdline`, the process' affinity from sched_getaffinity(2);
//! - `/dev/cpu_dma_latency`: the PM QoS interface; holding it open with 0 written keeps the
//!   CPUs out of deep C-states for as long as the file is open (what cyclictest does).

use std::fs;
use std::io;

/// CAP_IPC_LOCK: lock memory beyond RLIMIT_MEMLOCK (linux/capability.h).
const CAP_IPC_LOCK: u32 = 14;
/// CAP_SYS_NICE: real-time priorities beyond RLIMIT_RTPRIO (linux/capability.h).
const CAP_SYS_NICE: u32 = 23;

/// The path of the PM QoS CPU latency device.
pub const CPU_DMA_LATENCY: &str = "/dev/cpu_dma_latency";

/// A resource limit; `None` is unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit, the one enforced.
    pub soft: Option<u64>,
    /// The hard limit, the most an unprivileged process may raise the soft one to.
    pub hard: Option<u64>,
}

impl Limit {
    /// No limit at all.
    pub const UNLIMITED: Limit = Limit {
        soft: None,
        hard: None,
    };
}

/// Whether the PM QoS CPU latency device can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaLatencyAccess {
    /// It opens for writing.
    Writable,
    /// It exists but opening it for writing was refused.
    Denied,
    /// The kernel has no such device.
    Missing,
}

/// What the host offers, as read by [`gather`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtFacts {
    /// `/sys/kernel/realtime` reads `1` (`None`: the file does not exist).
    pub realtime_sysfs: Option<bool>,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v`.
    pub kernel_version: String,
    /// RLIMIT_RTPRIO.
    pub rtprio: Limit,
    /// RLIMIT_MEMLOCK, bytes.
    pub memlock_bytes: Limit,
    /// The process holds CAP_SYS_NICE.
    pub cap_sys_nice: bool,
    /// The process holds CAP_IPC_LOCK.
    pub cap_ipc_lock: bool,
    /// CPUs online.
    pub online_cpus: Vec<usize>,
    /// CPUs the process may run on now.
    pub affinity: Vec<usize>,
    /// CPUs isolated from the scheduler (`isolcpus=`).
    pub isolated_cpus: Vec<usize>,
    /// CPUs without the periodic tick (`nohz_full=`).
    pub nohz_full_cpus: Vec<usize>,
    /// CPUs whose RCU callbacks are offloaded (`rcu_nocbs=` on the kernel command line).
    pub rcu_nocbs_cpus: Vec<usize>,
    /// `/dev/cpu_dma_latency`.
    pub dma_latency: DmaLatencyAccess,
}

/// What the run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtWanted {
    /// SCHED_FIFO priority of the cycle thread.
    pub priority: u8,
    /// The CPU the cycle thread is pinned to (`--cpu`).
    pub cpu: Option<usize>,
}

/// What one check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The kernel is PREEMPT_RT.
    Kernel,
    /// SCHED_FIFO at the priority asked for is allowed.
    RtPrio,
    /// mlockall(MCL_CURRENT | MCL_FUTURE) is allowed.
    MemLock,
    /// The CPU the cycle runs on, and whether it is isolated.
    Cpu,
    /// `/dev/cpu_dma_latency` can be held at 0.
    DmaLatency,
}

impl Check {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Check::Kernel => "kernel",
            Check::RtPrio => "rtprio",
            Check::MemLock => "memlock",
            Check::Cpu => "cpu",
            Check::DmaLatency => "cpu_dma_latency",
        }
    }
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// As it should be.
    Ok,
    /// Real time works, but this tuning would lower latency.
    Advice,
    /// A real-time guarantee is missing: `--require-rt` refuses to start.
    Shortfall,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked.
    pub check: Check,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// How to fix it (for advice and shortfalls).
    pub fix: Option<String>,
}

/// Every finding of one self-check, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtReport {
    /// Kernel, RLIMIT_RTPRIO, RLIMIT_MEMLOCK, CPU, `/dev/cpu_dma_latency`.
    pub findings: Vec<Finding>,
}

impl RtReport {
    /// The findings that make `--require-rt` refuse.
    pub fn shortfalls(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Shortfall)
    }

    /// No shortfall.
    pub fn ready(&self) -> bool {
        self.shortfalls().next().is_none()
    }

    /// The finding of one check.
    pub fn get(&self, check: Check) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }
}

/// Decides every check from the facts and what the run asks for.
pub fn assess(facts: &RtFacts, wanted: &RtWanted) -> RtReport {
    RtReport {
        findings: vec![
            kernel(facts),
            rtprio(facts, wanted.priority),
            memlock(facts),
            cpu(facts, wanted.cpu),
            dma_latency(facts),
        ],
    }
}

fn finding(check: Check, verdict: Verdict, detail: String, fix: Option<String>) -> Finding {
    Finding {
        check,
        verdict,
        detail,
        fix,
    }
}

fn kernel(f: &RtFacts) -> Finding {
    let in_version = f.kernel_version.contains("PREEMPT_RT");
    let sysfs = match f.realtime_sysfs {
        Some(true) => "/sys/kernel/realtime = 1",
        Some(false) => "/sys/kernel/realtime = 0",
        None => "no /sys/kernel/realtime",
    };
    let detail = format!("{} {} ({sysfs})", f.kernel_release, f.kernel_version);
    if f.realtime_sysfs == Some(true) || in_version {
        finding(
            Check::Kernel,
            Verdict::Ok,
            format!("PREEMPT_RT: {detail}"),
            None,
        )
    } else {
        finding(
            Check::Kernel,
            Verdict::Shortfall,
            format!("not a PREEMPT_RT kernel: {detail}"),
            Some(
                "boot a PREEMPT_RT kernel (Debian: `apt install linux-image-rt-amd64`, then reboot into it)"
                    .into(),
            ),
        )
    }
}

fn show_limit(l: Option<u64>) -> String {
    l.map_or_else(|| "unlimited".into(), |v| v.to_string())
}

fn show_bytes(l: Option<u64>) -> String {
    match l {
        None => "unlimited".into(),
        Some(b) if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        Some(b) if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        Some(b) => format!("{b} bytes"),
    }
}

fn rtprio(f: &RtFacts, priority: u8) -> Finding {
    let limits = format!(
        "RLIMIT_RTPRIO soft {}, hard {}",
        show_limit(f.rtprio.soft),
        show_limit(f.rtprio.hard)
    );
    let enough = f.rtprio.soft.is_none_or(|s| s >= u64::from(priority));
    if f.cap_sys_nice {
        finding(
            Check::RtPrio,
            Verdict::Ok,
            format!("SCHED_FIFO {priority} allowed: CAP_SYS_NICE ({limits})"),
            None,
        )
    } else if enough {
        finding(
            Check::RtPrio,
            Verdict::Ok,
            format!("SCHED_FIFO {priority} allowed: {limits}"),
            None,
        )
    } else {
        finding(
            Check::RtPrio,
            Verdict::Shortfall,
            format!("SCHED_FIFO {priority} refused: {limits}, no CAP_SYS_NICE"),
            Some(format!(
                "add LimitRTPRIO={priority} to the unit, or `ulimit -r {priority}` in the shell \
                 (raising the hard limit needs root: `@takt - rtprio {priority}` in \
                 /etc/security/limits.d/takt.conf)"
            )),
        )
    }
}

fn memlock(f: &RtFacts) -> Finding {
    let limits = format!(
        "RLIMIT_MEMLOCK soft {}, hard {}",
        show_bytes(f.memlock_bytes.soft),
        show_bytes(f.memlock_bytes.hard)
    );
    if f.cap_ipc_lock {
        finding(
            Check::MemLock,
            Verdict::Ok,
            format!("mlockall allowed: CAP_IPC_LOCK ({limits})"),
            None,
        )
    } else if f.memlock_bytes.soft.is_none() {
        finding(
            Check::MemLock,
            Verdict::Ok,
            format!("mlockall allowed: {limits}"),
            None,
        )
    } else {
        // MCL_FUTURE locks every later mapping too: any finite limit is eventually hit, and
        // a page fault in the cycle is exactly what locking is there to prevent.
        finding(
            Check::MemLock,
            Verdict::Shortfall,
            format!("mlockall(MCL_CURRENT | MCL_FUTURE) needs an unlimited lock: {limits}"),
            Some(
                "add LimitMEMLOCK=infinity to the unit, or `ulimit -l unlimited` in the shell \
                 (`@takt - memlock unlimited` in /etc/security/limits.d/takt.conf)"
                    .into(),
            ),
        )
    }
}

/// `0-3,5,7-8` as the kernel writes CPU lists; the empty string is the empty list.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                if a > b {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The inverse of [`parse_cpu_list`], for reports.
pub fn show_cpu_list(cpus: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{}-{}", cpus[i], cpus[j]));
        } else {
            out.push_str(&cpus[i].to_string());
        }
        i = j + 1;
    }
    if out.is_empty() { "none".into() } else { out }
}

fn cpu(f: &RtFacts, wanted: Option<usize>) -> Finding {
    // A process started with a single-CPU affinity (systemd CPUAffinity=N, taskset) is
    // pinned without --cpu.
    let pinned = wanted.or(match f.affinity.as_slice() {
        [only] => Some(*only),
        _ => None,
    });
    let Some(cpu) = pinned else {
        return finding(
            Check::Cpu,
            Verdict::Advice,
            format!(
                "the cycle thread is not pinned: it may run on CPUs {} (isolated: {})",
                show_cpu_list(&f.affinity),
                show_cpu_list(&f.isolated_cpus)
            ),
            Some(
                "reserve a CPU for the cycle (kernel command line `isolcpus=N nohz_full=N \
                 rcu_nocbs=N`) and pin the cycle thread to it with --cpu N"
                    .into(),
            ),
        );
    };
    if !f.online_cpus.contains(&cpu) {
        return finding(
            Check::Cpu,
            Verdict::Shortfall,
            format!(
                "CPU {cpu} is not online (online: {})",
                show_cpu_list(&f.online_cpus)
            ),
            Some(format!(
                "pick an online CPU with --cpu (one of {})",
                show_cpu_list(&f.online_cpus)
            )),
        );
    }
    let isolated = f.isolated_cpus.contains(&cpu);
    let nohz = f.nohz_full_cpus.contains(&cpu);
    let nocbs = f.rcu_nocbs_cpus.contains(&cpu);
    let detail = format!(
        "the cycle thread is pinned to CPU {cpu}: isolcpus {}, nohz_full {}, rcu_nocbs {}",
        yes_no(isolated),
        yes_no(nohz),
        yes_no(nocbs)
    );
    if isolated && nohz && nocbs {
        finding(Check::Cpu, Verdict::Ok, detail, None)
    } else {
        finding(
            Check::Cpu,
            Verdict::Advice,
            detail,
            Some(format!(
                "add `isolcpus={cpu} nohz_full={cpu} rcu_nocbs={cpu}` to the kernel command line \
                 so nothing else runs on CPU {cpu} and it takes no scheduler tick or RCU work"
            )),
        )
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn dma_latency(f: &RtFacts) -> Finding {
    match f.dma_latency {
        DmaLatencyAccess::Writable => finding(
            Check::DmaLatency,
            Verdict::Ok,
            format!("{CPU_DMA_LATENCY} writable: takt run holds it at 0 µs while it runs"),
            None,
        ),
        DmaLatencyAccess::Denied => finding(
            Check::DmaLatency,
            Verdict::Shortfall,
            format!(
                "{CPU_DMA_LATENCY} not writable: the CPUs may sleep in deep C-states and wake late"
            ),
            Some(
                "let the service's group write it: the takt package's udev rule \
                 (60-takt.rules: GROUP=\"takt\", MODE=\"0660\"), then `udevadm trigger`"
                    .into(),
            ),
        ),
        DmaLatencyAccess::Missing => finding(
            Check::DmaLatency,
            Verdict::Advice,
            format!("no {CPU_DMA_LATENCY}: C-states cannot be limited from user space"),
            Some(
                "limit C-states on the kernel command line (`processor.max_cstate=1 \
                 intel_idle.max_cstate=0`) or in the firmware setup"
                    .into(),
            ),
        ),
    }
}

/// Reads the facts of this host and process.
pub fn gather() -> RtFacts {
    let (kernel_release, kernel_version) = uname();
    let caps = read("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let cpus = |path: &str| {
        read(path)
            .and_then(|s| parse_cpu_list(&s))
            .unwrap_or_default()
    };
    let rcu_nocbs_cpus = read("/proc/cmdline")
        .and_then(|c| {
            c.split_whitespace()
                .find_map(|w| w.strip_prefix("rcu_nocbs="))
                .and_then(parse_cpu_list)
        })
        .unwrap_or_default();
    RtFacts {
        realtime_sysfs: read("/sys/kernel/realtime").map(|s| s.trim() == "1"),
        kernel_release,
        kernel_version,
        rtprio: rlimit(libc::RLIMIT_RTPRIO),
        memlock_bytes: rlimit(libc::RLIMIT_MEMLOCK),
        cap_sys_nice: caps & (1 << CAP_SYS_NICE) != 0,
        cap_ipc_lock: caps & (1 << CAP_IPC_LOCK) != 0,
        online_cpus: cpus("/sys/devices/system/cpu/online"),
        affinity: affinity(),
        isolated_cpus: cpus("/sys/devices/system/cpu/isolated"),
        nohz_full_cpus: cpus("/sys/devices/system/cpu/nohz_full"),
        rcu_nocbs_cpus,
        dma_latency: dma_latency_access(),
    }
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn uname() -> (String, String) {
    // SAFETY: utsname is plain data (arrays of c_char); zeroed is a valid value and uname
    // fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (text(&u.release), text(&u.version))
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Limit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid `r`.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return Limit {
            soft: Some(0),
            hard: Some(0),
        };
    }
    let value = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Limit {
        soft: value(r.rlim_cur),
        hard: value(r.rlim_max),
    }
}

fn affinity() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set, which sched_getaffinity
    // overwrites with exactly size_of::<cpu_set_t>() bytes.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above; pid 0 is the calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    let max = 8 * core::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET reads inside the valid `set` (the index is below its size in bits).
    (0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

fn dma_latency_access() -> DmaLatencyAccess {
    // Opening adds a PM QoS request at the default (no constraint) and closing removes it:
    // the probe changes nothing.
    match fs::OpenOptions::new().write(true).open(CPU_DMA_LATENCY) {
        Ok(_) => DmaLatencyAccess::Writable,
        Err(e) if e.kind() == io::ErrorKind::NotFound => DmaLatencyAccess::Missing,
        Err(_) => DmaLatencyAccess::Denied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tuned PREEMPT_RT host: every check passes.
    fn tuned() -> RtFacts {
        RtFacts {
            realtime_sysfs: Some(true),
            kernel_release: "6.1.0-56-rt-amd64".into(),
            kernel_version: "#1 SMP PREEMPT_RT Debian 6.1.158-1".into(),
            rtprio: Limit {
                soft: Some(95),
                hard: Some(95),
            },
            memlock_bytes: Limit::UNLIMITED,
            cap_sys_nice: false,
            cap_ipc_lock: false,
            online_cpus: vec![0, 1, 2, 3],
            affinity: vec![0, 1],
            isolated_cpus: vec![3],
            nohz_full_cpus: vec![3],
            rcu_nocbs_cpus: vec![3],
            dma_latency: DmaLatencyAccess::Writable,
        }
    }

    const WANTED: RtWanted = RtWanted {
        priority: 80,
        cpu: Some(3),
    };

    fn verdict(facts: &RtFacts, wanted: &RtWanted, check: Check) -> Verdict {
        assess(facts, wanted).get(check).map(|f| f.verdict).unwrap()
    }

    #[test]
    fn a_tuned_host_passes_every_check() {
        let report = assess(&tuned(), &WANTED);
        assert!(report.ready());
        assert!(
            report.findings.iter().all(|f| f.verdict == Verdict::Ok),
            "{report:#?}"
        );
        assert_eq!(report.findings.len(), 5);
    }

    #[test]
    fn a_kernel_without_preempt_rt_is_a_shortfall_either_source_suffices() {
        let mut f = tuned();
        f.realtime_sysfs = None;
        f.kernel_version = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1".into();
        assert_eq!(verdict(&f, &WANTED, Check::Kernel), Verdict::Shortfall);
        let r = assess(&f, &WANTED);
        assert!(
            r.get(Check::Kernel)
                .and_then(|k| k.fix.as_deref())
                .is_some_and(|fix| fix.contains("linux-image-rt-amd64"))
        );
        // Older RT kernels have no sysfs flag but say so in uname -v.
        f.kernel_version = "#1 SMP PREEMPT_RT Debian".into();
        assert_eq!(verdict(&f, &WANTED, Check::Kernel), Verdict::Ok);
        f.kernel_version = "#1 SMP".into();
        f.realtime_sysfs = Some(true);
        assert_eq!(verdict(&f, &WANTED, Check::Kernel), Verdict::Ok);
    }

    #[test]
    fn rtprio_below_the_priority_is_a_shortfall_unless_cap_sys_nice() {
        let mut f = tuned();
        f.rtprio = Limit {
            soft: Some(0),
            hard: Some(0),
        };
        let r = assess(&f, &WANTED);
        let rt = r.get(Check::RtPrio).unwrap();
        assert_eq!(rt.verdict, Verdict::Shortfall);
        let fix = rt.fix.as_deref().unwrap();
        assert!(
            fix.contains("LimitRTPRIO=80") && fix.contains("ulimit -r 80"),
            "{fix}"
        );
        assert!(!r.ready());
        // Exactly the priority is enough; one below is not.
        f.rtprio.soft = Some(80);
        assert_eq!(verdict(&f, &WANTED, Check::RtPrio), Verdict::Ok);
        f.rtprio.soft = Some(79);
        assert_eq!(verdict(&f, &WANTED, Check::RtPrio), Verdict::Shortfall);
        f.cap_sys_nice = true;
        assert_eq!(verdict(&f, &WANTED, Check::RtPrio), Verdict::Ok);
        f.cap_sys_nice = false;
        f.rtprio = Limit::UNLIMITED;
        assert_eq!(verdict(&f, &WANTED, Check::RtPrio), Verdict::Ok);
    }

    #[test]
    fn a_finite_memlock_is_a_shortfall_unless_cap_ipc_lock() {
        let mut f = tuned();
        f.memlock_bytes = Limit {
            soft: Some(8 << 20),
            hard: Some(8 << 20),
        };
        let r = assess(&f, &WANTED);
        let m = r.get(Check::MemLock).unwrap();
        assert_eq!(m.verdict, Verdict::Shortfall);
        assert!(m.detail.contains("8 MiB"), "{}", m.detail);
        assert!(m.fix.as_deref().unwrap().contains("LimitMEMLOCK=infinity"));
        f.cap_ipc_lock = true;
        assert_eq!(verdict(&f, &WANTED, Check::MemLock), Verdict::Ok);
    }

    #[test]
    fn cpu_pinning_and_isolation_are_advice_an_offline_cpu_a_shortfall() {
        let f = tuned();
        // Pinned to a CPU that is not isolated: works, but tuning is advised.
        let on_1 = RtWanted {
            cpu: Some(1),
            ..WANTED
        };
        let r = assess(&f, &on_1);
        let c = r.get(Check::Cpu).unwrap();
        assert_eq!(c.verdict, Verdict::Advice);
        assert!(
            c.fix
                .as_deref()
                .unwrap()
                .contains("isolcpus=1 nohz_full=1 rcu_nocbs=1")
        );
        assert!(r.ready(), "advice does not refuse");
        // Not pinned at all.
        let free = RtWanted {
            cpu: None,
            ..WANTED
        };
        let r = assess(&f, &free);
        assert_eq!(r.get(Check::Cpu).unwrap().verdict, Verdict::Advice);
        assert!(r.get(Check::Cpu).unwrap().detail.contains("0-1"));
        // A single-CPU affinity (systemd CPUAffinity=3) pins without --cpu.
        let mut one = tuned();
        one.affinity = vec![3];
        assert_eq!(verdict(&one, &free, Check::Cpu), Verdict::Ok);
        // Isolated but still ticking: advice.
        let mut ticking = tuned();
        ticking.nohz_full_cpus.clear();
        assert_eq!(verdict(&ticking, &WANTED, Check::Cpu), Verdict::Advice);
        // A CPU that does not exist cannot be pinned to.
        let on_9 = RtWanted {
            cpu: Some(9),
            ..WANTED
        };
        assert_eq!(verdict(&f, &on_9, Check::Cpu), Verdict::Shortfall);
    }

    #[test]
    fn cpu_dma_latency_denied_is_a_shortfall_missing_is_advice() {
        let mut f = tuned();
        f.dma_latency = DmaLatencyAccess::Denied;
        let r = assess(&f, &WANTED);
        let d = r.get(Check::DmaLatency).unwrap();
        assert_eq!(d.verdict, Verdict::Shortfall);
        assert!(d.fix.as_deref().unwrap().contains("60-takt.rules"));
        f.dma_latency = DmaLatencyAccess::Missing;
        assert_eq!(verdict(&f, &WANTED, Check::DmaLatency), Verdict::Advice);
    }

    #[test]
    fn shortfalls_are_listed_in_check_order() {
        let mut f = tuned();
        f.realtime_sysfs = Some(false);
        f.kernel_version = "#1 SMP".into();
        f.memlock_bytes.soft = Some(65536);
        let r = assess(&f, &WANTED);
        let names: Vec<_> = r.shortfalls().map(|s| s.check).collect();
        assert_eq!(names, [Check::Kernel, Check::MemLock]);
    }

    #[test]
    fn cpu_lists_parse_and_print_as_the_kernel_writes_them() {
        assert_eq!(
            parse_cpu_list("0-3,5,7-8\n"),
            Some(vec![0, 1, 2, 3, 5, 7, 8])
        );
        assert_eq!(parse_cpu_list("\n"), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(show_cpu_list(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(show_cpu_list(&[]), "none");
    }

    #[test]
    fn gathering_on_this_host_reads_the_kernel_and_cpus() {
        let f = gather();
        assert!(!f.kernel_release.is_empty());
        assert!(!f.online_cpus.is_empty());
        assert!(!f.affinity.is_empty());
        assert!(f.affinity.iter().all(|c| f.online_cpus.contains(c)));
    }
}
