#!/usr/bin/env bash
# Saves every image the context embeds into <context>/registry, for the target arch only, in the layout `sealos run`
# serves: a distribution registry's filesystem storage. clusterimg.save fetches manifests and blobs from each
# registry in parallel, verifies every sha256 and writes that layout itself.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

context=${CIMG_CONTEXT:?context is required}
arch=${CIMG_ARCH:-}
arch_ok "$arch"
[[ -d $context ]] || die "context '$context' is not a directory"
context=$(cd "$context" && pwd)
if [[ -z ${CIMG_SAVE_PARALLEL:-} ]]; then load_defaults; fi
parallel=$CIMG_SAVE_PARALLEL
[[ $parallel =~ ^[1-9][0-9]*$ ]] || die "CIMG_SAVE_PARALLEL must be a positive integer, got '$parallel'"

# Most contexts embed nothing; they need no Python, no registry and no network.
if [[ ! -d $context/images/shim && ! -d $context/manifests && ! -d $context/charts &&
  ! -f $context/images/skopeo/tar.txt ]]; then
  log "no images/shim, manifests, charts or images/skopeo/tar.txt in $context: nothing to save"
  exit 0
fi

list=$(images_of "$context" --format save) || die "could not list the embedded images of $context"
if [[ -z $list ]]; then
  log "$context embeds no images: nothing to save"
  exit 0
fi
registry=$(own_registry)
if [[ -n ${CIMG_USERNAME:-} ]]; then
  [[ -n $registry ]] || die "registry or image is required with username"
  registry_login "$registry"
fi
retry true # checks the retry settings before anything starts

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimg-save.XXXXXX")
at_exit rm -rf "$work"

# skopeo's last line without its logger's time= and level= fields.
skopeo_error() {
  local last
  last=$(tail -n1 "$1")
  if [[ $last =~ msg=\"(.*)\"$ ]]; then last=${BASH_REMATCH[1]//\\\"/\"}; fi
  printf '%s\n' "$last"
}

# An archive is unpacked for the target platform by skopeo into a dir: that the saver reads like a registry.
n=0 failed=false
while read -r src name; do
  if [[ $src != docker://* ]]; then
    command -v skopeo >/dev/null || die "skopeo not found on PATH; saving $name from ${src%%:*} needs it"
    n=$((n + 1))
    if ! skopeo --override-os linux --override-arch "$arch" copy --quiet "${src%%:*}:$context/${src#*:}" \
      "dir:$work/archive$n" 2>"$work/archive$n.log"; then
      printf 'error: %s could not be saved: %s\n' "$name" "$(skopeo_error "$work/archive$n.log")" >&2
      failed=true
    fi
    src=dir:$work/archive$n
  fi
  printf '%s %s\n' "$src" "$name"
done <<<"$list" >"$work/list"

count=$(wc -l <<<"$list")
group_start "save $count embedded image(s) for linux/$arch into $context/registry ($parallel at a time)"
saved=
if [[ $failed == false ]]; then
  saved=$(auth_json | CIMG_SAVE_PARALLEL=$parallel py_module save "$context" "$arch" "$work/list" "$registry") ||
    failed=true
fi
group_end
if [[ $failed == true ]]; then
  die "embedded images of $context not saved for linux/$arch; not building (save-images: false skips this step)"
fi
(($(wc -l <<<"$saved") == count)) || die "some copies ended without a result; not building"
log "$saved"
log "saved $count embedded image(s) for linux/$arch into $context/registry"
set_output_lines images "$saved"
summary "Embedded images saved for linux/$arch:" '```' "$saved" '```'
