"""Plain crowd-annotation numerics (no Kedro): the simulated crowd and its perception model,
reading and validating annotation files, aggregation into soft labels, agreement statistics
and the annotation figures."""
