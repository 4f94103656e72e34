//! `biasprune scenarios`: listing, JSON output and exit codes on bad manifests.

use std::process::Command;

fn biasprune(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_biasprune")).args(args).output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_lists_the_nine_built_in_scenarios() {
    let (code, stdout, _) = biasprune(&["scenarios", "--json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["activity", "chess", "finance", "hiring", "public-office", "purchase", "purchase-10", "service", "sports"]
    );
    let purchase = &list[5];
    assert_eq!(purchase["origin"], "built-in");
    assert_eq!(purchase["majority"]["names"], 20);
    assert_eq!(purchase["variations"][0]["range"]["max"], 20000.0);
}

#[test]
fn table_has_one_line_per_scenario() {
    let (code, stdout, _) = biasprune(&["scenarios"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 10, "header + 9 scenarios:\n{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("purchase ") && l.contains("bicycle, car, house")));
}

#[test]
fn a_bad_user_manifest_exits_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"
id = "toy"
description = "x"
template = "Buy a {item} from {name}."
contexts = ["low"]
[answer]
kind = "dollars"
range = [1, 10]
[groups]
names = "audit40"
majority = "white"
minority = "black"
[[variations]]
id = "pen"
slots = { thing = "pen" }
"#;
    std::fs::write(dir.path().join("toy.toml"), manifest).unwrap();
    let (code, _, stderr) = biasprune(&["scenarios", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("toy.toml") && stderr.contains("`variations.pen.slots`") && stderr.contains("`{item}`"),
        "{stderr}"
    );
}

#[test]
fn a_valid_user_manifest_is_listed_as_user() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"
id = "toy"
description = "x"
template = "Buy a {item} from {name}."
contexts = ["low"]
[answer]
kind = "dollars"
range = [1, 10]
[groups]
names = "audit40"
majority = "white"
minority = "black"
[[variations]]
id = "pen"
slots = { item = "pen" }
"#;
    std::fs::write(dir.path().join("toy.toml"), manifest).unwrap();
    let (code, stdout, _) = biasprune(&["scenarios", "--json", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let toy = list.as_array().unwrap().iter().find(|s| s["id"] == "toy").unwrap();
    assert_eq!(toy["origin"], "user");
}

#[test]
fn a_names_value_that_is_a_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let list_path = elsewhere.path().join("list");
    let builtin = include_str!("../manifests/names/audit40.toml");
    let original_id = builtin.lines().find(|l| l.starts_with("id = ")).expect("the list has an id line");
    let list = builtin.replacen(original_id, &format!("id = {:?}", list_path.to_str().unwrap()), 1);
    std::fs::write(elsewhere.path().join("list.toml"), list).unwrap();
    let manifest = format!(
        r#"
id = "toy"
description = "x"
template = "Buy a {{item}} from {{name}}."
contexts = ["low"]
[answer]
kind = "dollars"
range = [1, 10]
[groups]
names = {:?}
majority = "white"
minority = "black"
[[variations]]
id = "pen"
slots = {{ item = "pen" }}
"#,
        list_path.to_str().unwrap()
    );
    std::fs::write(dir.path().join("toy.toml"), manifest).unwrap();
    let (code, _, stderr) = biasprune(&["scenarios", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("toy.toml") && stderr.contains("`groups.names`") && stderr.contains("not a path"),
        "{stderr}"
    );
}
