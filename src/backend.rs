//! Which engine runs the model: tract's CPU plan, or tract-cuda on an
//! NVIDIA GPU (a Jetson's integrated one included) when hark is built with
//! the `cuda` cargo feature. Resolving `--backend` probes the CUDA driver
//! once (dlopen of libcuda, cuInit, driver version, the CUDA libraries
//! tract-cuda loads, its kernel cache folder) without panicking; it
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

/// Whether this binary was built with the `cuda` feature.
pub const CUDA_BUILT_IN: bool = cfg!(feature = "cuda");

/// Why a binary without the feature cannot use the GPU.
pub(crate) const NO_CUDA: &str = "this hark was built without CUDA support (cargo feature `cuda`)";

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

#[cfg(not(feature = "cuda"))]
fn cuda_usable() -> std::result::Result<(), String> {
    Err(NO_CUDA.into())
}

#[cfg(feature = "cuda")]
fn cuda_usable() -> std::result::Result<(), String> {
    // dlopens libcuda without cudarc (which would panic on a missing
    // library), runs cuInit (which fails when no device is visible), checks
    // the driver API version against the one tract-cuda is built for, then
    // probes cudart, nvrtc, cuBLAS and cuDNN. Cached after a success.
    tract_cuda::utils::ensure_cuda_runtime_dependencies("CUDA is not usable")
        .map_err(|e| one_line(&e.root_cause().to_string()))?;
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
