#!/usr/bin/env bash
# Prepares this template for one arch and version: init.sh <arch> <app> <version>
set -euo pipefail
arch=${1:?arch} app=${2:?app} version=${3:?version}
mkdir -p manifests
cat > manifests/ingress-nginx.yaml <<YAML
# ${app} ${version} for ${arch}
apiVersion: v1
kind: Namespace
metadata:
  name: ingress-nginx
YAML
