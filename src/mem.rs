//! Resident memory on small boards (issue 22). The bundled model and LM are
//! embedded in the binary; once parsed into their working form, the pages
//! of the embedded bytes are handed back to the kernel, so the file is not
//! held in memory twice. Reading the bytes again later only faults them in
//! from the binary again (the mapping is private and read-only).

/// Drop the resident pages that lie wholly inside `bytes`, a blob embedded
/// in the executable. A no-op where it cannot be done.
pub fn release_embedded(bytes: &'static [u8]) {
    #[cfg(target_os = "linux")]
    if let Some(page) = page_size() {
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

/// The kernel's page size, if it says one.
#[cfg(target_os = "linux")]
fn page_size() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().filter(|&p| p > 0)
}

/// Tell the kernel that `bytes`, a blob embedded in the executable, is
/// read at scattered places (MADV_RANDOM): a read faults in its own page
/// only, not the 64 KiB around it nor a readahead window. For a table read
/// a row at a time (the finals model's embeddings). A no-op where it cannot
/// be done.
pub fn read_randomly(bytes: &'static [u8]) {
    #[cfg(target_os = "linux")]
    if let Some(page) = page_size().filter(|_| !bytes.is_empty()) {
        let start = bytes.as_ptr() as usize / page * page;
        let end = (bytes.as_ptr() as usize + bytes.len()).div_ceil(page) * page;
        // SAFETY: the range covers a static in the executable's private
        // read-only mapping (rounded out to whole pages of that mapping);
        // MADV_RANDOM changes only how its pages are faulted in.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
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

/// Hand the heap's free pages back to the kernel (glibc's `malloc_trim`):
/// called after each utterance's Whisper final, so that memory freed there
/// (the finals pass's per-call buffers) does not stay resident as holes in
/// the heap that later, differently sized requests cannot reuse.
/// Measured: results/whisper-finals/notes.md.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused heap pages; glibc takes its
    // own locks.
    unsafe {
        libc::malloc_trim(0);
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
