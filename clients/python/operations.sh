#!/usr/bin/env bash
# The operations the synchronous Python client is generated from: graphql/operations without its
# subscriptions (ariadne-codegen generates those for its async client only), in
# .ci-work/python-operations. Run from the repository root.
set -euo pipefail
out=.ci-work/python-operations
rm -rf "$out" && mkdir -p "$out"
for document in graphql/operations/*.graphql; do
  grep -qE '^[[:space:]]*subscription([[:space:](]|$)' "$document" || cp "$document" "$out/"
done
