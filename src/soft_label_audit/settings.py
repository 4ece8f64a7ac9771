"""Project settings (Kedro). See https://docs.kedro.org/en/stable/configure/configuration_basics/"""

from soft_label_audit.config_loader import SourceRootConfigLoader
from soft_label_audit.contract_hook import TableContractHook
from soft_label_audit.hooks import StudyGridHook
from soft_label_audit.provenance import ProvenanceHook
from soft_label_audit.tracking import MlflowChildRunsHook

# The grid hook must see the context before pipelines are built; kedro-mlflow registers its
# own hook through its plugin entry point; the child-run hook logs into kedro-mlflow's parent run.
# Hooks run last-in first-out: the grid hook comes last so it runs first. The provenance hook
# checks a run's inputs before any other hook's before_pipeline_run (tryfirst) and records the
# provenance of its outputs when it ends.
HOOKS = (TableContractHook(), MlflowChildRunsHook(), ProvenanceHook(), StudyGridHook())

# a run on another annotation source than the environment's writes under its own data root
CONFIG_LOADER_CLASS = SourceRootConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # environments (conf/test, conf/released, conf/local) override parameters key by key
    "merge_strategy": {"parameters": "soft"},
}
