//! One test per manifest validation error: each names the file and the key.

use std::path::PathBuf;

use super::super::*;

const NAMES: &str = r#"
id = "tiny"
description = "two groups"
[groups.a]
description = "group a"
names = [ { name = "Ann Alpha", gender = "woman" } ]
[groups.b]
description = "group b"
names = [ { name = "Bob Beta", gender = "man" } ]
"#;

const SCENARIO: &str = r#"
id = "toy"
description = "a toy"
template = "Buy a {item} from {name}. {context}How much?"
contexts = ["low", "high"]
[answer]
kind = "dollars"
range = [1, 100]
[groups]
names = "tiny"
majority = "a"
minority = "b"
[[variations]]
id = "pen"
slots = { item = "pen" }
context.high = "The pen is gold."
"#;

/// A user directory laid out like `manifests/`, holding one scenario and one names file.
struct Dir {
    root: tempfile::TempDir,
}

impl Dir {
    fn new(scenario: &str, names: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("scenarios")).unwrap();
        std::fs::create_dir_all(root.path().join("names")).unwrap();
        std::fs::write(root.path().join("scenarios/toy.toml"), scenario).unwrap();
        std::fs::write(root.path().join("names/tiny.toml"), names).unwrap();
        Self { root }
    }

    fn scenario_path(&self) -> PathBuf {
        self.root.path().join("scenarios/toy.toml")
    }

    fn load_error(&self) -> String {
        Scenario::load(&self.scenario_path()).unwrap_err().to_string()
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} should mention {part:?}");
    }
}

#[test]
fn valid_toy_loads_and_renders() {
    let dir = Dir::new(SCENARIO, NAMES);
    let toy = Scenario::load(&dir.scenario_path()).unwrap();
    let prompts = toy.prompts(ContextLevel::High, None).unwrap();
    let texts: Vec<&str> = prompts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Buy a pen from Ann Alpha. The pen is gold. How much?", "Buy a pen from Bob Beta. The pen is gold. How much?"]
    );
    assert_eq!(toy.prompts(ContextLevel::Low, None).unwrap()[0].text, "Buy a pen from Ann Alpha. How much?");
}

#[test]
fn unknown_key_is_rejected_with_file_and_key() {
    let dir = Dir::new(&SCENARIO.replace("kind = \"dollars\"", "kind = \"dollars\"\nunit = \"usd\""), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "unknown field `unit`", "kind", "range"]);
}

#[test]
fn unknown_key_in_names_file_is_rejected() {
    let dir =
        Dir::new(SCENARIO, &NAMES.replace("description = \"group a\"", "description = \"group a\"\nlabel = \"x\""));
    assert_mentions(&dir.load_error(), &["tiny.toml", "unknown field `label`"]);
}

#[test]
fn template_slot_without_value_is_rejected() {
    let dir = Dir::new(&SCENARIO.replace("slots = { item = \"pen\" }", "slots = { thing = \"pen\" }"), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`variations.pen.slots`", "slot `{item}` has no value"]);
}

#[test]
fn context_sentence_slot_without_value_is_rejected() {
    let dir = Dir::new(&SCENARIO.replace("The pen is gold.", "The {colour} pen."), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`variations.pen.context.high`", "slot `{colour}` has no value"]);
}

#[test]
fn missing_context_sentence_is_rejected() {
    let dir = Dir::new(&SCENARIO.replace("context.high = \"The pen is gold.\"", ""), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`variations.pen.context.high`", "found nothing"]);
}

#[test]
fn empty_group_is_rejected_naming_the_names_file_and_group() {
    let dir = Dir::new(SCENARIO, &NAMES.replace("names = [ { name = \"Bob Beta\", gender = \"man\" } ]", "names = []"));
    assert_mentions(&dir.load_error(), &["tiny.toml", "`groups.b.names`", "name group is empty"]);
}

#[test]
fn duplicate_variation_id_is_rejected() {
    let doubled =
        format!("{SCENARIO}\n[[variations]]\nid = \"pen\"\nslots = {{ item = \"ink\" }}\ncontext.high = \"x\"\n");
    let dir = Dir::new(&doubled, NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`variations[1].id`", "duplicate variation id `pen`"]);
}

#[test]
fn names_file_that_does_not_exist_is_rejected() {
    let dir = Dir::new(&SCENARIO.replace("names = \"tiny\"", "names = \"nosuch\""), NAMES);
    let message = dir.load_error();
    assert_mentions(
        &message,
        &["toy.toml", "`groups.names`", "`nosuch` not found", "nosuch.toml", "audit40, extended64"],
    );
}

#[test]
fn unknown_group_and_bad_range_and_bad_template_are_rejected() {
    let dir = Dir::new(&SCENARIO.replace("minority = \"b\"", "minority = \"c\""), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`groups.minority`", "(a, b)", "\"c\""]);
    let dir = Dir::new(&SCENARIO.replace("range = [1, 100]", "range = [100, 1]"), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`answer.range`", "[100, 1]"]);
    let dir = Dir::new(&SCENARIO.replace("range = [1, 100]", ""), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`answer.range`", "`dollars` has no default"]);
    let dir = Dir::new(&SCENARIO.replace("{item} from", "{item from"), NAMES);
    assert_mentions(&dir.load_error(), &["toy.toml", "`template`", "without `}`"]);
    let dir = Dir::new(
        &SCENARIO.replace("slots = { item = \"pen\" }", "slots = { item = \"pen\", colour = \"red\" }"),
        NAMES,
    );
    assert_mentions(&dir.load_error(), &["toy.toml", "`variations.pen.slots.colour`", "does not contain"]);
}

#[test]
fn duplicate_name_in_a_list_is_rejected() {
    let dir = Dir::new(SCENARIO, &NAMES.replace("Bob Beta", "Ann Alpha"));
    assert_mentions(&dir.load_error(), &["tiny.toml", "`groups.b.names[0]`", "duplicate name `Ann Alpha`"]);
}

#[test]
fn user_directory_adds_and_overrides_scenarios() {
    let dir = Dir::new(&SCENARIO.replace("id = \"toy\"", "id = \"purchase\""), NAMES);
    let catalog = Catalog::load(Some(dir.root.path())).unwrap();
    let (purchase, origin) = catalog.iter().find(|(s, _)| s.id == "purchase").unwrap();
    assert_eq!((origin, purchase.description.as_str()), (Origin::User, "a toy"));
    assert_eq!(catalog.iter().filter(|(_, o)| *o == Origin::BuiltIn).count(), 8);
}

#[test]
fn user_scenario_may_use_a_built_in_name_list() {
    let dir = Dir::new(
        &SCENARIO
            .replace("names = \"tiny\"", "names = \"audit40\"")
            .replace("\"a\"", "\"white\"")
            .replace("\"b\"", "\"black\""),
        NAMES,
    );
    let toy = Scenario::load(&dir.scenario_path()).unwrap();
    assert_eq!(toy.prompts(ContextLevel::Low, None).unwrap().len(), 40);
}
