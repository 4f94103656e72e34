//! Finding scenarios: the manifests built into the binary, single files, user directories.
//!
//! A scenario refers to its name list by id; the list `ID` is looked up as
//! `<scenario dir>/../names/ID.toml`, then `<scenario dir>/names/ID.toml`, then among the
//! built-in lists, so a user directory laid out like `manifests/` works as is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{Result, ScenarioError};
use super::names::NameList;
use super::Scenario;

/// Prefix of the pseudo-paths of built-in manifests, shown in messages and listings.
pub const BUILT_IN: &str = "<built-in>";

const INSTALLED_NAMES: &[(&str, &str)] = &[
    ("audit40", include_str!("../../manifests/names/audit40.toml")),
    ("extended64", include_str!("../../manifests/names/extended64.toml")),
];

const INSTALLED_SCENARIOS: &[(&str, &str)] = &[
    ("purchase", include_str!("../../manifests/scenarios/purchase.toml")),
    ("chess", include_str!("../../manifests/scenarios/chess.toml")),
    ("public-office", include_str!("../../manifests/scenarios/public-office.toml")),
    ("sports", include_str!("../../manifests/scenarios/sports.toml")),
    ("hiring", include_str!("../../manifests/scenarios/hiring.toml")),
    ("purchase-10", include_str!("../../manifests/scenarios/purchase-10.toml")),
    ("activity", include_str!("../../manifests/scenarios/activity.toml")),
    ("service", include_str!("../../manifests/scenarios/service.toml")),
    ("finance", include_str!("../../manifests/scenarios/finance.toml")),
];

/// Where a catalogued scenario came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Shipped with biasprune (manifests/ built into the binary).
    BuiltIn,
    /// Read from a user directory; it replaces a built-in scenario with the same id.
    User,
}

/// All scenarios available to a run, by id.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: BTreeMap<String, (Scenario, Origin)>,
}

impl Catalog {
    /// The built-in scenarios only.
    pub fn installed() -> Result<Self> {
        let mut entries = BTreeMap::new();
        for (file, text) in INSTALLED_SCENARIOS {
            let path = built_in_path("scenarios", file);
            let scenario = Scenario::from_toml(text, &path, &|id| find_names(id, &path, &[]))?;
            entries.insert(scenario.id.clone(), (scenario, Origin::BuiltIn));
        }
        Ok(Self { entries })
    }

    /// The built-in scenarios plus those of `user_dir` (its `scenarios/` subdirectory if it
    /// has one, else the directory itself); a user scenario replaces a built-in one of the
    /// same id, two user files with one id are an error.
    pub fn load(user_dir: Option<&Path>) -> Result<Self> {
        let mut catalog = Self::installed()?;
        let Some(dir) = user_dir else {
            return Ok(catalog);
        };
        let mut first_file: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in manifest_files(&scenario_dir(dir))? {
            let scenario = Scenario::load(&path)?;
            if let Some(first) = first_file.insert(scenario.id.clone(), path.clone()) {
                return Err(ScenarioError::Duplicate {
                    path,
                    key: "id".to_string(),
                    what: "scenario id",
                    id: format!("{} (first defined in {})", scenario.id, first.display()),
                });
            }
            catalog.entries.insert(scenario.id.clone(), (scenario, Origin::User));
        }
        Ok(catalog)
    }

    /// The scenario with id `id`.
    pub fn get(&self, id: &str) -> Result<&Scenario> {
        self.entries.get(id).map(|(scenario, _)| scenario).ok_or_else(|| ScenarioError::UnknownScenario {
            id: id.to_string(),
            available: self.entries.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Scenarios with their origin, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = (&Scenario, Origin)> {
        self.entries.values().map(|(scenario, origin)| (scenario, *origin))
    }
}

impl Scenario {
    /// Reads and validates one manifest file, resolving its name list next to it or among
    /// the built-in lists.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::fsutil::read_capped_text(path, crate::fsutil::MAX_TOML_BYTES, crate::fsutil::Links::Follow)
            .map_err(|source| ScenarioError::Io { path: path.to_path_buf(), source })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let search = [dir.join("..").join("names"), dir.join("names")];
        Self::from_toml(&text, path, &|id| find_names(id, path, &search))
    }
}

/// The built-in name list with id `id`, if there is one.
pub fn installed_names(id: &str) -> Option<Result<NameList>> {
    INSTALLED_NAMES
        .iter()
        .find(|(name, _)| *name == id)
        .map(|(name, text)| NameList::from_toml(text, &built_in_path("names", name)))
}

fn find_names(id: &str, scenario_path: &Path, search: &[PathBuf]) -> Result<NameList> {
    let candidates: Vec<PathBuf> = search.iter().map(|dir| dir.join(format!("{id}.toml"))).collect();
    let found = match candidates.iter().find(|file| file.is_file()) {
        Some(file) => Some(NameList::load(file).and_then(|list| check_list_id(list, id, file))),
        None => installed_names(id),
    };
    found.unwrap_or_else(|| {
        let mut searched: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        searched.push("the built-in lists".to_string());
        Err(ScenarioError::NamesNotFound {
            path: scenario_path.to_path_buf(),
            names: id.to_string(),
            searched: searched.join(", "),
            installed: INSTALLED_NAMES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
        })
    })
}

fn check_list_id(list: NameList, id: &str, file: &Path) -> Result<NameList> {
    if list.id == id {
        return Ok(list);
    }
    Err(ScenarioError::Invalid {
        path: file.to_path_buf(),
        key: "id".to_string(),
        expected: format!("{id:?} (the file name, which scenarios refer to)"),
        found: format!("{:?}", list.id),
    })
}

fn built_in_path(kind: &str, id: &str) -> PathBuf {
    PathBuf::from(format!("{BUILT_IN}/manifests/{kind}/{id}.toml"))
}

fn scenario_dir(dir: &Path) -> PathBuf {
    let nested = dir.join("scenarios");
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| ScenarioError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// File names of the built-in scenario manifests (for tests that check nothing is missing).
#[cfg(test)]
pub(super) fn installed_scenario_files() -> Vec<String> {
    INSTALLED_SCENARIOS.iter().map(|(id, _)| format!("{id}.toml")).collect()
}
