//! Errors of loading and validating scenario manifests and name lists.

use std::path::PathBuf;

/// A scenario manifest or name list that could not be read, parsed or validated.
///
/// Every variant names the file and, where one is at fault, the key inside it.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the manifest schema (unknown key,
    /// missing key, wrong type); the message from the TOML parser names the key and line.
    #[error("{path}: invalid manifest: {message}")]
    Syntax {
        /// File that failed.
        path: PathBuf,
        /// Parser message, with line, column and key.
        message: String,
    },
    /// A value is present but not acceptable.
    #[error("{path}: key `{key}`: expected {expected}, found {found}")]
    Invalid {
        /// File that failed.
        path: PathBuf,
        /// Dotted key of the offending value, e.g. `variations[2].slots`.
        key: String,
        /// What a valid value looks like.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A template (or a context sentence) has unbalanced braces or a malformed placeholder.
    #[error("{path}: key `{key}`: expected a template with well-formed `{{placeholder}}`s, found {source}")]
    Template {
        /// File that failed.
        path: PathBuf,
        /// Dotted key of the template.
        key: String,
        /// What is wrong with it.
        source: super::template::TemplateError,
    },
    /// A placeholder of the template (or a context sentence) has no value in a variation.
    #[error("{path}: key `{key}`: template slot `{{{slot}}}` has no value (add `{slot} = \"...\"` to the variation's slots)")]
    MissingSlot {
        /// File that failed.
        path: PathBuf,
        /// Dotted key of the variation's slots table.
        key: String,
        /// Placeholder name without braces.
        slot: String,
    },
    /// A name group lists no names.
    #[error("{path}: key `{key}`: name group is empty (expected at least one name)")]
    EmptyGroup {
        /// File that failed.
        path: PathBuf,
        /// Dotted key of the group.
        key: String,
    },
    /// Two entries that must be unique share an id (variation id, name, scenario id).
    #[error("{path}: key `{key}`: duplicate {what} `{id}`")]
    Duplicate {
        /// File that failed.
        path: PathBuf,
        /// Dotted key of the second occurrence.
        key: String,
        /// Kind of entry, e.g. "variation id".
        what: &'static str,
        /// The repeated id.
        id: String,
    },
    /// The name list a scenario refers to exists nowhere that was searched.
    #[error("{path}: key `groups.names`: names list `{names}` not found (looked for {searched}; installed lists: {installed})")]
    NamesNotFound {
        /// Scenario file that refers to the list.
        path: PathBuf,
        /// The list's id as written.
        names: String,
        /// Files that were tried, comma-separated.
        searched: String,
        /// Ids of the lists shipped with biasprune, comma-separated.
        installed: String,
    },
    /// No scenario has the requested id.
    #[error("unknown scenario `{id}` (available: {available})")]
    UnknownScenario {
        /// The requested id.
        id: String,
        /// Ids in the catalogue, comma-separated.
        available: String,
    },
    /// A scenario's groups cannot be given held-out names from another list.
    #[error("scenario `{scenario}`: no held-out names from list `{list}`: {reason}")]
    Holdout {
        /// Scenario id.
        scenario: String,
        /// The list the names were to come from.
        list: String,
        /// What is missing.
        reason: String,
    },
    /// A request (variation, context level) names something the scenario does not have.
    #[error("scenario `{scenario}`: unknown {what} `{id}` (available: {available})")]
    Unknown {
        /// Scenario id.
        scenario: String,
        /// Kind of thing requested, e.g. "variation".
        what: &'static str,
        /// The requested id.
        id: String,
        /// Valid ids, comma-separated.
        available: String,
    },
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, ScenarioError>;
