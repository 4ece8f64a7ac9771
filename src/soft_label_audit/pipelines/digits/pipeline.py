"""Wiring of the `digits` pipeline: real MNIST, the synthetic ambiguous variant, the study subset
and the held-out scoring pool."""

from kedro.pipeline import Pipeline, node

from soft_label_audit.grid import active_items_from

from . import nodes


def _study_node(items_from: str):
    """``digits.study.items_from``: drawn per source, or exactly the vote file's items (the
    node then reads ``annotation_input``, so the study follows the file)."""
    if items_from == "votes":
        return node(
            func=nodes.study_items_from_votes,
            inputs=["digits", "annotation_input", "params:digits.study"],
            outputs="study_items",
            name="choose_study_items",
        )
    return node(
        func=nodes.choose_study_items,
        inputs=["digits", "params:digits.study"],
        outputs="study_items",
        name="choose_study_items",
    )


def create_pipeline(items_from: str | None = None, **kwargs) -> Pipeline:
    items_from = items_from or active_items_from()
    return Pipeline(
        [
            node(
                func=nodes.build_mnist_table,
                inputs="mnist_raw",
                outputs="mnist_digits",
                name="build_mnist_table",
            ),
            node(
                func=nodes.make_synthetic_digits,
                inputs=["mnist_raw", "params:digits.synthetic"],
                outputs="synthetic_digits",
                name="make_synthetic_digits",
            ),
            node(
                func=nodes.combine_digits,
                inputs=["mnist_digits", "synthetic_digits"],
                outputs="digits",
                name="combine_digits",
            ),
            _study_node(items_from),
            node(
                func=nodes.build_scoring_pool,
                inputs=[
                    "mnist_raw",
                    "digits",
                    "study_items",
                    "params:digits.synthetic",
                    "params:digits.pool",
                ],
                outputs="pool_digits",
                name="build_scoring_pool",
            ),
            node(
                func=nodes.plot_synthetic_samples,
                inputs=["synthetic_digits", "params:digits.figure"],
                outputs="synthetic_samples_figure",
                name="plot_synthetic_samples",
            ),
        ]
    )
