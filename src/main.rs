//! The `drover` binary: parse the command line and hand off.

fn main() {
    std::process::exit(drover::cli::main());
}
