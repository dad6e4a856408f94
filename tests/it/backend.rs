//! `--backend auto|cpu|cuda`: cpu and auto give the same transcripts, and
//! cuda without a usable GPU is a one-line configuration error (exit 2).
//!
//! Built with the `cuda` feature the same tests check the fallback: on a
//! machine without an NVIDIA driver, `auto` must say once why it runs on
//! the CPU and give the CPU's transcripts, e.g.
//! `nice -n 5 cargo test --features cuda backend::`.

use crate::util::{data, e2e_wav_names, run, stderr, stdout};

/// Every committed e2e WAV's path, sorted.
fn e2e_wavs() -> Vec<String> {
    e2e_wav_names()
        .iter()
        .map(|n| data(&format!("e2e/{n}")).display().to_string())
        .collect()
}

/// Whether `--backend cuda` works here: a binary with the `cuda` feature
/// on a machine with a usable NVIDIA GPU.
fn gpu_usable() -> bool {
    cfg!(feature = "gpu") && run(&["model", "--backend", "cuda"]).status.code() == Some(0)
}

/// `hark transcribe --format tsv --backend BACKEND` on all e2e WAVs:
/// (stdout, stderr), exit 0 checked.
fn transcribe_all(backend: &str) -> (String, String) {
    let wavs = e2e_wavs();
    let mut args = vec!["transcribe", "--format", "tsv", "--backend", backend];
    args.extend(wavs.iter().map(|s| s.as_str()));
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "--backend {backend}: {}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert_eq!(out.lines().count(), wavs.len(), "{out}");
    (out, stderr(&o))
}

#[test]
fn cpu_and_auto_give_identical_transcripts() {
    let (cpu, cpu_err) = transcribe_all("cpu");
    let (auto, auto_err) = transcribe_all("auto");
    assert_eq!(cpu, auto);
    assert!(cpu_err.is_empty(), "{cpu_err}");
    if cfg!(feature = "gpu") && !gpu_usable() {
        // the fallback says why, once
        assert_eq!(auto_err.lines().count(), 1, "{auto_err}");
        assert!(
            auto_err.contains("backend: running on the CPU: "),
            "{auto_err}"
        );
    } else {
        // without the feature auto is simply the CPU; with a GPU, no fallback
        assert!(auto_err.is_empty(), "{auto_err}");
    }
}

#[test]
fn cuda_without_a_usable_gpu_is_a_one_line_configuration_error() {
    if gpu_usable() {
        return;
    }
    let wav = data("e2e/e2e-1-flite-rms.wav").display().to_string();
    let commands: [&[&str]; 4] = [
        &["transcribe", "--backend", "cuda", &wav],
        &["listen", "--backend", "cuda", "--device", "null"],
        &["bench", "--backend", "cuda", &wav],
        &["model", "--backend", "cuda"],
    ];
    for args in commands {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("hark: configuration: --backend cuda: "),
            "{args:?}: {err}"
        );
        if !cfg!(feature = "gpu") {
            assert!(err.contains("built without CUDA support"), "{err}");
        }
    }
}

#[test]
fn model_and_bench_report_the_backend_used() {
    let o = run(&["model", "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("backend:         cpu (tract, 1 thread)"),
        "{}",
        stdout(&o)
    );
    let wav = data("e2e/e2e-1-flite-rms.wav").display().to_string();
    let o = run(&["bench", "--backend", "cpu", "--format", "json", &wav]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json report");
    assert_eq!(report["machine"]["backend"], "cpu (tract, 1 thread)");
    let o = run(&["model", "--backend", "auto"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let want = if gpu_usable() {
        "backend:         cuda (tract-cuda, device 0)"
    } else {
        "backend:         cpu (tract, 1 thread)"
    };
    assert!(stdout(&o).contains(want), "{}", stdout(&o));
}

// Regression guard for the `cuda` build: tract-cuda registers its runtime
// with tract through a link-time inventory, which the CUDA plan looks up by
// name. Registered, it is found (and fails its check without a usable GPU);
// missing, the lookup answers None.
#[cfg(feature = "gpu")]
#[test]
fn the_cuda_runtime_is_registered() {
    let found = tract_onnx::prelude::runtime_for_name("cuda");
    assert!(
        !matches!(found, Ok(None)),
        "tract-cuda's runtime is not registered"
    );
}
