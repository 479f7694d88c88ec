#!/usr/bin/env bash
set -euo pipefail
mkdir -p manifests
echo "# $2 $3 $1" > manifests/app.yaml
