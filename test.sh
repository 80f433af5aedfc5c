#!/usr/bin/env bash
# Runs Weft's whole test suite on a fresh Debian machine: installs the system packages the tests
# need when they are missing, installs the pinned Node packages for the DuckDB interop tests, then
# runs `dotnet test` on the solution and prints one closing line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: command → Debian package. Later capabilities add theirs here.
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# PostgreSQL server programs for the online store tests, which start a throwaway server of their own
# (initdb and pg_ctl live in /usr/lib/postgresql/N/bin, not on PATH). Not needed when the tests are
# pointed at a server through WEFT_TEST_POSTGRES.
[ -n "${WEFT_TEST_POSTGRES:-}" ] || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# librdkafka (Kafka source tests; Weft loads it only for Kafka): Debian 12's 2.0.2, matching Confluent.Kafka 1.9.3.
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep 'librdkafka\.so\.1' >/dev/null || missing+=(librdkafka-dev)
# Headless Chromium for the serving dashboard test (driven by Playwright with ExecutablePath; Playwright's own
# browser download does not work here).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null 2>&1 || { echo "test.sh: the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }

# DuckDB (the reference for Parquet interop and differential tests), pinned by package-lock.json.
if [ ! -d tests/interop/node_modules/@duckdb/node-api ] || [ tests/interop/package-lock.json -nt tests/interop/node_modules/.package-lock.json ]; then
  npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test Weft.slnx --nologo --blame-hang-timeout 5m "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
echo "$passed passed, $failed failed"
exit "$status"
