"""Wiring of the `reporting` pipeline: collects every ``{source}.{condition}`` namespace.

Laid out for kedro-viz, where a namespace is a box and every dataset crossing a box's edge is
drawn outside it. Each condition hands its run's tables out of its box as one dataset,
``{source}.{condition}.run_tables`` (``{kind}: table``), so that an opened source box shows its
conditions as boxes rather than a row of their tables; each source stacks its conditions'
tables kind by kind inside its box and hands them on as one dataset,
``{source}.runs_of_conditions`` (``{kind}: table``); the namespace ``reporting`` (one box)
stacks the sources, kind by kind, and draws the study's tables and figures. Dataset names carry
no stage prefix.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import StudyGrid, active_grid, gather, pick

from . import nodes

NAMESPACE = "reporting"

#: per-run table -> (the study's table, collecting function)
COLLECTED = {
    "metrics": ("metrics_by_run", nodes.collect),
    "stability": ("stability_runs", nodes.collect),
    "reliability": ("reliability_by_run", nodes.collect),
    "cartography": ("cartography_by_run", nodes.collect),
    "curves": ("curves_by_run", nodes.collect),
    "test_predictions": ("test_predictions_by_run", nodes.collect),
    "pool_predictions": ("pool_predictions_by_run", nodes.collect),
}


def run_tables(source: str, condition: str) -> str:
    """The dataset that carries one run's tables (``{kind}: table``) out of its condition's box."""
    return f"{source}.{condition}.run_tables"


def runs_of_source(source: str) -> str:
    """The dataset that carries one source's collected tables out of its box."""
    return f"{source}.runs_of_conditions"


def _per_source(grid: StudyGrid) -> Pipeline:
    """Each table is collected in two steps: per source, inside the source's namespace (so
    kedro-viz keeps the runs' tables in the source's box), then across sources
    (:func:`_across_sources`). Stacking is associative, so the result is the one-step stack,
    in grid order."""
    hand_outs = [
        node(
            func=gather(tuple(COLLECTED)),
            inputs=[f"{source}.{condition}.{kind}" for kind in COLLECTED],
            outputs=run_tables(source, condition),
            name="hand_run_to_source",
            namespace=f"{source}.{condition}",
            tags=condition,
        )
        for source, condition in grid.namespaces()
    ]
    collectors = [
        node(
            func=nodes.collect_by_kind,
            inputs=[run_tables(source, condition) for condition in grid.conditions],
            outputs=runs_of_source(source),
            name="collect_runs_of_conditions",
            namespace=source,
        )
        for source in grid.sources
    ]
    return Pipeline(hand_outs + collectors, tags="reporting")


def _across_sources(grid: StudyGrid) -> list:
    return [
        node(
            func=pick(kind, collect),
            inputs=[runs_of_source(source) for source in grid.sources],
            outputs=study_table,
            name=f"collect_{kind}",
        )
        for kind, (study_table, collect) in COLLECTED.items()
    ]


def create_pipeline(grid: StudyGrid | None = None, **kwargs) -> Pipeline:
    grid = grid or active_grid()
    study = Pipeline(
        [
            *_across_sources(grid),
            node(
                func=nodes.summarize_study,
                inputs="metrics_by_run",
                outputs="study_summary",
                name="summarize_study",
            ),
            node(
                func=nodes.compare_conditions,
                inputs=[
                    "metrics_by_run",
                    "test_predictions_by_run",
                    "cartography_by_run",
                    "human_soft_labels",
                    "item_stats",
                    "params:reporting",
                    "params:evaluation",
                    "params:labels.none_slot",
                    "pool_predictions_by_run",
                    "pool_digits",
                ],
                outputs=["paired_differences", "claims", "power", "stability_ratios"],
                name="compare_conditions",
            ),
            node(
                func=nodes.stability_tables,
                inputs=[
                    "metrics_by_run",
                    "stability_runs",
                    "curves_by_run",
                    "stability_ratios",
                    "params:evaluation",
                ],
                outputs=["stability_by_condition", "validation_curves_by_epoch"],
                name="stability_tables",
            ),
            node(
                func=nodes.draw_claims,
                inputs="claims",
                outputs="claims_figure",
                name="draw_claims",
            ),
            node(
                func=nodes.reliability_figure,
                inputs=["reliability_by_run", "metrics_by_run", "params:evaluation"],
                outputs="reliability_diagrams_figure",
                name="draw_reliability_diagrams",
            ),
            node(
                func=nodes.ece_by_band_figure,
                inputs=["metrics_by_run", "params:evaluation"],
                outputs="ece_by_band_figure",
                name="draw_ece_by_band",
            ),
            node(
                func=nodes.cartography_figure,
                inputs=["cartography_by_run", "params:reporting", "params:evaluation"],
                outputs="cartography_maps_figure",
                name="draw_cartography_maps",
            ),
            node(
                func=nodes.validation_curves_figure,
                inputs=["curves_by_run", "params:evaluation"],
                outputs="validation_curves_figure",
                name="draw_validation_curves",
            ),
        ],
        tags="reporting",
        namespace=NAMESPACE,
        prefix_datasets_with_namespace=False,
    )
    return _per_source(grid) + study
