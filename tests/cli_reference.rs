//! The README's command reference (docs/cli.md) is generated from `--help`: this fails when
//! a flag or command changed and the reference was not regenerated, and checks that the
//! README names every command.

use std::process::Command;

fn generated_reference() -> String {
    let output = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cli-reference.sh"))
        .env("BIN", env!("CARGO_BIN_EXE_biasprune"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn docs_cli_md_is_what_help_prints() {
    let generated = generated_reference();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    assert!(
        generated == committed,
        "docs/cli.md is out of date with --help: run `scripts/cli-reference.sh > docs/cli.md`"
    );
}

#[test]
fn the_readme_names_every_command() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let generated = generated_reference();
    let commands: Vec<&str> = generated.lines().filter_map(|l| l.strip_prefix("## biasprune ")).collect();
    assert!(commands.len() >= 17, "{commands:?}");
    for command in commands {
        assert!(readme.contains(&format!("biasprune {command}")), "README.md does not mention `biasprune {command}`");
    }
    assert!(readme.contains("docs/cli.md"), "README.md must point to the generated reference");
}
