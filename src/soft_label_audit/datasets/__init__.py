"""Custom Kedro datasets: all file I/O that nodes must not do themselves."""
