"""The web annotation tool: collects human votes on the study items into SQLite.

``python -m soft_label_audit.annotation_tool --help`` lists the commands; docs/annotation_tool.md
explains a study from ``init`` to ``export`` and the annotation pipeline. Modules:
``db`` (schema, migrations, engine), ``store`` (assignment, vote and export rules),
``item_sets`` (study items + attention checks), ``png`` (image encoding), ``web`` (Flask app),
``cli`` (admin commands).
"""
