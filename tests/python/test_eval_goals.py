"""scripts/eval_goals.py grades `tq eval --json` rows against issue 11's goals: one line per
goal with the codecs within its bits and which meet it, on rows made up here."""
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("eval_goals", os.path.join(HERE, "..", "..", "scripts", "eval_goals.py"))
eval_goals = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eval_goals)


def row(label, bits, kl, dppl, found=2, trials=2):
    k, _, v = label.partition("/")
    return {"label": label, "k": k, "v": v or k, "bits_per_value": bits, "kl": kl, "dppl_pct": dppl,
            "passkey": {"found": found, "trials": [{}] * trials}}


def goal_line(table, start):
    lines = [line for line in table.splitlines() if line.startswith("| " + start)]
    assert len(lines) == 1, (start, table)
    return lines[0]


def met_by(table, start):
    return goal_line(table, start).rstrip(" |").rsplit("| ", 1)[1]


def test_each_goal_names_the_codecs_that_meet_it():
    rows = [row("f16", 16, 0, 0), row("q4_0h", 4.5, 0.03, 3.0), row("turbo3", 3.25, 0.18, 19.0),
            row("tq3", 2.9989, 0.045, 3.8), row("tq3.5", 3.5, 0.021, 1.8), row("tq4.25", 4.25, 0.0072, 0.6)]
    t = eval_goals.issue11_table(rows, "llama")
    assert met_by(t, "≤ 3.5 bits") == "tq3.5"
    assert "turbo3 (0.1800)" in goal_line(t, "≤ 3.5 bits") and "tq4.25" not in goal_line(t, "≤ 3.5 bits")
    assert met_by(t, "≤ 4.25 bits") == "tq4.25"
    assert "(0.0150)" in goal_line(t, "≤ 4.25 bits")  # half of q4_0h's KL
    assert met_by(t, "≤ 3.0 bits") == "tq3"  # 2.9989 bits counts as 3
    assert met_by(t, "passkey") == "every preset"


def test_misses_are_said():
    rows = [row("f16", 16, 0, 0), row("q4_0h", 4.5, 0.03, 3.0), row("tq3", 3.0, 0.058, 6.2, found=1),
            row("tq4", 4.0, 0.014, 1.3)]
    t = eval_goals.issue11_table(rows, "llama")
    assert met_by(t, "≤ 3.5 bits") == "miss"
    assert met_by(t, "≤ 4.25 bits") == "miss"  # tq4's KL is under the bound, its ΔPPL is not
    assert met_by(t, "≤ 3.0 bits") == "miss"
    assert met_by(t, "passkey") == "miss: tq3"


def test_gemma3_has_the_tighter_three_bit_bound():
    rows = [row("f16", 16, 0, 0), row("q4_0h", 4.5, 0.019, 2.3), row("tq3", 3.0, 0.045, 4.0)]
    assert met_by(eval_goals.issue11_table(rows, "llama"), "≤ 3.0 bits") == "tq3"
    assert met_by(eval_goals.issue11_table(rows, "gemma3"), "≤ 3.0 bits") == "miss"


def test_without_q4_0h_the_comparisons_are_not_graded():
    rows = [row("f16", 16, 0, 0), row("tq3", 3.0, 0.04, 3.0)]
    t = eval_goals.issue11_table(rows, "llama")
    assert "q4_0h's" not in t and "No q4_0h row in this run" in t
    assert met_by(t, "≤ 3.0 bits") == "tq3"


def test_baselines_are_not_held_to_the_preset_passkey_goal():
    rows = [row("f16", 16, 0, 0), row("q4_0h", 4.5, 0.03, 3.0), row("turbo3", 3.25, 0.18, 19.0, found=1),
            row("tq3/tq3.5", 3.25, 0.03, 2.0)]
    assert met_by(eval_goals.issue11_table(rows, "llama"), "passkey") == "every preset"


if __name__ == "__main__":
    from standalone import run_tests

    run_tests(globals())
