"""Wiring of the `annotation` pipeline: any annotation source -> validated human soft labels."""

from kedro.pipeline import Pipeline, node

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.collect_annotations,
                inputs=[
                    "annotation_input",
                    "digits",
                    "study_items",
                    "params:annotation",
                    "params:simulated_crowd",
                ],
                outputs=[
                    "raw_annotations",
                    "validated_annotations",
                    "study_digits",
                    "released_soft_labels",
                    "annotator_traits",
                ],
                name="collect_and_validate_annotations",
            ),
            node(
                nodes.aggregate_soft_labels,
                inputs=[
                    "validated_annotations",
                    "released_soft_labels",
                    "study_digits",
                    "params:annotation",
                ],
                outputs="human_soft_labels_by_rule",
                name="aggregate_soft_labels",
            ),
            node(
                nodes.select_soft_labels,
                inputs=["human_soft_labels_by_rule", "params:annotation"],
                outputs="human_soft_labels",
                name="select_aggregation_rule",
            ),
            node(
                nodes.compute_item_stats,
                inputs=[
                    "human_soft_labels",
                    "validated_annotations",
                    "study_digits",
                    "released_soft_labels",
                    "params:labels.none_slot",
                    "params:annotation.mode_support",
                ],
                outputs="item_stats",
                name="compute_item_stats",
            ),
            node(
                nodes.compute_annotator_stats,
                inputs=[
                    "validated_annotations",
                    "human_soft_labels",
                    "annotator_traits",
                    "params:annotation_report",
                ],
                outputs="annotator_stats",
                name="compute_annotator_stats",
            ),
            node(
                nodes.compute_agreement,
                inputs=["validated_annotations", "item_stats"],
                outputs="annotation_agreement",
                name="compute_annotation_agreement",
            ),
            node(
                nodes.plot_entropy_by_source,
                inputs="item_stats",
                outputs="human_entropy_by_source_figure",
                name="plot_entropy_by_source",
            ),
            node(
                nodes.plot_mode_confusion,
                inputs="item_stats",
                outputs="mode_confusion_figure",
                name="plot_mode_confusion",
            ),
            node(
                nodes.plot_disputed_items,
                inputs=[
                    "item_stats",
                    "human_soft_labels",
                    "study_digits",
                    "params:annotation_report",
                ],
                outputs="disputed_items_figure",
                name="plot_disputed_items",
            ),
            node(
                nodes.check_crowd_validity,
                inputs=[
                    "item_stats",
                    "human_soft_labels",
                    "validated_annotations",
                    "study_digits",
                    "digits",
                    "params:crowd_validity",
                    "params:labels.none_slot",
                ],
                outputs=["crowd_validity", "crowd_validity_figure"],
                name="check_crowd_validity",
            ),
        ]
    )
