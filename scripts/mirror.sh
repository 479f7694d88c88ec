#!/usr/bin/env bash
# Copies the published list IMAGE@DIGEST and every arch image in it to MIRROR:VERSION with the same digests, then
# reads the copy back. The primary is only read: a failing mirror fails this step, naming the mirror, and nothing else.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image=${CIMG_IMAGE:-}
version=${CIMG_VERSION:-}
digest=${CIMG_DIGEST:-}
mirror=${CIMG_MIRROR:-}
[[ -n $image ]] || die "image is required"
[[ -n $version ]] || die "version is required"
[[ -n $mirror ]] || die "mirror is required"
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "digest must be the published list's sha256:<hex>, got '$digest'"
command -v skopeo >/dev/null || die "skopeo not found on PATH; the mirror copies with it"
registry=${CIMG_REGISTRY:-$(registry_of "$image")}
mirror_registry=${CIMG_MIRROR_REGISTRY:-$(registry_of "$mirror")}
source_tls=("${TLS[@]}")
case ${CIMG_MIRROR_TLS_VERIFY:-true} in
true) mirror_tls=() ;;
false) mirror_tls=(--tls-verify=false) ;;
*) die "mirror-tls-verify must be true or false, got '${CIMG_MIRROR_TLS_VERIFY}'" ;;
esac
target=$mirror:$version
fail() { die "mirror $mirror_registry: $*; $image:$version is untouched"; }

# The sha256 of the manifest at docker://$2, read with the TLS flag $1 (or none).
manifest_digest() {
  local sum
  sum=$(priv "${NET[@]}" skopeo inspect --raw ${1:+"$1"} "docker://$2" | sha256sum) || return 1
  printf 'sha256:%s\n' "${sum%% *}"
}

registry_login "$registry"
TLS=("${mirror_tls[@]}")
CIMG_USERNAME=${CIMG_MIRROR_USERNAME:-} CIMG_PASSWORD=${CIMG_MIRROR_PASSWORD:-} registry_login "$mirror_registry"
TLS=("${source_tls[@]}")

raw=$(retry priv "${NET[@]}" skopeo inspect --raw "${source_tls[@]}" "docker://$image@$digest") ||
  die "could not read $image@$digest"
# The arch images the list names, each of which the mirror must then hold under the same digest.
children=()
rest=${raw//[[:space:]]/}
while [[ $rest =~ \"digest\":\"(sha256:[0-9a-f]{64})\" ]]; do
  children+=("${BASH_REMATCH[1]}")
  rest=${rest#*"${BASH_REMATCH[0]}"}
done
if [[ $raw != *'"manifests"'* ]] || ((${#children[@]} == 0)); then die "$image@$digest is not a manifest list"; fi

group_start "mirror $image:$version to $target"
source_flag=() dest_flag=()
if ((${#source_tls[@]})); then source_flag=(--src-tls-verify=false); fi
if ((${#mirror_tls[@]})); then dest_flag=(--dest-tls-verify=false); fi
retry priv "${NET[@]}" skopeo copy --all --preserve-digests --retry-times 0 "${source_flag[@]}" "${dest_flag[@]}" \
  "docker://$image@$digest" "docker://$target" || fail "copy to $target failed after $CIMG_RETRIES attempt(s)"
group_end

got=$(retry manifest_digest "${mirror_tls[0]:-}" "$target") || fail "could not read back $target"
[[ $got == "$digest" ]] || fail "$target is $got, not the published list $digest"
for child in "${children[@]}"; do
  got=$(retry manifest_digest "${mirror_tls[0]:-}" "$mirror@$child") || fail "$mirror@$child is missing"
  [[ $got == "$child" ]] || fail "$mirror@$child reads back as $got"
done
log "mirrored $image:$version to $target@$digest with ${#children[@]} arch image(s)"
set_output image "$target"
set_output digest "$digest"
summary "| mirror | digest |" "| --- | --- |" "| \`$target\` | \`$digest\` |"
