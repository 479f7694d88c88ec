#!/usr/bin/env bash
# Pre-flight: fail before the build when an image the context embeds does not exist for the target arch.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

context=${CIMG_CONTEXT:?context is required}
arch=${CIMG_ARCH:-}
arch_ok "$arch"
[[ -d $context ]] || die "context '$context' is not a directory"

# Most contexts embed nothing; they need no Python and no registry round trip.
if [[ ! -d $context/images/shim && ! -d $context/manifests && ! -d $context/charts ]]; then
  log "no images/shim, manifests or charts in $context: no embedded images to check"
  exit 0
fi

args=("$context" --check --arch "$arch")
if [[ $CIMG_TLS_VERIFY == false ]]; then args+=(--no-tls-verify); fi
registry=$(own_registry)
if [[ -n $registry ]]; then args+=(--registry "$registry"); fi
if [[ -n ${CIMG_USERNAME:-} ]]; then
  [[ -n $registry ]] || die "registry or image is required with username"
  [[ -n ${CIMG_PASSWORD:-} ]] || die "a username was given for $registry but no password"
  mask "$CIMG_PASSWORD" "the password for $registry"
  step_auth_file # the check logs in to it
fi

group_start "check embedded images for linux/$arch"
status=0
REGISTRY_USERNAME=${CIMG_USERNAME:-} REGISTRY_PASSWORD=${CIMG_PASSWORD:-} images_of "${args[@]}" || status=$?
group_end
if ((status)); then
  die "embedded images of $context not verified for linux/$arch; not building (check-images: false skips this check)"
fi
