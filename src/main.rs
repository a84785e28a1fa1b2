// mimalloc: the read path allocates many small strings per page, and glibc's allocator spent a
// quarter of the CPU time of a query load in malloc, free and arena locks (see
// docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    disable_transparent_huge_pages();
    almanac::cli::main()
}

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas, and
/// the kernel then backs each touched 2 MiB range whole: after an ingest load the server kept
/// about 50 MiB more resident for no measurable speed (docs/PERFORMANCE.md, "Memory").
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours; a
    // kernel without it returns an error, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
