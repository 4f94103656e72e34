//! Command-line front end: argument parsing, progress bars, output formatting, exit codes.
//!
//! Only this module (and `main.rs`) touches clap, anyhow, indicatif and stdout; every
//! command is a thin wrapper over a library call.

mod analyze;
mod apply;
mod audit;
mod bars;
mod bench;
mod device;
mod eval;
mod fixture;
mod generate;
mod import_gguf;
mod inputs;
mod inspect;
mod keygen;
mod mask;
mod parity;
mod plant;
mod power;
mod prune;
mod scenarios;
mod score;
mod sign;
mod sweep;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when everything succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code when a check (e.g. verification) ran and failed.
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit code for bad input or bad usage.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when the command ran correctly but the rules refuse to release (nothing
/// significant to remove, or an outcome other than `reduced`).
pub const EXIT_REFUSED: u8 = 3;

/// biasprune: measure, localize and prune name-based bias in Llama-family checkpoints.
#[derive(Parser, Debug)]
#[command(name = "biasprune", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Find where a model needs mitigation: every scenario, variation and context, tests
    /// corrected for multiplicity, one table and one heatmap.
    Audit(Box<audit::Args>),
    /// The whole job: measure, localize, prune, evaluate, report and sign, resumably.
    Prune(Box<prune::Args>),
    /// Sample answers to a prompt from a checkpoint, one answer per line.
    Generate(generate::GenerateArgs),
    /// Sample answers to a scenario's prompts and measure the disparity (SMD, inlier ratio).
    Eval(eval::Args),
    /// Validate a checkpoint and print its architecture, tensors and parameter counts.
    Inspect(inspect::Args),
    /// Write a copy of a checkpoint with a mask's weights, rows and heads zeroed.
    Apply(apply::Args),
    /// Score every linear weight (Wanda or SNIP) on one group's answers.
    Score(score::Args),
    /// Build a set-difference prune mask from minority and majority scores.
    Mask(mask::Args),
    /// Evaluate set-difference masks over a (p, q) grid, applied in memory.
    Sweep(sweep::Args),
    /// Show where masks prune (layers x components) and how much they overlap.
    Analyze(analyze::Args),
    /// Generate a random Llama checkpoint for tests and benchmarks.
    Fixture(fixture::Args),
    /// List the installed scenarios (and those of --dir).
    Scenarios(scenarios::Args),
    /// Convert a GGUF Llama (llama.cpp) into a Hugging Face checkpoint directory.
    ImportGguf(import_gguf::ImportGgufArgs),
    /// Generate an ECDSA key pair (PEM) for signing checkpoints.
    Keygen(keygen::KeygenArgs),
    /// Sign a model directory: writes DIR/model.sig (OpenSSF model-signing format).
    Sign(sign::SignArgs),
    /// Verify a signed model directory; each check is reported by name (exit 1 on failure).
    ///
    /// Exit status: 0 every check passed, 1 a check failed, 2 unusable input (unreadable or
    /// malformed public key, DIR not a directory). Accepts signatures made by
    /// `model_signing sign key` (OpenSSF model-signing 1.1.1).
    Verify(verify::VerifyArgs),
    /// Write a TEST FIXTURE with a known disparity planted (a positive control for the
    /// pipeline); its output must not be deployed.
    Plant(plant::Args),
    /// How many answers per prompt the gate needs: the detection rate of SMDs planted into
    /// a base model's own answers, per answers per name (a benchmark, not a release step).
    Power(power::Args),
    /// Compare logits and Wanda statistics on --device against the CPU in f32 (JSON; exit 1
    /// when beyond tolerance).
    Parity(parity::Args),
    /// Time prefill, sampled generation and Wanda statistics on --device (JSON).
    Bench(bench::Args),
}

/// A command's result: success, or a check that ran and failed (exit code 1).
pub enum Outcome {
    /// Everything the command set out to do succeeded.
    Ok,
    /// The command ran but a check it performs failed.
    CheckFailed,
    /// The command ran correctly but the rules refuse to release (exit code 3).
    Refused,
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    restore_default_sigpipe();
    exit_cleanly_on_sigbus();
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_BAD_INPUT } else { EXIT_OK });
        }
    };
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::from(EXIT_OK),
        Ok(Outcome::CheckFailed) => ExitCode::from(EXIT_CHECK_FAILED),
        Ok(Outcome::Refused) => ExitCode::from(EXIT_REFUSED),
        Err(err) if is_broken_pipe(&err) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Lets a closed pipe (`biasprune analyze ... | head`) end the process quietly, as it does
/// for other Unix tools, instead of a panic in `println!`.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// What a SIGBUS means here, printed before exiting with [`EXIT_BAD_INPUT`].
const SIGBUS_MESSAGE: &[u8] = b"error: a memory-mapped input could not be read (SIGBUS): a checkpoint shard, \
mask or score file was truncated or replaced while biasprune was reading it (or the storage failed); \
nothing was published, rerun once the inputs are stable\n";

/// Turns SIGBUS into a clean exit 2 with a message instead of a crash. Inputs are read
/// through read-only memory maps, whose sizes are checked against every header when mapped;
/// a file truncated after that (by another process) makes the next read of a page past its
/// new end raise SIGBUS, which no check can prevent. Outputs are never written through
/// maps, and a partial output is left clearly named for the next run to remove.
fn exit_cleanly_on_sigbus() {
    // SAFETY: installs a handler that calls only async-signal-safe functions (write, _exit),
    // before any thread starts; the sigaction struct is zeroed, then filled as required.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

extern "C" fn on_sigbus(_signal: libc::c_int) {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is a static.
    unsafe {
        libc::write(2, SIGBUS_MESSAGE.as_ptr().cast(), SIGBUS_MESSAGE.len());
        libc::_exit(i32::from(EXIT_BAD_INPUT));
    }
}

fn init_logging() {
    let env = env_logger::Env::default().filter_or("BIASPRUNE_LOG", "warn");
    let _ = env_logger::Builder::from_env(env).format_timestamp_secs().try_init();
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let bars = bars::Bars::new(cli.quiet);
    match cli.command {
        Command::Audit(args) => audit::run(*args, &bars),
        Command::Prune(args) => prune::run(*args, &bars),
        Command::ImportGguf(args) => import_gguf::run(args, &bars),
        Command::Generate(args) => generate::run(args, &bars),
        Command::Eval(args) => eval::run(args, &bars),
        Command::Inspect(args) => inspect::run(args),
        Command::Apply(args) => apply::run(args, &bars),
        Command::Score(args) => score::run(args, &bars),
        Command::Mask(args) => mask::run(args),
        Command::Sweep(args) => sweep::run(args, &bars),
        Command::Analyze(args) => analyze::run(args),
        Command::Fixture(args) => fixture::run(args),
        Command::Scenarios(args) => scenarios::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Sign(args) => sign::run(args, &bars),
        Command::Verify(args) => verify::run(args, &bars),
        Command::Plant(args) => plant::run(args, &bars),
        Command::Power(args) => power::run(args),
        Command::Parity(args) => parity::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// The error and its causes joined by ": ", skipping causes the message already contains.
fn error_chain(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `value` as pretty JSON followed by a newline to stdout.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
