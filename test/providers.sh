#!/usr/bin/env bash
# The hold and driver suites and the current OCI conformance suite against the
# other real S3 servers (MinIO is the default for `npm test`):
#   moto (moto_server from PyPI) and versitygw (Versity S3 gateway, go install).
set -euo pipefail
cd "$(dirname "$0")/.."
for server in moto versitygw; do
  echo "== S3 server: $server"
  HOLDFAST_S3_SERVER=$server npx mocha --no-config --node-option import=tsx --require test/support/global-fixtures.ts \
    --timeout 120000 --exit 'test/hold/*.test.ts' 'test/driver/*.test.ts'
  HOLDFAST_S3_SERVER=$server conformance/run current
done
# Cloud rules we cannot reach from here, enforced by a proxy in front of MinIO.
for rules in r2 b2 storj; do
  echo "== provider rules: $rules"
  HOLDFAST_PROVIDER_RULES=$rules conformance/run current
done
