"""Wiring of the `evaluation` pipeline: one namespace ``{source}.{condition}`` per study run."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell

from . import nodes

SHARED_INPUTS = {"human_soft_labels", "item_stats"}
PARAMETERS = {"params:evaluation", "params:labels.none_slot"}


def _run_pipeline(source: str, condition: str) -> Pipeline:
    def bound(func):
        return bind_cell(func, source, condition)

    template = Pipeline(
        [
            Node(
                bound(nodes.score_test_predictions),
                [
                    "test_predictions",
                    "human_soft_labels",
                    "item_stats",
                    "params:evaluation",
                    "params:labels.none_slot",
                ],
                ["test_metrics", "reliability"],
                name="score_test_predictions",
            ),
            Node(
                bound(nodes.map_training_dynamics),
                ["dynamics", "item_stats", "params:evaluation"],
                ["cartography", "cartography_summary"],
                name="map_training_dynamics",
            ),
            Node(
                bound(nodes.convergence_by_seed),
                ["curves", "params:evaluation"],
                "convergence",
                name="convergence_by_seed",
            ),
            Node(
                nodes.assemble_run_metrics,
                ["test_metrics", "cartography_summary", "convergence"],
                "metrics",
                name="assemble_run_metrics",
            ),
            Node(
                bound(nodes.seed_stability),
                ["test_predictions", "curves", "params:evaluation"],
                "stability",
                name="seed_stability",
            ),
            Node(
                bound(nodes.run_figures),
                ["reliability", "cartography"],
                "figures",
                name="run_figures",
            ),
        ]
    )
    by_condition = Pipeline(
        template, inputs=SHARED_INPUTS, parameters=PARAMETERS, namespace=condition
    )
    return Pipeline(by_condition, inputs=SHARED_INPUTS, parameters=PARAMETERS, namespace=source)


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    return sum((_run_pipeline(s, c) for s, c in grid.namespaces()), Pipeline([]))
