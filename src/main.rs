//! The `biasprune` binary: parse arguments, run the library, map errors to exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    biasprune::cli::main()
}
