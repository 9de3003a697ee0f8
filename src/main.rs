use std::process::ExitCode;

use clap::Parser;

/// jemalloc, under malloc's own name, serves librdkafka's C allocations as well as Rust's: with
/// glibc's malloc a quarter of a copy's CPU went to allocating and freeing (malloc, free and
/// their consolidation, in a profile of a 300 000-record batch run), and a 1 M-record copy took
/// 3.4 CPU s per million records; with jemalloc 2.4-2.8 (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (`MALLOC_CONF` in the environment still overrides them). At its defaults
/// (four arenas per core, freed pages kept 10 s) a 1 M-record copy peaked at 226 MB of RSS
/// against glibc's 162-181; two arenas and freed pages returned within 3 s peaked at 167 MB at
/// 2.4 CPU s per million records.
#[allow(unsafe_code)] // jemalloc reads its settings from this C symbol (a NUL-terminated string).
#[export_name = "malloc_conf"]
pub static MALLOC_CONF: &[u8; 47] = b"narenas:2,dirty_decay_ms:3000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = kmirror::cmd::cli::Cli::parse();
    kmirror::cmd::logging::init(cli.log_format);
    match kmirror::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kmirror: error: {e:#}");
            ExitCode::from(
                e.downcast_ref::<kmirror::error::Error>().map_or(1, kmirror::error::Error::exit_code),
            )
        }
    }
}
