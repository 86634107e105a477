#!/usr/bin/env bash
# Session 27 device call 3 (the machine of call 2, still warm): CliCudaModule.* again with
# the build unpacked at /tmp/bc, the directory it was configured in here. In call 2 the
# three tests failed within milliseconds because test_cli runs tq from its build-time path
# and call 2 had unpacked the build to /tmp/new (devrun_setup.sh now links /tmp/bc to it).
mkdir -p /tmp/bc && tar xJf build-devrun/new.tar.xz -C /tmp/bc && LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64 timeout 150 /tmp/bc/tests/cli/test_cli --gtest_filter='CliCudaModule.*' 2>&1 | grep -E "^\[|tie|error|Error" | tail -15
