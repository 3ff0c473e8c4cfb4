//! Where the benchmark runs. By default nothing is pinned. With `FLEET_BENCH_PIN=1` the
//! service containers run on the machine's last core and the load generator (this process,
//! and every thread it starts) on the others, so that client and server do not preempt each
//! other.

/// The cores this process may use, from its affinity mask.
fn allowed() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// The service containers' cpuset (`"1"` on a 2-core machine) with `FLEET_BENCH_PIN=1`;
/// `None` (no pinning) otherwise or with a single core.
pub fn service_core() -> Option<String> {
    let cores = allowed();
    (pinning() && cores.len() >= 2).then(|| cores[cores.len() - 1].to_string())
}

/// Pins the calling thread (call it first in `main`: threads started later inherit it) to
/// every allowed core but the services' one. Returns a description for the report.
pub fn pin_load_generator() -> String {
    let cores = allowed();
    if !pinning() || cores.len() < 2 {
        return format!(
            "{} CPU cores, not pinned: the load generator shares them with the containers",
            cores.len()
        );
    }
    let (services, generator) = cores.split_last().expect("two or more");
    // SAFETY: as above; the set is built from cores this process may already use.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in generator {
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_setaffinity(0, size, &set) } != 0 {
        return format!("{} CPU cores, pinning failed: shared", cores.len());
    }
    format!(
        "{} CPU cores: service containers pinned to core {services}, the load generator to {generator:?}; \
         PostgreSQL, Redis, tansu and the IdP are not pinned",
        cores.len()
    )
}

/// Opt-in (`FLEET_BENCH_PIN=1`): measured on the 2-core machine, pinning all twelve service
/// containers to one core made both the HTTP and the job numbers worse (BENCHMARKS.md).
fn pinning() -> bool {
    std::env::var("FLEET_BENCH_PIN").is_ok_and(|v| v == "1")
}
