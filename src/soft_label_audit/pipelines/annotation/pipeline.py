"""Wiring of the `annotation` pipeline: any annotation source -> validated human soft labels.

Every node sits in the namespace ``annotation`` (one box in kedro-viz); dataset names keep no
prefix, since the other stages and the catalog read them by their plain names.
"""

from kedro.pipeline import Pipeline, node

from . import nodes

NAMESPACE = "annotation"


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                func=nodes.collect_annotations,
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
                func=nodes.aggregate_soft_labels,
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
                func=nodes.select_soft_labels,
                inputs=["human_soft_labels_by_rule", "params:annotation"],
                outputs="human_soft_labels",
                name="select_aggregation_rule",
            ),
            node(
                func=nodes.compute_item_stats,
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
                func=nodes.compute_annotator_stats,
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
                func=nodes.compute_agreement,
                inputs=["validated_annotations", "item_stats"],
                outputs="annotation_agreement",
                name="compute_annotation_agreement",
            ),
            node(
                func=nodes.plot_entropy_by_source,
                inputs="item_stats",
                outputs="human_entropy_by_source_figure",
                name="plot_entropy_by_source",
            ),
            node(
                func=nodes.plot_mode_confusion,
                inputs="item_stats",
                outputs="mode_confusion_figure",
                name="plot_mode_confusion",
            ),
            node(
                func=nodes.plot_disputed_items,
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
                func=nodes.check_crowd_validity,
                inputs=[
                    "item_stats",
                    "human_soft_labels",
                    "validated_annotations",
                    "study_digits",
                    "digits",
                    "params:crowd_validity",
                    "params:labels.none_slot",
                    "params:simulated_crowd",
                ],
                outputs=["crowd_validity", "crowd_validity_figure"],
                name="check_crowd_validity",
            ),
        ],
        namespace=NAMESPACE,
        prefix_datasets_with_namespace=False,
    )
