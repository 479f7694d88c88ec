#!/usr/bin/env bash
# Writes the CycloneDX SBOM of one pushed arch image, read from the root filesystem of the local image just pushed:
# the image by its pushed digest, each image nested in registry/, and every other file with its sha256.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ref=${CIMG_REF:-}
digest=${CIMG_DIGEST:-}
arch=${CIMG_ARCH:-}
arch_ok "$arch"
[[ -n $ref ]] || die "ref is required"
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "digest must be sha256:<64 hex digits>, got '$digest'"
dir=${CIMG_SBOM_DIR:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimg-sbom}
mkdir -p "$dir" || die "cannot create $dir for the SBOM"
name=${ref##*/}
out=$dir/${name//:/_}.cdx.json

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimg-sbom.XXXXXX")
container=
cleanup() {
  if [[ -n $container ]]; then priv buildah rm "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
at_exit cleanup
printf '%s\n' "${CIMG_EMBEDDED:-}" >"$work/saved"

group_start "SBOM of $ref@$digest"
priv buildah inspect --type image "$ref" >"$work/config.json" ||
  die "$ref not found in local storage; the SBOM is read from the image this job pushed"
# A local image needs no login: an auth file named but not yet written would only make buildah fail.
container=$(priv env -u REGISTRY_AUTH_FILE buildah from --pull=never "$ref") || die "could not open $ref"
mnt=$(priv buildah mount "$container") || die "could not mount $ref"
status=0
# As root: every file of the image is read, whoever owns it.
py_module priv sbom "$mnt" "$arch" "$ref" "$digest" "$work/config.json" "$work/saved" >"$work/sbom.json" \
  2>"$work/problems" || status=$?
group_end
if ((status)); then
  problems=$(<"$work/problems")
  log "$problems"
  first=${problems%%$'\n'*}
  [[ $first != Traceback* ]] || first=${problems##*$'\n'}
  die "no SBOM for $ref: $first"
fi
mv "$work/sbom.json" "$out"
size=$(wc -c <"$out")
log "wrote $out ($size bytes)"
# actions/attest takes at most 16 MiB; the SBOM is still written, for whatever reads it next.
if ((size >= 16 << 20)); then warn "the SBOM of $ref is $size bytes, over the 16 MiB that an attestation holds"; fi
set_output sbom "$out"
summary "SBOM (CycloneDX 1.6) of \`$ref@$digest\`: $size bytes"
