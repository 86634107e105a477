#!/usr/bin/env python3
"""scripts/llama_cpp/side_by_side.py: rows, ratios, the memory budget and the issue-12 goals
from small llama-bench and tq bench model documents."""
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "scripts" / "llama_cpp"))
import side_by_side as sbs  # noqa: E402

MB = 1000 * 1000


def llama(depth_speeds):
    """llama-bench -o json: one test per (depth, phase)."""
    out = []
    for (depth, phase), ts in depth_speeds.items():
        out.append({"n_prompt": 128 if phase == "prefill" else 0, "n_gen": 32 if phase == "decode" else 0,
                    "n_depth": depth, "avg_ts": ts, "n_threads": 2, "cpu_info": "Test CPU",
                    "model_type": "llama 135M Q4_1"})
    return out


def tq(rows):
    return {"rows": [{"codec": c, "depth": d, "prefill_tok_s": p, "decode_tok_s": n, "cache_bytes": cache,
                      "rss_bytes": rss} for c, d, p, n, cache, rss in rows]}


class SideBySide(unittest.TestCase):
    def setUp(self):
        self.f16 = llama({(0, "prefill"): 200.0, (0, "decode"): 50.0, (16384, "prefill"): 40.0,
                          (16384, "decode"): 10.0})
        self.q4 = llama({(0, "prefill"): 190.0, (0, "decode"): 48.0, (16384, "prefill"): 30.0,
                         (16384, "decode"): 20.0})
        self.tq = tq([("f16", 0, 150.0, 55.0, 1 * MB, 250 * MB), ("f16", 16384, 30.0, 8.0, 400 * MB, 700 * MB),
                      ("tq3", 0, 140.0, 60.0, 1 * MB, 240 * MB), ("tq3", 16384, 25.0, 45.0, 40 * MB, 260 * MB),
                      ("turbo3", 16384, 26.0, 41.0, 45 * MB, 270 * MB)])

    def test_rows_and_ratios(self):
        md = sbs.render("smollm2", 100 * MB, self.tq, self.f16, self.q4, ["llama-bench a", "llama-bench b", "tq c"],
                        "1.0 -> 2.0")
        self.assertIn("| 0 | decode | f16 | 55.0 | 50.0 | 1.10x | 48.0 | 1.15x |", md)
        self.assertIn("| 16384 | decode | tq3 | 45.0 | 10.0 | 4.50x | 20.0 | 2.25x |", md)
        self.assertIn("| 0 | prefill | tq3 | 140.0 | 200.0 | 0.70x | 190.0 | 0.74x |", md)
        # A codec missing at a depth leaves a dash, not a made-up number.
        self.assertIn("| 0 | decode | turbo3 | - | 50.0 | - | 48.0 | - |", md)
        self.assertIn("- `llama-bench a`", md)
        self.assertIn("llama-bench: Test CPU, model llama 135M Q4_1, 2 threads", md)
        self.assertIn("1.0 -> 2.0", md)

    def test_memory_budget(self):
        md = sbs.render("m", 100 * MB, self.tq, self.f16, self.q4, [], "")
        # f16 at 16K: 700 MB > 100 + 400 + 150; tq3 at 16K: 260 MB <= 100 + 40 + 150.
        self.assertRegex(md, r"\| f16 \| 16384 \| 381\.5 \| 667\.6 \| 619\.9 \| no \|")
        self.assertRegex(md, r"\| tq3 \| 16384 \| 38\.1 \| 248\.0 \| 276\.6 \| yes \|")

    def test_goals(self):
        tqs, _ = sbs.tq_rows(self.tq)
        g = dict(sbs.goals(tqs, sbs.llama_rows(self.f16), sbs.llama_rows(self.q4), [0, 16384]))
        self.assertEqual(len(g), 4)
        met = {text.split(":")[0]: ok for text, ok in g.items()}
        self.assertTrue(met["decode at depth 0, f16 cache"])  # 1.10x >= 1.0x
        self.assertFalse(met["prefill at depth 0, f16 cache"])  # 0.75x < 0.8x
        # The best 3-bit row (tq3, 45 tok/s) against 10 and 20 tok/s: 4.5x met, 2.25x missed.
        deep = [(t, ok) for t, ok in g.items() if "16384" in t]
        self.assertEqual(sorted(ok for _, ok in deep), [False, True])
        self.assertTrue(all("(tq3)" in t for t, _ in deep))

    def test_no_deep_goal_without_the_depth(self):
        tqs, _ = sbs.tq_rows(self.tq)
        g = sbs.goals(tqs, sbs.llama_rows(self.f16), sbs.llama_rows(self.q4), [0])
        self.assertEqual(len(g), 2)


if __name__ == "__main__":
    unittest.main()
