//! Where a planted fixture holds its disparity, read back from its sidecar, and how much
//! of it a mask covers (the positive control's recall and precision).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PlantError, SIDECAR_FILE};
use crate::arch::{classify_tensor, Architecture, Component};
use crate::mask::ZeroPlan;

/// The planted layer and units a fixture's sidecar records.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PlantedSites {
    /// The layer whose units were trained.
    pub layer: usize,
    /// The planted units, ascending (row of gate_proj and up_proj, column of down_proj).
    pub units: Vec<usize>,
}

/// The part of the sidecar this module reads.
#[derive(Deserialize)]
struct SidecarSites {
    format: String,
    layer: usize,
    units: Vec<usize>,
}

/// Reads the planted sites of checkpoint `dir`: None when it holds no sidecar (not a
/// planted fixture), an error when the sidecar is unreadable or malformed.
pub fn planted_sites(dir: &Path) -> Result<Option<PlantedSites>, PlantError> {
    let path = dir.join(SIDECAR_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |problem: String| PlantError::BadSidecar { path: path.clone(), problem };
    let bytes = crate::fsutil::read_capped(&path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|e| PlantError::io(&path, e))?;
    let sidecar: SidecarSites = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if sidecar.format != "biasprune-plant" {
        return Err(bad(format!("format {:?}", sidecar.format)));
    }
    if sidecar.units.is_empty() || !sidecar.units.windows(2).all(|w| w[0] < w[1]) {
        return Err(bad(format!("units {:?} (expected a non-empty ascending list)", sidecar.units)));
    }
    Ok(Some(PlantedSites { layer: sidecar.layer, units: sidecar.units }))
}

/// How much of a plant a mask covers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recovery {
    /// Entries of the planted down_proj columns the mask zeroes.
    pub planted_down_masked: u64,
    /// Entries of the planted down_proj columns (hidden × units).
    pub planted_down_entries: u64,
    /// Mask entries inside the planted units (their gate and up rows and down columns).
    pub masked_in_units: u64,
    /// Mask entries in all.
    pub masked: u64,
    /// `planted_down_masked / planted_down_entries`: the share of the plant's output
    /// weights the mask removes.
    pub recall: f64,
    /// `masked_in_units / masked` (0 for an empty mask): the share of the mask that hits
    /// the plant.
    pub precision: f64,
}

/// Counts the entries of a resolved mask that fall in the planted units of a model of
/// `arch`'s shapes.
pub fn recovery(plan: &ZeroPlan, arch: &Architecture, sites: &PlantedSites) -> Recovery {
    let units_in_range = sites.units.iter().filter(|&&u| u < arch.intermediate_size).count() as u64;
    let mut down_masked = 0u64;
    let mut in_units = 0u64;
    let mut flags = Vec::new();
    for (name, zeroing) in &plan.tensors {
        let Some((layer, component)) = classify_tensor(name) else { continue };
        if layer != sites.layer {
            continue;
        }
        flags.resize(zeroing.cols, false);
        match component {
            Component::Gate | Component::Up => {
                for &unit in sites.units.iter().filter(|&&u| u < zeroing.rows) {
                    in_units += zeroing.row_flags(unit, &mut flags) as u64;
                }
            }
            Component::Down => {
                for row in 0..zeroing.rows {
                    if zeroing.row_flags(row, &mut flags) > 0 {
                        down_masked += sites.units.iter().filter(|&&u| flags.get(u) == Some(&true)).count() as u64;
                    }
                }
            }
            _ => {}
        }
    }
    in_units += down_masked;
    let down_entries = arch.hidden_size as u64 * units_in_range;
    let masked = plan.zeroed_count();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Recovery {
        planted_down_masked: down_masked,
        planted_down_entries: down_entries,
        masked_in_units: in_units,
        masked,
        recall: ratio(down_masked, down_entries),
        precision: ratio(in_units, masked),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::arch::linear_weight_name;
    use crate::fixture::FixtureSpec;
    use crate::mask::{BitMask, TensorZeroing};

    fn arch() -> Architecture {
        let spec = FixtureSpec { num_layers: 2, hidden_size: 8, intermediate_size: 6, ..FixtureSpec::default() };
        Architecture::from_config(&spec.config_json()).unwrap()
    }

    fn zeroing(rows: usize, cols: usize) -> TensorZeroing {
        TensorZeroing { rows, cols, zero_rows: BTreeSet::new(), zero_cols: BTreeSet::new(), entries: None }
    }

    #[test]
    fn recall_counts_the_planted_down_columns_and_precision_the_whole_mask() {
        let sites = PlantedSites { layer: 1, units: vec![2, 4] };
        let mut plan = ZeroPlan::default();
        let mut down = zeroing(8, 6);
        down.zero_cols.insert(2);
        let mut entries = BitMask::new(8, 6);
        entries.set(0, 4);
        entries.set(3, 4);
        entries.set(3, 5);
        down.entries = Some(entries);
        plan.tensors.insert(linear_weight_name(1, Component::Down), down);
        let mut gate = zeroing(6, 8);
        gate.zero_rows.insert(4);
        gate.zero_rows.insert(0);
        plan.tensors.insert(linear_weight_name(1, Component::Gate), gate);
        let mut other_layer = zeroing(8, 6);
        other_layer.zero_cols.insert(2);
        plan.tensors.insert(linear_weight_name(0, Component::Down), other_layer);
        let r = recovery(&plan, &arch(), &sites);
        assert_eq!((r.planted_down_masked, r.planted_down_entries), (8 + 2, 16));
        assert_eq!(r.masked, 8 + 3 + 16 + 8);
        assert_eq!(r.masked_in_units, 10 + 8, "down entries of units 2 and 4, and gate row 4");
        assert!((r.recall - 10.0 / 16.0).abs() < 1e-12 && (r.precision - 18.0 / 35.0).abs() < 1e-12);
    }

    #[test]
    fn an_empty_mask_recovers_nothing() {
        let r = recovery(&ZeroPlan::default(), &arch(), &PlantedSites { layer: 0, units: vec![1] });
        assert_eq!((r.recall, r.precision, r.planted_down_entries), (0.0, 0.0, 8));
    }

    #[test]
    fn a_checkpoint_without_a_sidecar_is_not_a_fixture_and_a_bad_sidecar_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(planted_sites(dir.path()).unwrap(), None);
        let path = dir.path().join(SIDECAR_FILE);
        std::fs::write(&path, br#"{"format": "biasprune-plant", "layer": 3, "units": [5, 9]}"#).unwrap();
        assert_eq!(planted_sites(dir.path()).unwrap(), Some(PlantedSites { layer: 3, units: vec![5, 9] }));
        for (bytes, needle) in [
            (&br#"{"format": "other", "layer": 3, "units": [5]}"#[..], "format \"other\""),
            (br#"{"format": "biasprune-plant", "layer": 3, "units": [9, 5]}"#, "ascending"),
            (br#"{"format": "biasprune-plant", "units": [5]}"#, "layer"),
            (b"not json", "line 1 column"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let err = planted_sites(dir.path()).unwrap_err().to_string();
            assert!(err.contains(SIDECAR_FILE) && err.contains(needle), "{err}");
        }
    }
}
