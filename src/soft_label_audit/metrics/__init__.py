"""Plain numerics for the evaluation stage: scoring rules, calibration, human alignment,
difficulty bands, stability across seeds and dataset cartography. Nothing here knows Kedro."""
