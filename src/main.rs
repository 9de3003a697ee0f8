use std::process::ExitCode;

use clap::Parser;

/// jemalloc, under malloc's own name, serves librdkafka's C allocations (and RocksDB's) as well
/// as Rust's: with glibc's malloc a quarter of a batch run's CPU went to allocating and freeing
/// (malloc, free and their consolidation, in a profile of a 300 000-record run), and a
/// 1 M-record copy took 2.8-3.4 CPU s per million records; with jemalloc 2.2-2.9
/// (BENCHMARKS.md, "The mirror against the limit").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (`MALLOC_CONF` in the environment still overrides them). At its defaults
/// (four arenas per core, freed pages kept 10 s) a 1 M-record copy peaked at 226 MB of RSS
/// against glibc's 162-181 (goal: under 200 MiB). Freed pages given back after 3 s (jemalloc
/// checks as the process allocates) and two arenas: 155-174 MB; with eight (this machine's
/// default) 171 MB at the same CPU. Two whatever the cores, so that the bound does not grow
/// with the machine.
#[allow(unsafe_code)] // jemalloc reads its settings from this C symbol (a NUL-terminated string).
#[export_name = "malloc_conf"]
pub static MALLOC_CONF: &[u8; 30] = b"narenas:2,dirty_decay_ms:3000\0";

fn main() -> ExitCode {
    let cli = kmirror::cmd::cli::Cli::parse();
    kmirror::cmd::logging::init(cli.log_format);
    match kmirror::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain, each cause once: kmirror's errors name their cause in their own line
            // and keep it as the source too.
            let mut line = String::new();
            for cause in e.chain().map(ToString::to_string) {
                if !line.contains(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("kmirror: error: {line}");
            ExitCode::from(
                e.downcast_ref::<kmirror::error::Error>().map_or(1, kmirror::error::Error::exit_code),
            )
        }
    }
}
