"""The default model is the best thing fusekit has: the rule, and the measured table `fuse` reads."""

from __future__ import annotations

from fusekit.app import defaults
from fusekit.app.fuse import default_model
from fusekit.models.baselines import DEFAULT

BASE = {"EN": 7.0, "SD": 40.0, "SF": 10.0, "AG": 4.0, "VIF": 0.9, "Qabf": 0.6}


def _with(**changes):
    return {**BASE, **changes}


def test_rule_needs_vif_and_qabf_and_four_of_six():
    assert defaults.earns_default(_with(EN=8, SD=50, VIF=1.0, Qabf=0.7), BASE)
    # sharper everywhere but less faithful: not the default
    assert not defaults.earns_default(_with(EN=8, SD=50, SF=20, AG=9, Qabf=0.7), BASE)
    assert not defaults.earns_default(_with(EN=8, SD=50, SF=20, AG=9, VIF=1.0), BASE)
    # VIF and Qabf but only 3 of 6
    assert not defaults.earns_default(_with(EN=8, VIF=1.0, Qabf=0.7), BASE)
    assert not defaults.earns_default(BASE, BASE)  # a tie is not a win


def test_the_recorded_table_drives_fuse():
    table = defaults.read_table()
    assert set(table) == set(DEFAULT), "benchmarks/quality.py --write-defaults records every task"
    for task, entry in table.items():
        assert entry["baseline"] == DEFAULT[task]
        assert entry["default"] == ("compact" if defaults.earns_default(entry["compact"], entry[DEFAULT[task]]) else DEFAULT[task])
        assert default_model(task) == entry["default"]
