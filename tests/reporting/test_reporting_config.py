"""The ``reporting`` block read whole by ReportingConfig: every wrong-typed value, unknown key
and missing key of conf/base's block stops with a ParameterError naming its path."""

from __future__ import annotations

import copy

import pytest
import yaml

from soft_label_audit.params import ParameterError
from soft_label_audit.reporting.claim_kinds import (
    CLAIM_KINDS,
    BandEffectClaim,
    DifferenceClaim,
)
from soft_label_audit.reporting.config import REPORTING_EXAMPLE, ReportingConfig
from tests.conftest import PROJECT_ROOT

BASE = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_reporting.yml").read_text())[
    "reporting"
]
#: mappings whose keys are names (metric -> target effect), not settings
FREE_KEYS = {"reporting.power.targets"}
#: keys a claim entry may leave out (an entry without ``kind`` is a difference)
OPTIONAL_CLAIM_KEYS = {"kind"}


def _walk(node, path="reporting", keys=()):
    """(path, keys from the block's root, value) of every node of the block."""
    yield path, keys, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}", (*keys, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]", (*keys, i))


NODES = list(_walk(BASE))
MAPPINGS = [(path, keys, v) for path, keys, v in NODES if isinstance(v, dict)]


def _wrong(value):
    """A value of another type than ``value``'s."""
    if isinstance(value, str):
        return 12345
    if isinstance(value, (dict, list)):
        return "not a block or list"
    return "not a number"


def _with(keys, change):
    """conf/base's block with ``change(parent, key)`` applied to the node at ``keys``."""
    block = copy.deepcopy(BASE)
    if not keys:
        return change(None, None)
    parent = block
    for k in keys[:-1]:
        parent = parent[k]
    change(parent, keys[-1])
    return block


def _first_line(block) -> str:
    with pytest.raises(ParameterError) as info:
        ReportingConfig.from_params(block)
    return str(info.value).splitlines()[0]


def test_conf_base_block_reads_cleanly_with_a_spec_per_claim():
    config = ReportingConfig.from_params(BASE)
    assert [c.id for c in config.claims] == [c["id"] for c in BASE["claims"]]
    for spec, entry in zip(config.claims, BASE["claims"]):
        kind = entry["kind"] if "kind" in entry else "difference"  # no kind: a difference
        assert spec.kind == kind and type(spec) is CLAIM_KINDS[kind].spec
    assert config.alpha == BASE["alpha"] and config.bootstrap.n_resamples == 2000
    assert dict(config.power.targets) == BASE["power"]["targets"]
    assert config.stability.metrics == tuple(BASE["stability"]["metrics"])
    c = [spec for spec in config.claims if spec.id.startswith("c_")]
    assert c and all(isinstance(spec, BandEffectClaim) and spec.band == "high" for spec in c)


@pytest.mark.parametrize(("path", "keys", "value"), NODES, ids=[n[0] for n in NODES])
def test_every_wrong_typed_value_names_its_path(path, keys, value):
    def put(parent, key):
        if parent is None:
            return _wrong(value)
        parent[key] = _wrong(value)

    assert _first_line(_with(keys, put)).startswith(f"{path} must be ")


@pytest.mark.parametrize(
    ("path", "keys"),
    [(path, keys) for path, keys, _ in MAPPINGS if path not in FREE_KEYS],
    ids=[path for path, _, _ in MAPPINGS if path not in FREE_KEYS],
)
def test_every_unknown_key_is_refused(path, keys):
    block = copy.deepcopy(BASE)
    node = block
    for k in keys:
        node = node[k]
    node["zz_unknown"] = 1
    assert _first_line(block).startswith(f"{path} has unknown settings ['zz_unknown']")


REQUIRED = [
    (f"{path}.{key}", (*keys, key))
    for path, keys, v in MAPPINGS
    if path not in FREE_KEYS
    for key in v
    if not (path.startswith("reporting.claims[") and key in OPTIONAL_CLAIM_KEYS)
]


@pytest.mark.parametrize(("path", "keys"), REQUIRED, ids=[r[0] for r in REQUIRED])
def test_every_required_key_is_missed(path, keys):
    assert _first_line(_with(keys, lambda parent, key: parent.pop(key))) == f"{path} is missing"


def test_the_walk_reaches_every_kind_of_node():
    paths = {path for path, _, _ in NODES}
    assert {
        "reporting.alpha",
        "reporting.bootstrap.seed",
        "reporting.power.reference.baseline",
        "reporting.power.targets.accuracy",
        "reporting.stability.metrics[0]",
        "reporting.claims[3].band",
        "reporting.claims[7].metric",
    } <= paths
    assert "reporting.claims[3].band" in {r[0] for r in REQUIRED}


