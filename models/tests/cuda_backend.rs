//! The CUDA backend is not in a process until asked for, and then loads (from the rpath) with
//! its hooks registered: what the binary does at start on a GPU machine. Its own process, so
//! no torch call has looked the hooks up before the load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use argus_models::cuda;

#[test]
fn the_cuda_backend_loads_only_when_asked_and_then_registers_its_hooks() {
    assert!(!cuda::backend_loaded(), "libtorch_cuda.so is in the process before anything asked for it");
    // A CPU-only libtorch has no backend to load: then loading says so, and `cuda` is refused
    // with that reason.
    let lib = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .find_map(|l| l.split_whitespace().last().filter(|p| p.ends_with("/libtorch_cpu.so")).map(str::to_owned))
        .expect("libtorch_cpu.so is mapped");
    let shipped = std::path::Path::new(&lib).with_file_name("libtorch_cuda.so").exists();
    match cuda::load_backend() {
        Ok(()) => {
            assert!(shipped);
            assert!(cuda::backend_loaded());
            // The hooks libtorch finds now are the CUDA library's, not the stub it has without
            // it (which knows no CUDA runtime); no GPU is needed to ask.
            assert!(tch::utils::has_cudart(), "loaded, but libtorch does not see its CUDA hooks");
        }
        Err(e) => {
            assert!(!shipped, "{e}");
            let refused = argus_models::mlp::parse_device("cuda").unwrap_err().to_string();
            assert!(refused.contains("libtorch_cuda.so"), "{refused}");
        }
    }
    // Whatever the machine, `auto` gives a device and `cpu` is the CPU.
    assert!(argus_models::mlp::parse_device("auto").is_ok());
    assert_eq!(argus_models::mlp::parse_device("cpu").unwrap(), tch::Device::Cpu);
}
