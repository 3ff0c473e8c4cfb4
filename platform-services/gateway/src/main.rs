//! `gateway [serve|healthcheck]`: the built-in API gateway.

use std::process::ExitCode;

use gateway::{GatewayConfig, env};
use platform_common::config::ProcessEnv;

const USAGE: &str = "The finctl API gateway\n\nUsage: gateway [COMMAND]\n\nCommands:\n  \
serve        Serve the public listener on $PORT and the admin API on $ADMIN_PORT (the default)\n  \
healthcheck  Exit 0 if GET http://127.0.0.1:$PORT/health answers 200, else 1\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["serve"] => true,
        ["healthcheck"] => false,
        ["-h" | "--help" | "help"] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("error: unexpected arguments {args:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if serve {
            run().await
        } else {
            healthcheck().await
        }
    })
}

async fn run() -> ExitCode {
    let cfg = match GatewayConfig::from_env(&ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            eprintln!("hint: set the variable in the gateway's environment (compose file or .env)");
            return ExitCode::from(2);
        }
    };
    let telemetry = match platform_common::telemetry::init("gateway", cfg.otlp.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let bind = |port: u16| tokio::net::TcpListener::bind(("0.0.0.0", port));
    let (public, admin) = match (bind(cfg.port).await, bind(cfg.admin_port).await) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!(
                "error: cannot listen on ports {} and {}: {e}",
                cfg.port, cfg.admin_port
            );
            return ExitCode::from(1);
        }
    };
    let running = gateway::start(&cfg, public, admin).await;
    tokio::select! {
        _ = running.wait() => {}
        _ = shutdown_signal() => {}
    }
    telemetry.shutdown().await;
    ExitCode::SUCCESS
}

/// `GET /health` on the public port, as every service image does it.
async fn healthcheck() -> ExitCode {
    match gateway::config::port(&ProcessEnv, env::PORT, env::DEFAULT_PORT) {
        Ok(port) => platform_common::service::probe_health(port).await,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
