"""Wiring of the `digits` pipeline: real MNIST, the synthetic ambiguous variant, the study subset."""

from kedro.pipeline import Node, Pipeline

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(nodes.build_mnist_table, "mnist_raw", "mnist_digits", name="build_mnist_table"),
            Node(
                nodes.train_digit_autoencoder,
                ["mnist_raw", "params:digits.autoencoder"],
                "digit_autoencoder",
                name="train_digit_autoencoder",
            ),
            Node(
                nodes.make_synthetic_digits,
                ["digit_autoencoder", "mnist_raw", "params:digits.synthetic"],
                "synthetic_digits",
                name="make_synthetic_digits",
            ),
            Node(
                nodes.combine_digits,
                ["mnist_digits", "synthetic_digits"],
                "digits",
                name="combine_digits",
            ),
            Node(
                nodes.choose_study_items,
                ["digits", "params:digits.study"],
                "study_items",
                name="choose_study_items",
            ),
            Node(
                nodes.plot_synthetic_samples,
                ["synthetic_digits", "params:digits.figure"],
                "synthetic_samples_figure",
                name="plot_synthetic_samples",
            ),
        ]
    )
