#!/usr/bin/env bash
# Builds <image>:<version>-<arch> from a prepared context (prepare.sh) and refuses it unless it really is that arch.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

arch=${CIMG_ARCH:-}
arch_ok "$arch"
builder=$CIMG_BUILDER
case $builder in sealos | buildah) ;; *) die "builder must be sealos or buildah, got '$builder'" ;; esac
context=${CIMG_CONTEXT:-.}
[[ -d $context ]] || die "context $context is not a directory"
image=${CIMG_IMAGE:-}
version=${CIMG_VERSION:-}
[[ -n $image ]] || die "image is required"
[[ -n $version ]] || die "version is required"
ref=$image:$version-$arch
file=${CIMG_FILE:-Kubefile}
[[ $file == /* ]] || file=$context/$file
[[ -f $file ]] || die "build file $file not found"

# One fixed time for the image and its files: identical inputs give identical layers, so a registry stores them once.
timestamp=${CIMG_TIMESTAMP:-${SOURCE_DATE_EPOCH:-0}}
[[ $timestamp =~ ^[0-9]+$ ]] || die "timestamp must be whole seconds since the epoch, got '$timestamp'"
# sealos defaults --tls-verify to false unless it is set, so say it either way.
extra=("--tls-verify=$CIMG_TLS_VERIFY" --timestamp "$timestamp")
while IFS= read -r line; do
  line=${line#"${line%%[![:space:]]*}"}
  line=${line%"${line##*[![:space:]]}"}
  [[ -z $line || $line == \#* ]] && continue
  [[ $line == ?*=* ]] || die "build-args: expected KEY=VALUE, got '$line'"
  extra+=(--build-arg "$line")
done <<<"${CIMG_BUILD_ARGS:-}"

# The save step already put every embedded image into registry/, verified; sealos would save them all again, one at a
# time and without TLS checks.
if [[ ${CIMG_SAVED:-false} == true && $builder == sealos ]]; then extra+=(--save-image=false); fi

# What went into this image, as the plan computed it; the plan compares it with this label to skip rebuilds.
if [[ -n ${CIMG_INPUTS:-} ]]; then
  [[ $CIMG_INPUTS =~ ^[0-9a-f]{64}$ ]] || die "inputs must be a sha256 hex digest, got '$CIMG_INPUTS'"
  extra+=(--label "io.clusterimage.inputs=$CIMG_INPUTS")
fi

# A leg that pushes, or builds on a parent, reads its registry: a parent or a base there may be private. A leg that
# does neither (a pull request's) has no credentials to use.
if [[ -n ${CIMG_USERNAME:-} && (-n ${CIMG_PARENTS:-} || ${CIMG_PUSH:-false} == true) ]]; then
  registry_login "${CIMG_REGISTRY:-$(registry_of "$image")}"
fi

# The embedded images as saved, and the FROM bases the tree does not build as they resolve now, each with its digest
# for this arch: a scheduled plan rebuilds the image when one of them moves.
bases=$(auth_json | py_module base "$file" "$arch" "$(own_registry)" "${CIMG_PARENTS:-}") ||
  die "could not read the FROM lines of $file"
if [[ -n $bases ]]; then log "bases: $(tr '\n' ' ' <<<"$bases")"; fi
pinned=$(printf '%s\n%s\n' "${CIMG_EMBEDDED:-}" "$bases" | grep -v '^$' | tr '\n' ' ' || true)
if [[ -n $pinned ]]; then extra+=(--label "io.clusterimage.embedded=${pinned% }"); fi

# A child builds only FROM its parent's image of this run: a parent leg that failed, or a parent held back, leaves an
# older image there, and the child would carry inputs it was not built from. Its own list is then held back too.
check_parent() {
  local parent=$1 want=$2 built=$3 info label why
  command -v skopeo >/dev/null || die "skopeo not found on PATH; the leg reads its parent image $parent with it"
  if ! info=$(retry priv "${NET[@]}" skopeo inspect "${TLS[@]}" "docker://$parent"); then
    why="parent $parent is not in the registry (its build failed or was held back)"
  else
    label=$(inputs_label "$info")
    if [[ $label == "$want" ]]; then
      log "parent $parent carries this run's inputs $want"
      return 0
    fi
    if [[ $label == none && $built != built ]]; then
      log "parent $parent has no input label: published before this tool, taken as it is"
      return 0
    fi
    why="parent $parent carries inputs $label, not this run's $want (its build failed or was held back)"
  fi
  summary "| $ref | not built |" "| --- | --- |" "| parent | $why |"
  die "not built: $ref; $why"
}

# In-tree parents, one a line: FROM-as-written=parent, then the input digest this arch's image of it must carry, and
# `built` when this run builds that parent (else an image without an input label predates this tool and is taken).
if [[ -n ${CIMG_PARENTS:-} ]]; then
  # A leg that does not push (a pull request) has no parent of this run in the registry to check.
  while read -r pair want built; do
    if [[ -n $want && ${CIMG_PUSH:-false} == true ]]; then
      [[ $want =~ ^[0-9a-f]{64}$ ]] || die "parents: expected a sha256 hex input digest after ${pair#*=}, got '$want'"
      check_parent "${pair#*=}-$arch" "$want" "$built"
    fi
  done <<<"$CIMG_PARENTS"
  # The FROM line, whether it names the list or any arch's tag, is built FROM this arch's own image of the parent.
  rewritten=$(mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/Kubefile.XXXXXX")
  at_exit rm -f "$rewritten"
  py_module kubefile "$file" "$arch" >"$rewritten" || die "could not rewrite $file for its parents"
  log "parents: $(grep -i '^[[:space:]]*FROM' "$rewritten" | tr '\n' ' ')"
  file=$rewritten
fi

group_start "build $ref ($builder)"
priv "$builder" build -t "$ref" --platform "linux/$arch" "${extra[@]}" -f "$file" "$context" ||
  die "$builder build failed for $ref"
group_end

got=$(local_arch "$ref") ||
  die "built image $ref not found in local storage"
if [[ $got != "$arch" ]]; then
  priv buildah rmi "$ref" >/dev/null 2>&1 || true
  die "$ref was built for '$got', not '$arch'; removed it before any push"
fi

# The deep check: open the built image and refuse it when a file or an embedded image is for another arch.
group_start "check $ref for linux/$arch: ELF files and registry/"
expected=$(mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/embedded.XXXXXX")
printf '%s\n' "${CIMG_EMBEDDED:-}" >"$expected"
# A local image needs no login: an auth file named but not yet written would only make buildah fail.
container=$(priv env -u REGISTRY_AUTH_FILE buildah from --pull=never "$ref") || die "could not open $ref to check it"
status=0
if mnt=$(priv buildah mount "$container"); then
  problems=$(py_module deep "$mnt" "$arch" "$expected") || status=$?
else
  problems="could not mount $ref" status=1
fi
priv buildah rm "$container" >/dev/null 2>&1 || true
rm -f "$expected"
group_end
if ((status)); then
  log "$problems"
  priv buildah rmi "$ref" >/dev/null 2>&1 || true
  die "$ref is not all linux/$arch: ${problems%%$'\n'*}; removed it before any push"
fi
log "built $ref ($got)"
set_output image "$ref"
