//! Which engine runs the model: tract's CPU plan, or tract-cuda on an
//! NVIDIA GPU (a Jetson's integrated one included) when hark is built with
//! the `cuda` (CUDA 12.6) or `cuda13` cargo feature. Resolving `--backend`
//! probes the CUDA driver once (dlopen of libcuda, cuInit, driver version,
//! the CUDA libraries tract-cuda loads and their release, its kernel cache
//! folder) without panicking; it
//! allocates and is called on the main thread at start-up, never per chunk.

use crate::error::{HarkError, Result};

/// What `--backend` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The GPU when this binary has CUDA support and a device is usable,
    /// else the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// The GPU, or a configuration error (exit 2).
    Cuda,
}

/// Where a loaded model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Cuda,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The engine behind the name, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu (tract, 1 thread)",
            Backend::Cuda => "cuda (tract-cuda, device 0)",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this binary was built with CUDA support (cargo feature `cuda` or
/// `cuda13`).
pub const CUDA_BUILT_IN: bool = cfg!(feature = "gpu");

/// Why a binary without the feature cannot use the GPU.
#[cfg(not(feature = "gpu"))]
pub(crate) const NO_CUDA: &str =
    "this hark was built without CUDA support (cargo feature `cuda` or `cuda13`)";

/// The backend a choice comes to on this machine. `Cuda` without a usable
/// device is a configuration error; `Auto` without one logs why (one
/// warning, or a debug line when the binary has no CUDA support at all)
/// and picks the CPU.
pub fn resolve(choice: BackendChoice) -> Result<Backend> {
    match choice {
        BackendChoice::Cpu => Ok(Backend::Cpu),
        BackendChoice::Cuda => cuda_usable()
            .map(|()| Backend::Cuda)
            .map_err(|why| HarkError::Config(format!("--backend cuda: {why}"))),
        BackendChoice::Auto => match cuda_usable() {
            Ok(()) => Ok(Backend::Cuda),
            Err(why) => {
                if CUDA_BUILT_IN {
                    log::warn!("backend: running on the CPU: {why}");
                } else {
                    log::debug!("backend: running on the CPU: {why}");
                }
                Ok(Backend::Cpu)
            }
        },
    }
}

/// tract's errors may span lines; a log line or exit message must not.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(not(feature = "gpu"))]
fn cuda_usable() -> std::result::Result<(), String> {
    Err(NO_CUDA.into())
}

#[cfg(feature = "gpu")]
fn cuda_usable() -> std::result::Result<(), String> {
    // dlopens libcuda without cudarc (which would panic on a missing
    // library), runs cuInit (which fails when no device is visible), checks
    // the driver API version against the one tract-cuda is built for, then
    // probes cudart, nvrtc, cuBLAS and cuDNN. Cached after a success.
    tract_cuda::utils::ensure_cuda_runtime_dependencies("CUDA is not usable")
        .map_err(|e| one_line(&e.root_cause().to_string()))?;
    // cudarc binds each function of those libraries by name on its first
    // call and panics (an abort, in a release build) when the library that
    // was found lacks it: a CUDA 13 libcudart found by its unversioned name
    // under a CUDA 12 build has no cudaGetDeviceProperties_v2 (seen on an
    // H200 machine with CUDA 13 only). So the libraries found must be of
    // the CUDA release the bindings were generated for.
    for lib in &cuda_libs::LIBS {
        cuda_libs::check(lib)?;
    }
    // tract-cuda compiles its kernels into this folder on first use and
    // panics when it cannot create it (a hardened service without a
    // writable home): find out here instead.
    let cache = tract_cuda::kernels::cubin_dir();
    std::fs::create_dir_all(cache).map_err(|e| {
        format!(
            "cannot create tract-cuda's kernel cache {}: {e} (point XDG_CACHE_HOME at a writable folder)",
            cache.display()
        )
    })?;
    Ok(())
}

/// The versions of the CUDA libraries tract-cuda will load, found the way
/// cudarc finds them (the first of its candidate names that dlopen
/// accepts), against the CUDA release this binary was built for.
#[cfg(feature = "gpu")]
mod cuda_libs {
    use std::ffi::{c_int, c_void, CString};

    /// (major, minor) of the CUDA release the bindings were generated for.
    #[cfg(feature = "cuda")]
    const BUILT_FOR: (c_int, c_int) = (12, 6);
    #[cfg(all(feature = "cuda13", not(feature = "cuda")))]
    const BUILT_FOR: (c_int, c_int) = (13, 0);

    /// The cargo feature that builds for the other release.
    fn feature_for(major: c_int) -> &'static str {
        if major >= 13 {
            "cuda13"
        } else {
            "cuda"
        }
    }

    pub struct Lib {
        /// cudarc's short name (its candidates are derived from it).
        name: &'static str,
        /// Reads (major, minor) from the opened library.
        version: unsafe fn(*mut c_void) -> Option<(c_int, c_int)>,
    }

    pub const LIBS: [Lib; 3] = [
        Lib {
            name: "cudart",
            version: cudart_version,
        },
        Lib {
            name: "nvrtc",
            version: nvrtc_version,
        },
        Lib {
            name: "cublas",
            version: cublas_version,
        },
    ];

    /// `Err` with a one-line reason when the library cudarc would load is
    /// of another CUDA major version than the build, or older than it.
    /// A library that is not found, or whose version cannot be read, is
    /// left to tract-cuda's own probe.
    pub fn check(lib: &Lib) -> Result<(), String> {
        for candidate in cudarc::get_lib_name_candidates(lib.name) {
            let Ok(c) = CString::new(candidate.as_str()) else {
                continue;
            };
            // SAFETY: dlopen/dlsym on a NUL-terminated name; the handle
            // stays open (cudarc opens the same library again).
            let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            if handle.is_null() {
                continue;
            }
            // SAFETY: the version functions below are the libraries'
            // documented C entry points, looked up by name.
            let Some((major, minor)) = (unsafe { (lib.version)(handle) }) else {
                return Ok(());
            };
            let (want_major, want_minor) = BUILT_FOR;
            if major != want_major || minor < want_minor {
                return Err(format!(
                    "{candidate} is CUDA {major}.{minor}, but this hark is built for CUDA {want_major}.{want_minor} \
                     (cargo feature `{}`); {}",
                    feature_for(want_major),
                    if major != want_major {
                        format!("build with `--features {}` for CUDA {major}", feature_for(major))
                    } else {
                        "install the matching CUDA libraries or point LD_LIBRARY_PATH at them".to_string()
                    }
                ));
            }
            return Ok(());
        }
        Ok(())
    }

    unsafe fn symbol(handle: *mut c_void, name: &str) -> Option<*mut c_void> {
        let c = CString::new(name).ok()?;
        let sym = unsafe { libc::dlsym(handle, c.as_ptr()) };
        (!sym.is_null()).then_some(sym)
    }

    /// cudaRuntimeGetVersion(int *) -> cudaError_t: 1000 * major + 10 * minor.
    unsafe fn cudart_version(handle: *mut c_void) -> Option<(c_int, c_int)> {
        let sym = unsafe { symbol(handle, "cudaRuntimeGetVersion") }?;
        // SAFETY: the symbol's C signature.
        let f: unsafe extern "C" fn(*mut c_int) -> c_int = unsafe { std::mem::transmute(sym) };
        let mut v: c_int = 0;
        (unsafe { f(&mut v) } == 0).then_some((v / 1000, (v % 1000) / 10))
    }

    /// nvrtcVersion(int *major, int *minor) -> nvrtcResult.
    unsafe fn nvrtc_version(handle: *mut c_void) -> Option<(c_int, c_int)> {
        let sym = unsafe { symbol(handle, "nvrtcVersion") }?;
        // SAFETY: the symbol's C signature.
        let f: unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int =
            unsafe { std::mem::transmute(sym) };
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        (unsafe { f(&mut major, &mut minor) } == 0).then_some((major, minor))
    }

    /// cublasGetProperty(libraryPropertyType, int *) -> cublasStatus_t,
    /// with MAJOR_VERSION = 0 and MINOR_VERSION = 1. cuBLAS numbers its
    /// releases with the CUDA toolkit's major version.
    unsafe fn cublas_version(handle: *mut c_void) -> Option<(c_int, c_int)> {
        let sym = unsafe { symbol(handle, "cublasGetProperty") }?;
        // SAFETY: the symbol's C signature.
        let f: unsafe extern "C" fn(c_int, *mut c_int) -> c_int =
            unsafe { std::mem::transmute(sym) };
        let (mut major, mut minor): (c_int, c_int) = (0, 0);
        let ok = unsafe { f(0, &mut major) } == 0 && unsafe { f(1, &mut minor) } == 0;
        ok.then_some((major, minor))
    }
}
