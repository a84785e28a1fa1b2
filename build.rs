// The embedded migrations are read by a proc macro, which cannot track new files by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
