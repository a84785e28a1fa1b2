// mimalloc: the read path allocates many small strings per page, and glibc's allocator spent a
// quarter of the CPU time of a query load in malloc, free and arena locks (see
// docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    almanac::cli::main()
}
