"""Wiring of the `evaluation` pipeline: one namespace ``{source}.{condition}`` per study run.

The runs' ``figures`` go to MLflow through the tracking hook and are read by no node; each source
gathers them by condition into ``{source}.figures_of_conditions`` so that kedro-viz draws them
inside the source's box (:func:`soft_label_audit.grid.gather`)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, bind_cell, gather

from . import nodes

SHARED_INPUTS = {"human_soft_labels", "item_stats", "pool_digits"}
PARAMETERS = {"params:evaluation", "params:labels.none_slot"}


def _run_pipeline(source: str, condition: str) -> Pipeline:
    def bound(func):
        return bind_cell(func, source, condition)

    template = Pipeline(
        [
            node(
                func=bound(nodes.score_test_predictions),
                inputs=[
                    "test_predictions",
                    "human_soft_labels",
                    "item_stats",
                    "params:evaluation",
                    "params:labels.none_slot",
                ],
                outputs=["test_metrics", "reliability"],
                name="score_test_predictions",
            ),
            node(
                func=bound(nodes.score_other_scopes),
                inputs=[
                    "pool_predictions",
                    "final_predictions",
                    "pool_digits",
                    "item_stats",
                    "params:evaluation",
                ],
                outputs="scope_metrics",
                name="score_other_scopes",
            ),
            node(
                func=bound(nodes.map_training_dynamics),
                inputs=["dynamics", "item_stats", "targets", "params:evaluation"],
                outputs=["cartography", "cartography_summary"],
                name="map_training_dynamics",
            ),
            node(
                func=bound(nodes.convergence_by_seed),
                inputs=["curves", "params:evaluation"],
                outputs="convergence",
                name="convergence_by_seed",
            ),
            node(
                func=nodes.assemble_run_metrics,
                inputs=["test_metrics", "scope_metrics", "cartography_summary", "convergence"],
                outputs="metrics",
                name="assemble_run_metrics",
            ),
            node(
                func=bound(nodes.seed_stability),
                inputs=["test_predictions", "curves", "params:evaluation"],
                outputs="stability",
                name="seed_stability",
            ),
            node(
                func=bound(nodes.run_figures),
                inputs=["reliability", "cartography"],
                outputs="figures",
                name="run_figures",
            ),
        ]
    )
    by_condition = Pipeline(
        template, inputs=SHARED_INPUTS, parameters=PARAMETERS, namespace=condition, tags=condition
    )
    return Pipeline(by_condition, inputs=SHARED_INPUTS, parameters=PARAMETERS, namespace=source)


def _gather_figures(grid: StudyGrid, source: str) -> Pipeline:
    gathering = node(
        func=gather(grid.conditions),
        inputs=[f"{source}.{condition}.figures" for condition in grid.conditions],
        outputs=f"{source}.figures_of_conditions",
        name="gather_figures",
        namespace=source,
    )
    return Pipeline([gathering])


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    runs = sum((_run_pipeline(s, c) for s, c in grid.namespaces()), Pipeline([]))
    return runs + sum((_gather_figures(grid, source) for source in grid.sources), Pipeline([]))
