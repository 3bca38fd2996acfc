//! Link-time wiring for libtorch, shared by every crate that links tch (see `build = ...` in their
//! Cargo.toml).
//!
//! * An rpath to the torch `lib` folder, so `argus` and the test binaries run with no
//!   `LD_LIBRARY_PATH`.
//! * `libtorch_cuda` is not linked: nothing references its symbols, and loading it with the NVIDIA
//!   libraries it needs costs every process ~350 MB and ~0.2 s. `argus_models::cuda` loads it at
//!   run time on a machine with a GPU (from the same folder, through this rpath).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(root) = std::env::var_os("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; run `make venv` (binaries will need LD_LIBRARY_PATH)");
        return;
    };
    let root = PathBuf::from(root);
    // Resolve the .venv/libtorch link so the rpath stays valid if the link is replaced.
    let root = root.canonicalize().unwrap_or(root);
    let lib = root.join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
