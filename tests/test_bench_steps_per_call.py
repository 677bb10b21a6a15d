"""experiments.bench_steps_per_call: every K (and the automatic one) is timed in alternated rounds, and the
calls carry the train state on (each K's steps really run)."""

from __future__ import annotations

import pytest

from experiments import bench_steps_per_call as bench


def test_every_k_and_the_automatic_one_get_a_rate_per_round(monkeypatch):
    order = []

    class Recording(bench.Caller):
        def __call__(self):
            order.append(self.k)
            super().__call__()

    monkeypatch.setattr(bench, "Caller", Recording)
    rates, auto = bench.steps_per_second("ring_quick", [1, 3], steps=3, repeats=2)
    assert auto == 1  # a CPU runs the plain step (ganjax.calls.AUTO_STEPS_PER_CALL)
    assert sorted(rates) == [1, 3] and all(len(r) == 2 and min(r) > 0 for r in rates.values())
    # each K's first (compiling) call on construction; then round 0 starts with K=1 (3 calls of 1 step,
    # then 1 call of 3 steps), round 1 with K=3
    assert order == [1, 3] + [1, 1, 1, 3] + [3, 1, 1, 1]


def test_calls_carry_the_state_forward():
    runner, gan, config, stream = bench.build_case("ring_quick")
    caller = bench.Caller(runner, gan, config, stream, 2)  # the first call runs here
    assert int(caller.state.step) == 2
    caller()
    assert int(caller.state.step) == 4


@pytest.mark.parametrize("argv,message", [(["--ks=0"], "must be >= 1"), (["--ks=a"], "comma list of positive"),
                                          (["--cases=nope"], "unknown case")])
def test_bad_arguments_name_the_value(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert message in capsys.readouterr().err
