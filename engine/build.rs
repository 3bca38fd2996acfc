//! Link-time wiring for libtorch, shared by every crate that links tch (see `build = ...` in their
//! Cargo.toml).
//!
//! * An rpath to the torch `lib` folder, so `argus` and the test binaries run with no
//!   `LD_LIBRARY_PATH`.
//! * `libtorch_cuda` linked with `--no-as-needed`: nothing references its symbols directly, so the
//!   linker would otherwise drop it and CUDA would silently be unavailable on a GPU machine.

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
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-cfg=argus_torch_cuda");
    }
    println!("cargo:rustc-check-cfg=cfg(argus_torch_cuda)");
}
