#!/usr/bin/env bash
# Pushes one built arch image and reports its digest.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ref=${CIMG_REF:-}
[[ -n $ref ]] || die "ref is required"
registry=${CIMG_REGISTRY:-$(registry_of "$ref")}
digestfile=$(mktemp)
at_exit rm -f "$digestfile"

registry_login "$registry"
group_start "push $ref"
# Only our retry backs off: buildah's own is off (older buildah ignores --retry 0 but honours the delay).
retry priv "${NET[@]}" buildah push "${TLS[@]}" --retry 0 --retry-delay 1ms --digestfile "$digestfile" "$ref" "docker://$ref" ||
  die "push of $ref to $registry failed after $CIMG_RETRIES attempt(s)"
group_end
read -r digest <"$digestfile" || true
[[ $digest == sha256:* ]] || die "push of $ref reported no digest"
log "pushed $ref@$digest"
set_output image "$ref"
set_output digest "$digest"
summary "| image | digest |" "| --- | --- |" "| \`$ref\` | \`$digest\` |"
