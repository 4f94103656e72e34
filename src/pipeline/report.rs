//! The report stage: the job's summaries, records, mask and sweep rendered by `report`.

use super::inputs::PublishInputs;
use super::select::SWEEP_RULE;
use super::PipelineError;
use crate::analyze::distribution;
use crate::arch::{Architecture, Component};
use crate::manifest::UseCase;
use crate::mask::ZeroPlan;
use crate::report::{render_html, ReportInput, SweepView};

/// Renders OUT/report.html's bytes.
pub fn render(
    inputs: &PublishInputs,
    zero_plan: &ZeroPlan,
    arch: &Architecture,
    method: &serde_json::Value,
    use_case: &UseCase,
) -> Result<Vec<u8>, PipelineError> {
    let plan = inputs.plan;
    let total_entries: u64 =
        Component::ALL.into_iter().map(|c| arch.linear_params(c)).sum::<u64>() * arch.num_layers as u64;
    let grid = inputs.spec.method.sweep.as_ref();
    let sweep = inputs.sweep.zip(grid).map(|(s, grid)| SweepView {
        points: &s.points,
        p_grid: &grid.p_grid,
        q_grid: &grid.q_grid,
        chosen: (s.chosen.p, s.chosen.q),
        rule: SWEEP_RULE.to_string(),
    });
    let input = ReportInput {
        title: format!("{}, {} ({})", inputs.base.name, plan.scenario.id, plan.targets.join(", ")),
        base: &inputs.base,
        use_case,
        settings: method,
        scenario: &plan.scenario,
        baseline: &inputs.baseline.summary,
        baseline_records: &inputs.baseline.records,
        pruned: &inputs.pruned.summary,
        pruned_records: &inputs.pruned.records,
        target_variations: &plan.targets,
        distribution: &distribution(zero_plan, arch),
        pruned_entries: zero_plan.zeroed_count(),
        total_entries,
        sweep,
        generated: crate::manifest::creation_time(),
        verdict: Some(inputs.verdict),
        nothing_to_remove: (!inputs.disparity.significant).then(|| inputs.disparity.describe()),
    };
    render_html(&input).map(String::into_bytes).map_err(PipelineError::Report)
}
