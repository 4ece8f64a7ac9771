"""Wiring of the `reporting` pipeline: collects every ``{source}.{condition}`` namespace."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from soft_label_audit.grid import StudyGrid, active_grid

from . import nodes

#: per-run table -> (the study's table, collecting function)
COLLECTED = {
    "metrics": ("metrics_by_run", nodes.collect),
    "stability": ("stability_runs", nodes.collect),
    "reliability": ("reliability_by_run", nodes.collect),
    "cartography": ("cartography_by_run", nodes.collect),
    "curves": ("curves_by_run", nodes.collect),
    "test_predictions": ("test_predictions_by_run", nodes.collect),
}


def _collectors(grid: StudyGrid) -> list[Node]:
    """Each table is collected in two steps: per source, inside the source's namespace (so
    kedro-viz keeps the runs' tables in the source's box), then across sources. Stacking is
    associative, so the result is the one-step stack, in grid order."""
    collectors = []
    for kind, (study_table, collect) in COLLECTED.items():
        for source in grid.sources:
            collectors.append(
                Node(
                    collect,
                    [f"{source}.{condition}.{kind}" for condition in grid.conditions],
                    f"{source}.{kind}_of_conditions",
                    name=f"collect_{kind}",
                    namespace=source,
                )
            )
        collectors.append(
            Node(
                collect,
                [f"{source}.{kind}_of_conditions" for source in grid.sources],
                study_table,
                name=f"collect_{kind}",
            )
        )
    return collectors


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    return Pipeline(
        [
            *_collectors(grid),
            Node(nodes.summarize_study, "metrics_by_run", "study_summary", name="summarize_study"),
            Node(
                nodes.compare_conditions,
                [
                    "metrics_by_run",
                    "test_predictions_by_run",
                    "cartography_by_run",
                    "human_soft_labels",
                    "item_stats",
                    "params:reporting",
                    "params:evaluation",
                    "params:labels.none_slot",
                ],
                ["paired_differences", "claims", "power", "stability_ratios"],
                name="compare_conditions",
            ),
            Node(
                nodes.stability_tables,
                [
                    "metrics_by_run",
                    "stability_runs",
                    "curves_by_run",
                    "stability_ratios",
                    "params:evaluation",
                ],
                ["stability_by_condition", "validation_curves_by_epoch"],
                name="stability_tables",
            ),
            Node(nodes.draw_claims, "claims", "claims_figure", name="draw_claims"),
            Node(
                nodes.reliability_figure,
                ["reliability_by_run", "metrics_by_run", "params:evaluation"],
                "reliability_diagrams_figure",
                name="draw_reliability_diagrams",
            ),
            Node(
                nodes.ece_by_band_figure,
                ["metrics_by_run", "params:evaluation"],
                "ece_by_band_figure",
                name="draw_ece_by_band",
            ),
            Node(
                nodes.cartography_figure,
                ["cartography_by_run", "params:reporting", "params:evaluation"],
                "cartography_maps_figure",
                name="draw_cartography_maps",
            ),
            Node(
                nodes.validation_curves_figure,
                ["curves_by_run", "params:evaluation"],
                "validation_curves_figure",
                name="draw_validation_curves",
            ),
        ],
        tags="reporting",
    )
