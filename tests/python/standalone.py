"""Runs a test module's test_* functions without pytest (`python tests/python/test_x.py`), so
the tests also run where pytest is not installed."""
import sys


def run_tests(namespace, skip=None, banner=None):
    """Calls every callable test_* in `namespace` (a module's globals()) in name order and
    prints one line per test; exits 0 with the reason when `skip` is set. `banner` is a
    function (it may name modules that exist only when nothing is skipped)."""
    if skip is not None:
        print(f"skipped: {skip}")
        sys.exit(0)
    if banner:
        print(banner())
    tests = [(n, f) for n, f in sorted(namespace.items()) if n.startswith("test_") and callable(f)]
    for name, fn in tests:
        fn()
        print(f"ok  {name}")
    print(f"{len(tests)} tests passed")
