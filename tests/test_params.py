"""The one error template for configuration values (soft_label_audit.params)."""

from __future__ import annotations

import math

import pytest

from soft_label_audit import params as P
from soft_label_audit.errors import UserError


def test_template_names_path_rule_and_value():
    with pytest.raises(P.ParameterError) as err:
        P.positive_int("digits.synthetic.n_items", -3)
    assert str(err.value) == "digits.synthetic.n_items must be a positive integer, got -3"
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None])
def test_positive_int_refuses(bad):
    with pytest.raises(P.ParameterError, match="must be a positive integer"):
        P.positive_int("a.b", bad)


def test_integer_accepts_integral_floats():
    assert P.positive_int("a", 3.0) == 3 and P.non_negative_int("a", 0) == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1, 1.1, "0.5", False])
def test_probability_refuses(bad):
    with pytest.raises(P.ParameterError, match=r"must be a number in \[0, 1\]"):
        P.probability("simulated_crowd.careless.share", bad)


def test_open_bounds():
    assert P.number("lr", 1e-9, 0, low_open=True) == 1e-9
    with pytest.raises(P.ParameterError, match=r"in \(0, 1\)"):
        P.number("x", 1.0, 0, 1, low_open=True, high_open=True)


def test_range_and_choice_and_boolean():
    assert P.increasing_range("r", (1, 2)) == (1.0, 2.0)
    with pytest.raises(P.ParameterError, match="increasing pair"):
        P.increasing_range("r", [2, 1])
    with pytest.raises(P.ParameterError, match=r"r\[1\] must be"):
        P.increasing_range("r", [1, "x"])
    with pytest.raises(P.ParameterError, match="one of 'adam', 'sgd'"):
        P.choice("training.optimizer.name", "adamw", ["adam", "sgd"])
    with pytest.raises(P.ParameterError, match="true or false"):
        P.boolean("training.deterministic", 1)


def test_missing_and_unknown_keys():
    with pytest.raises(P.ParameterError, match=r"^training\.epochs is missing$"):
        P.required("training", {}, "epochs")
    with pytest.raises(P.ParameterError, match=r"unknown settings \['epocs'\]"):
        P.no_unknown("training", {"epocs": 3}, ["epochs"])