@pytest.mark.parametrize("alpha", [0, 1, -0.05, 1.5, "0.05", None, True])
def test_alpha_is_a_level_in_the_open_unit_interval(alpha):
    line = _first_line({**BASE, "alpha": alpha})
    assert line == f"reporting.alpha must be a number in (0, 1), got {alpha!r}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b["claims"][3].update(band="hgh"),
            "reporting.claims[3].band must be one of 'unanimous', 'low', 'high', got 'hgh'",
        ),
        (
            lambda b: b["claims"][0].update(direction="up"),
            "reporting.claims[0].direction must be one of 'increase', 'decrease', got 'up'",
        ),
        (
            lambda b: b["claims"][1].update(id="a_accuracy"),
            "reporting.claims[1].id must be an id no other claim has, got 'a_accuracy'",
        ),
        (
            lambda b: b["bootstrap"].update(n_resamples=0),
            "reporting.bootstrap.n_resamples must be a positive integer, got 0",
        ),
        (
            lambda b: b["bootstrap"].update(seed=-1),
            "reporting.bootstrap.seed must be a non-negative integer, got -1",
        ),
        (
            lambda b: b["power"].update(power=1.0),
            "reporting.power.power must be a number in (0, 1), got 1.0",
        ),
        (
            lambda b: b["power"]["targets"].update(accuracy=0),
            "reporting.power.targets.accuracy must be a number > 0, got 0",
        ),
        (
            lambda b: b.update(baselines=[]),
            "reporting.baselines must be a non-empty list of conditions, got []",
        ),
        (
            lambda b: b.update(claims=None),
            "reporting.claims must be a list of claims, got None",
        ),
    ],
)
def test_values_out_of_their_range(change, message):
    block = copy.deepcopy(BASE)
    change(block)
    assert _first_line(block) == message


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("condition", "reporting.claims[0].condition"),
        ("baseline", "reporting.claims[0].baseline"),
    ],
)
def test_a_condition_must_be_a_label_condition(key, path):
    block = copy.deepcopy(BASE)
    block["claims"][0][key] = "human_sfot"
    line = _first_line(block)
    assert line.startswith(f"{path} must be one of 'original_hard', ") and line.endswith(
        "got 'human_sfot'"
    )
    for where in (["power", "reference"], ["stability"]):
        block = copy.deepcopy(BASE)
        node = block
        for k in where:
            node = node[k]
        node["baseline"] = "human_sfot"
        assert _first_line(block).startswith(f"reporting.{'.'.join(where)}.baseline must be one of")


def test_a_claim_needs_its_kind_and_a_kind_refuses_others_fields():
    entry = {k: v for k, v in BASE["claims"][3].items() if k not in ("kind", "band")}
    assert _first_line({**REPORTING_EXAMPLE, "claims": [entry]}) == (
        "reporting.claims[0].kind is missing"
    )
    config = ReportingConfig.from_params(
        {**REPORTING_EXAMPLE, "claims": [{**entry, "kind": "difference"}]}
    )
    assert type(config.claims[0]) is DifferenceClaim and config.claims[0].kind == "difference"
    # the band of a band contrast, with the kind of a difference: a field no difference has
    entry = {**BASE["claims"][3], "kind": "difference"}
    assert _first_line({**REPORTING_EXAMPLE, "claims": [entry]}) == (
        "reporting.claims[0] has unknown settings ['band']; known: ['baseline', 'condition', "
        "'direction', 'id', 'kind', 'metric', 'scope', 'statement', 'target']"
    )


@pytest.mark.parametrize(
    ("index", "change", "rule"),
    [
        (0, {"metric": "kl_human"}, "'test' for this claim"),  # a human-label metric
        (0, {"metric": "nll__band_high"}, "'test' for this claim"),  # no bands in the pool
        (0, {"metric": "ece_human_15"}, "'test' for this claim"),
        (3, {}, "'test' for this claim"),  # a band contrast
        (5, {}, "'test' for this claim"),  # a cartography correlation
    ],
)
def test_the_pool_scope_takes_label_free_metrics_and_kinds_only(index, change, rule):
    block = copy.deepcopy(BASE)
    block["claims"][index].update(scope="pool", **change)
    line = _first_line(block)
    assert line.startswith(f"reporting.claims[{index}].scope must be {rule}"), line


def test_conf_base_scopes_and_targets():
    config = ReportingConfig.from_params(BASE)
    scopes = {c.id: c.scope for c in config.claims}
    assert [i for i, s in scopes.items() if s == "pool"] == [
        "a_accuracy",
        "b_mode_shift",
        "f_vs_regularisers",
        "f_vs_permuted",
    ]
    assert {c.id: c.target for c in config.claims}["d_stability"] == 0.8
    # the pool accepts every label-free metric, e.g. a class-wise ECE
    block = copy.deepcopy(BASE)
    block["claims"][0].update(metric="classwise_ece_15")
    assert ReportingConfig.from_params(block).claims[0].metric == "classwise_ece_15"
    block["claims"][6].update(target=1)
    assert _first_line(block) == (
        "reporting.claims[6].target must be a std ratio other than 1, got 1.0"
    )


def test_the_example_block_is_complete():
    config = ReportingConfig.from_params(REPORTING_EXAMPLE)
    assert config.claims == () and config.power.reference.condition == "human_soft"
    for key in REPORTING_EXAMPLE:
        assert _first_line({k: v for k, v in REPORTING_EXAMPLE.items() if k != key}) == (
            f"reporting.{key} is missing"
        )
