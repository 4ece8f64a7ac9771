"""``python -m soft_label_audit.annotation_tool``: the admin command line (see :mod:`.cli`)."""

from soft_label_audit.annotation_tool.cli import main

if __name__ == "__main__":
    main()
