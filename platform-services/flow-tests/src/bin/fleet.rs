//! `fleet <service> <serve|worker|migrate|healthcheck>`: runs any service of the fleet from
//! its `spec()`, exactly as that service's own binary would (`platform_common::service`), so
//! the flow tests start the whole fleet as OS processes from one build.
//!
//! `fleet topics` prints every topic the services publish, one per line (the harness creates
//! them, and their `.dlq` twins, before anything starts).

use std::process::ExitCode;

use platform_common::service::{ServiceSpec, main_with_args};

/// A service's `spec()`.
type Spec = fn() -> ServiceSpec;

/// Every service `fleet` can run, by the name the harness uses.
const SERVICES: &[(&str, Spec)] = &[
    ("payment", payment::spec),
    ("ledger", ledger::spec),
    ("wallet", wallet::spec),
    ("rule-engine", rule_engine::spec),
    ("forex", forex::spec),
    ("profile", profile::spec),
];

fn usage() -> String {
    let names: Vec<&str> = SERVICES.iter().map(|(n, _)| *n).collect();
    format!(
        "Usage: fleet <service> [serve|worker|migrate|healthcheck]\n       fleet topics\n\nServices: {}\n",
        names.join(", ")
    )
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprint!("{}", usage());
        return ExitCode::from(2);
    }
    let name = args.remove(1);
    if name == "topics" {
        for (_, spec) in SERVICES {
            for topic in spec().publishes {
                println!("{topic}");
            }
        }
        return ExitCode::SUCCESS;
    }
    if name == "-h" || name == "--help" {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match SERVICES.iter().find(|(n, _)| *n == name) {
        // args[0] becomes `fleet <service>` in the service's own usage text.
        Some((_, spec)) => {
            args[0] = format!("fleet {name}");
            main_with_args(spec(), args)
        }
        None => {
            eprintln!("error: unknown service `{name}`\n\n{}", usage());
            ExitCode::from(2)
        }
    }
}
