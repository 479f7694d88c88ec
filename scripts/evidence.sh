#!/usr/bin/env bash
# Evidence on one image digest: `sign SUBJECT [SBOM]` signs it, attests its SLSA provenance (and SBOM), attaches each
# as an OCI referrer and reads them back; `verify SUBJECT [--sbom]` only reads back; `index SUBJECT TAG` signs a
# published list and reads back it and each arch image, and writes the step summary. Each fails unless every piece is
# found and verified against this workflow's identity. SUBJECT is registry/repository@sha256:<hex>.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# >= 2)) || die "usage: evidence.sh sign SUBJECT [SBOM] | verify SUBJECT [--sbom] | index SUBJECT TAG"
registry_login "$(registry_of "$2")" user
# sigstore comes from requirements/evidence.txt, hash-pinned, in a venv of its own; CIMG_EVIDENCE_PYTHON gives one.
if [[ -z ${CIMG_EVIDENCE_PYTHON:-} ]]; then
  clusterimg_gen_venv "$(dirname "${BASH_SOURCE[0]}")/.." evidence
  CIMG_EVIDENCE_PYTHON=$(dirname "$CIMG_GEN")/python
fi
if [[ $1 != index ]]; then
  auth_json | CIMG_PYTHON=$CIMG_EVIDENCE_PYTHON py_module evidence "$@"
  exit
fi
status=0
table=$(auth_json | CIMG_PYTHON=$CIMG_EVIDENCE_PYTHON py_module evidence "$@") || status=$?
printf '%s\n' "$table"
summary "$table"
exit "$status"
