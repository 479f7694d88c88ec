#!/usr/bin/env bash
# Fans the per-arch images in to IMAGE:VERSION; the published tag is touched only when every arch is there and right.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

image=${CIMG_IMAGE:-}
version=${CIMG_VERSION:-}
[[ -n $image ]] || die "image is required"
[[ -n $version ]] || die "version is required"
read -r -a given <<<"${CIMG_ARCHES//,/ }"
((${#given[@]})) || die "arches is empty"
for arch in "${given[@]}"; do arch_ok "$arch"; done
arches=()
for arch in amd64 arm64; do [[ " ${given[*]} " == *" $arch "* ]] && arches+=("$arch"); done
command -v skopeo >/dev/null || die "skopeo not found on PATH; the fan-in reads the lists with it"
target=$image:$version
registry=${CIMG_REGISTRY:-$(registry_of "$image")}
list=localhost/cimg-fanin-$$-$RANDOM
tmp=$(mktemp -d)
pushed=false
cleanup() {
  if [[ $pushed == false ]]; then priv buildah manifest rm "$list" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
at_exit cleanup

# Reads the image index JSON in $1: "<os>/<arch>" of each entry into platforms, its digest into digests, in list
# order, as the plan reads lists (registry.py).
read_index() {
  local lines platform digest
  platforms=() digests=()
  lines=$(py_module registry index <<<"$1") || return 1
  while read -r platform digest; do
    [[ -n $platform ]] || continue
    platforms+=("$platform")
    digests+=("$digest")
  done <<<"$lines"
}

registry_login "$registry"

# arch=digest words: the input digest this run's leg labelled each arch image with.
declare -A expected=()
for word in ${CIMG_INPUTS:-}; do
  [[ $word =~ ^(amd64|arm64)=([0-9a-f]{64})$ ]] || die "inputs-digests: expected arch=<sha256 hex> words, got '$word'"
  expected[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done

# Resolves each arch tag to a digest once. With expected digests, the image must carry this run's: a leg that failed,
# or a newer run that pushed the same tag, holds back only this list, which is then never a mix of runs.
refs=() held=()
for arch in "${arches[@]}"; do
  if ! info=$(retry priv "${NET[@]}" skopeo inspect "${TLS[@]}" "docker://$target-$arch"); then
    held+=("$arch: $target-$arch is not in the registry")
    continue
  fi
  [[ $info =~ \"Digest\":[[:space:]]*\"(sha256:[0-9a-f]{64})\" ]] || die "could not read the digest of $target-$arch"
  refs+=("$image@${BASH_REMATCH[1]}")
  if [[ -n ${expected[$arch]:-} ]]; then
    label=$(inputs_label "$info")
    [[ $label == "${expected[$arch]}" ]] ||
      held+=("$arch: $target-$arch carries inputs $label, not this run's ${expected[$arch]} (its build failed or was superseded)")
  fi
done
if ((${#held[@]})); then
  summary "| $target | held back |" "| --- | --- |"
  for reason in "${held[@]}"; do summary "| ${reason%%:*} | ${reason#*: } |"; done
  die "not published: $target left untouched; ${held[*]}"
fi

group_start "assemble $target from ${arches[*]}"
priv buildah manifest create "$list" >/dev/null
for ref in "${refs[@]}"; do
  retry priv "${NET[@]}" buildah manifest add "${TLS[@]}" "$list" "docker://$ref" >/dev/null || die "could not add $ref to $target"
done
# Entries are added in the order of $arches, and a list keeps its order.
local_list=$(priv skopeo inspect --raw "containers-storage:$list") || die "could not read the local list $list"
read_index "$local_list" || die "the local list $list is not an image index"
got=${platforms[*]}
want=${arches[*]/#/linux/}
# A tag that holds another arch must not reach the published list.
[[ $got == "$want" ]] || die "the images tagged ${arches[*]} are really $got; $target left untouched"

# One attempt: push, then read the tag back. Some buildah releases exit 0 when the registry answers the list's PUT with
# an error, so only a digest that the registry confirmed, and reads back, counts.
push_list() {
  local sum
  rm -f "$tmp/digest" "$tmp/raw"
  priv "${NET[@]}" buildah manifest push "${TLS[@]}" --all --digestfile "$tmp/digest" "$list" "docker://$target" || return 1
  digest=
  if [[ -s $tmp/digest ]]; then read -r digest <"$tmp/digest" || true; fi
  [[ $digest == sha256:* ]] || {
    log "the registry did not confirm the push of $target"
    return 1
  }
  priv "${NET[@]}" skopeo inspect "${TLS[@]}" --raw "docker://$target" >"$tmp/raw" || return 1
  read -r sum _ < <(sha256sum "$tmp/raw")
  [[ sha256:$sum == "$digest" ]] || {
    log "$target reads back as sha256:$sum, not the list just pushed ($digest)"
    return 1
  }
}
retry push_list || die "push of $target failed after $CIMG_RETRIES attempt(s); the local list is removed"
priv buildah manifest rm "$list" >/dev/null 2>&1 || true
pushed=true
group_end

read_index "$(<"$tmp/raw")" || die "$target is not a manifest list"
got=${platforms[*]}
[[ $got == "$want" ]] || die "$target lists $got, expected $want"
log "published $target@$digest ($got)"
set_output image "$target"
set_output digest "$digest"
summary "| $target | digest |" "| --- | --- |"
for i in "${!platforms[@]}"; do summary "| ${platforms[i]} | \`${digests[i]}\` |"; done
summary "| list | \`$digest\` |"
