// torch-sys links libtorch but its rpath does not reach our binaries: embed it, so the binaries, tests and
// examples of every crate that links libtorch (this one, murmur-enrich, murmur-train, murmur-bench: each
// names this file as its `build` script) find the libraries without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
}
