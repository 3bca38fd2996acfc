//! libtorch's CUDA backend, loaded at run time.
//!
//! `libtorch_cuda.so` and the NVIDIA libraries it pulls in are ~350 MB resident and ~0.2 s of
//! static initialisation per process, and nothing in argus references their symbols, so the
//! binary does not link them. A process that may use a GPU loads them with [`load_backend`]
//! before its first torch call: libtorch looks its CUDA hooks up once, on first use, so a
//! backend loaded after that would go unseen. The binary does so at start when [`gpu_present`]
//! says the machine has an NVIDIA driver; without one the backend could never run anything.

use std::ffi::CStr;
use std::sync::OnceLock;

use crate::ModelError;

/// Whether this machine shows an NVIDIA driver (its device nodes or its `/proc` entry).
pub fn gpu_present() -> bool {
    ["/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version"].iter().any(|p| std::path::Path::new(p).exists())
}

/// Whether the backend is in this process (loaded by [`load_backend`] or linked).
pub fn backend_loaded() -> bool {
    std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("/libtorch_cuda.so"))
}

/// Loads `libtorch_cuda.so` once per process, found as the binary's own libtorch is (its
/// rpath, or `LD_LIBRARY_PATH`); later calls return the first outcome.
///
/// # Errors
/// The loader's message: no such library (a CPU-only libtorch) or one that failed to load.
pub fn load_backend() -> Result<(), ModelError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(dlopen_backend).clone().map_err(ModelError::CudaBackend)
}

#[allow(unsafe_code)]
fn dlopen_backend() -> Result<(), String> {
    let name = c"libtorch_cuda.so";
    // SAFETY: `name` is a NUL-terminated string that outlives the call. Loading runs the
    // library's static initialisers, which register libtorch's CUDA hooks and kernels (what
    // linking it would have done at start); the handle is kept open for the process' life.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if !handle.is_null() {
        return Ok(());
    }
    // SAFETY: `dlerror` returns null or a NUL-terminated string owned by the loader, valid
    // until the next loader call on this thread; it is copied out at once.
    let err = unsafe { libc::dlerror() };
    Err(if err.is_null() {
        "libtorch_cuda.so did not load".to_owned()
    } else {
        // SAFETY: non-null, NUL-terminated (above).
        unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned()
    })
}
