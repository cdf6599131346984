//! `eio-bench`: the load generator of the engineio-rs benchmark suite (see the library
//! documentation for the modes and options). Loopback targets only; `eio bench` (crate
//! `eio-cli`) runs the same modes against a URL.

use std::process::ExitCode;

use eio_bench::{Args, Mode, Target, USAGE};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = argv.first().map(String::as_str) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if matches!(mode, "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let mode: Mode = match mode.parse() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let args = match Args::parse(&argv[1..], mode.options()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("eio-bench {mode}: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let target = match Target::from_args(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("eio-bench {mode}: {e}");
            return ExitCode::from(2);
        }
    };
    match eio_bench::run(mode, &args, target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eio-bench {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}
