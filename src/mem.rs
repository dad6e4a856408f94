//! Resident memory on small boards (issue 22). The bundled model and LM are
//! embedded in the binary; once parsed into their working form, the pages
//! of the embedded bytes are handed back to the kernel, so the file is not
//! held in memory twice. Reading the bytes again later only faults them in
//! from the binary again (the mapping is private and read-only).

/// Drop the resident pages that lie wholly inside `bytes`, a blob embedded
/// in the executable. A no-op where it cannot be done.
pub fn release_embedded(bytes: &'static [u8]) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return;
        };
        if page == 0 {
            return;
        }
        let start = (bytes.as_ptr() as usize).div_ceil(page) * page;
        let end = (bytes.as_ptr() as usize + bytes.len()) / page * page;
        if end > start {
            // SAFETY: the range lies inside a read-only static in a private
            // file mapping (the executable), so MADV_DONTNEED discards only
            // clean page-cache copies: a later read faults the same bytes
            // in again from the file. Nothing holds a mutable reference.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = bytes;
}

/// Keep glibc from holding on to freed weight buffers: with a fixed mmap
/// threshold every large buffer (tract's tensors while the plan is built)
/// is its own mapping and goes back to the kernel when freed, instead of
/// staying in the heap once glibc's adaptive threshold has grown past it.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocator settings; it is called
    // once at start, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Once the models are loaded: serve the per-call buffers of the finals
/// decoder (megabytes each step: its key/value concatenations) from the
/// heap again, where freed ones are reused, instead of a fresh mapping,
/// zeroed by the kernel page by page, every step (twice the step's time,
/// measured: results/whisper-finals/notes.md). The weights are loaded by
/// then, so the fixed threshold has done its work.
pub fn tune_allocator_for_running() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocator settings; glibc
    // serialises them with its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    }
}

/// At debug level (`HARK_LOG=debug`), log this process's resident memory
/// now and at its peak, with `stage`: where the memory goes while a model
/// loads. Reads /proc only when the line will be printed.
pub fn log_resident(stage: &str) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    log::debug!(
        "{stage}: resident {} (anonymous {}, file {}), peak {}",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:"),
        field("VmHWM:")
    );
}
