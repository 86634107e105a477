"""scripts/passkey_table.py: passkey margins of several `tq eval --json` runs as one table,
on reports made up here."""
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("passkey_table", os.path.join(HERE, "..", "..", "scripts", "passkey_table.py"))
passkey_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(passkey_table)


def row(label, kl, margins):
    trials = [{"length": 8192, "depth": d, "found": m > 0, "margin": m} for d, m in margins]
    return {"label": label, "kl": kl, "passkey": {"found": sum(m > 0 for _, m in margins), "trials": trials}}


def report(*rows):
    return {"rows": list(rows)}


def test_reference_once_then_each_run():
    runs = [("all layers", report(row("f16", 0.0, [(0.6, 0.82), (0.75, 0.61)]), row("tq3", 0.0383, [(0.75, -0.67), (0.6, -0.6)]))),
            ("layers 0-7", report(row("f16", 0.0, [(0.6, 0.82), (0.75, 0.61)]), row("tq3", 0.0137, [(0.6, 0.3), (0.75, -0.04)])))]
    lines = passkey_table.table(runs).splitlines()
    assert lines[0] == "| cache | KL | found | 8192 @ 0.6 | 8192 @ 0.75 |"
    assert lines[2] == "| f16 (reference) | — | 2/2 | +0.82 | +0.61 |"
    assert lines[3] == "| all layers | 0.0383 | 0/2 | -0.60 ✗ | -0.67 ✗ |"  # trials in depth order
    assert lines[4] == "| layers 0-7 | 0.0137 | 1/2 | +0.30 | -0.04 ✗ |"
    assert len(lines) == 5
    labelled = passkey_table.table(runs, with_labels=True).splitlines()
    assert labelled[3].startswith("| all layers: tq3 |")


def test_runs_with_other_trials_are_refused():
    runs = [("a", report(row("tq3", 0.04, [(0.6, 1.0)]))), ("b", report(row("tq3", 0.04, [(0.75, 1.0)])))]
    try:
        passkey_table.table(runs)
    except ValueError as e:
        assert "b: passkey trials" in str(e)
    else:
        raise AssertionError("trials at other depths were compared")


if __name__ == "__main__":
    from standalone import run_tests

    run_tests(globals())
