#!/usr/bin/env bash
# Run every test module on its own, one at a time, so a module that only passes
# after another one (a fixture, an import side effect, state left on the machine)
# shows up. Run after `bash scripts/setup.sh test` has installed everything.
#
#   bash scripts/test-each.sh                 every module under tests/
#   bash scripts/test-each.sh tests/unit      only the modules under a folder
#
# Prints one line per module (result and seconds), then the modules that failed;
# exits 1 when any did. Each module's full output is kept in $TKHUB_EACH_LOGS
# (default: a temporary folder, named at the end).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
[ -x .venv/bin/python ] || { echo "error: no .venv: run bash scripts/setup.sh test first" >&2; exit 2; }
command -v go >/dev/null || export PATH="/usr/local/go/bin:$PATH"

roots=("$@")
[ ${#roots[@]} -eq 0 ] && roots=(tests)
logs=${TKHUB_EACH_LOGS:-$(mktemp -d -t tkhub-each.XXXXXX)}
mkdir -p "$logs"

mapfile -t modules < <(find "${roots[@]}" -name 'test_*.py' -type f | sort)
[ ${#modules[@]} -gt 0 ] || { echo "error: no test modules under ${roots[*]}" >&2; exit 2; }

failed=()
start_all=$SECONDS
for module in "${modules[@]}"; do
  log="$logs/$(echo "$module" | tr '/' '_').log"
  start=$SECONDS
  # -p no:cacheprovider: no .pytest_cache carried from one module's run to the next.
  .venv/bin/python -m pytest -q -p no:cacheprovider "$module" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  # 5: pytest collected nothing (a module whose tests are all deselected) — not a failure.
  if [ $rc -eq 0 ] || [ $rc -eq 5 ]; then result=ok; else result=FAILED; failed+=("$module"); fi
  printf '%-7s %5ds  %s  (%s)\n' "$result" "$took" "$module" "$(tail -n 1 "$log")"
done

echo
echo "${#modules[@]} modules, each alone, in $((SECONDS - start_all)) s; logs in $logs"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed alone:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "every module passes on its own"
