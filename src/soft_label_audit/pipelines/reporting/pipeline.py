"""Wiring of the `reporting` pipeline: collects every ``{source}.{condition}`` namespace."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from soft_label_audit.grid import StudyGrid, active_grid

from . import nodes


def _per_run(grid: StudyGrid, name: str) -> list[str]:
    return [f"{source}.{condition}.{name}" for source, condition in grid.namespaces()]


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    return Pipeline(
        [
            Node(nodes.collect_runs, _per_run(grid, "metrics"), "metrics_by_run", name="collect_metrics"),
            Node(nodes.collect, _per_run(grid, "stability"), "stability_runs", name="collect_stability"),
            Node(nodes.collect, _per_run(grid, "reliability"), "reliability_by_run", name="collect_reliability"),
            Node(nodes.collect, _per_run(grid, "cartography"), "cartography_by_run", name="collect_cartography"),
            Node(nodes.collect, _per_run(grid, "curves"), "curves_by_run", name="collect_curves"),
            Node(nodes.summarize_study, "metrics_by_run", "study_summary", name="summarize_study"),
            Node(nodes.collect, _per_run(grid, "test_predictions"), "test_predictions_by_run",
                 name="collect_test_predictions"),
            Node(
                nodes.compare_conditions,
                ["metrics_by_run", "test_predictions_by_run", "cartography_by_run",
                 "human_soft_labels", "item_stats", "params:reporting", "params:evaluation",
                 "params:labels.none_slot"],
                ["paired_differences", "claims", "power", "stability_ratios"],
                name="compare_conditions",
            ),
            Node(
                nodes.stability_tables,
                ["metrics_by_run", "stability_runs", "curves_by_run", "stability_ratios",
                 "params:evaluation"],
                ["stability_by_condition", "validation_curves_by_epoch"],
                name="stability_tables",
            ),
            Node(nodes.draw_claims, "claims", "claims_figure", name="draw_claims"),
            Node(nodes.reliability_figure, ["reliability_by_run", "metrics_by_run", "params:evaluation"],
                 "reliability_diagrams_figure", name="draw_reliability_diagrams"),
            Node(nodes.ece_by_band_figure, ["metrics_by_run", "params:evaluation"], "ece_by_band_figure",
                 name="draw_ece_by_band"),
            Node(nodes.cartography_figure, ["cartography_by_run", "params:reporting", "params:evaluation"],
                 "cartography_maps_figure",
                 name="draw_cartography_maps"),
            Node(nodes.validation_curves_figure, ["curves_by_run", "params:evaluation"], "validation_curves_figure",
                 name="draw_validation_curves"),
        ],
        tags="reporting",
    )
