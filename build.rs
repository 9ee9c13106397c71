// Twin of the lab's build script (../shared/skeleton.md): it only tells
// cargo which C++ headers the glue is written against, and generates
// nothing. The lab names four headers of its own tree; here it is the
// contract header (scripts/lab-crate copies it beside a lab-shaped crate,
// so the path holds there too: a missing path would make cargo rebuild the
// crate on every build).
fn main() {
    println!("cargo:rerun-if-changed=include/rust_ffi_wrapper.h");
}
