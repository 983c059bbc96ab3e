#!/usr/bin/env bash
#
# sanitized-stack.sh - the integration tests once more, against workers
# built with -fsanitize=address,undefined (bin/san/roomcast-fcgi), and a
# check that no sanitizer report reached the workers' logs.
#
# Usage: bash tests/sanitized-stack.sh     (make test STACK_SANITIZE=1;
#                                           .ci/run sets it)
# Needs bin/san/roomcast-fcgi (make SANITIZE=address,undefined). Runs only
# when no development stack is running: it must start the workers itself
# to start the instrumented ones, and it never stops a stack it did not
# start (a `make run` in another terminal is left alone, and this stage
# says it was skipped).
# Exit status: 0 when the tests passed and the logs hold no report.

set -eu

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
STACK=deploy/devstack.sh

if "$STACK" status 2>/dev/null | grep -q ' running'; then
    echo "sanitized-stack: skipped, a development stack is running" \
         "(stop it with make stop to run this stage)"
    exit 0
fi
if [ ! -x bin/san/roomcast-fcgi ]; then
    echo "sanitized-stack: bin/san/roomcast-fcgi is missing;" \
         "build it with make SANITIZE=address,undefined" >&2
    exit 2
fi

# Only what this run appends to the logs counts.
declare -A offset
for f in state/log/fcgi-*.log; do
    [ -f "$f" ] && offset[$f]=$(stat -c %s "$f")
done

status=0
ROOMCAST_FCGI_BIN="$PWD/bin/san/roomcast-fcgi" "$STACK" with \
    prove tests/integration/*.t || status=1

for f in state/log/fcgi-*.log; do
    [ -f "$f" ] || continue
    if tail -c +"$(( ${offset[$f]:-0} + 1 ))" "$f" |
       grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer'; then
        echo "sanitized-stack: a sanitizer report is in $f" >&2
        status=1
    fi
done
exit "$status"
