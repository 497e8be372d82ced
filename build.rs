//! Build script: with the `cuda` feature, compiles kernels/*.cu to PTX (through cudaforge, as
//! candle-kernels does) and writes `$OUT_DIR/ptx.rs`, one `pub const NAME: &str` of PTX per file,
//! which src/ops/cuda/ includes. Without the feature it does nothing, so the CPU build needs no
//! CUDA toolkit. The toolkit comes from the environment scripts/build-cuda.sh sets up.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "cuda")]
    if let Err(e) = kernels::build_ptx() {
        panic!("compiling kernels/*.cu to PTX failed (see scripts/build-cuda.sh for the toolkit): {e}");
    }
}

#[cfg(feature = "cuda")]
mod kernels {
    use std::path::PathBuf;

    pub fn build_ptx() -> Result<(), Box<dyn std::error::Error>> {
        println!("cargo::rerun-if-changed=kernels");
        let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
        let ptx = cudaforge::KernelBuilder::new()
            .source_dir("kernels")
            .arg("--expt-relaxed-constexpr")
            .arg("-std=c++17")
            .arg("-O3")
            .build_ptx()?;
        ptx.write(out_dir.join("ptx.rs"))?;
        Ok(())
    }
}
