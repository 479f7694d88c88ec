#!/usr/bin/env bash
# Puts buildah (always) and sealos (builder=sealos) on PATH, verifying every download before it can run.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

host_arch() {
  case $(uname -m) in
  x86_64) echo amd64 ;;
  aarch64 | arm64) echo arm64 ;;
  *) uname -m ;;
  esac
}

arch=${CIMG_ARCH:-$(host_arch)}
arch_ok "$arch"
builder=$CIMG_BUILDER
tools=$CIMG_TOOLS
cache=${RUNNER_TOOL_CACHE:-$HOME/.cache}/clusterimage

case $builder in sealos | buildah) ;; *) die "builder must be sealos or buildah, got '$builder'" ;; esac

need=(buildah)
if [[ $builder == sealos ]]; then need+=(sealos); fi

if [[ $tools == system ]]; then
  for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH (tools=system)"
  done
  exit 0
fi
[[ $tools == download ]] || die "tools must be download or system, got '$tools'"

# Only verified copies go on PATH, in a new directory of this job's own: the tool cache is writable by every job on
# this runner, so whatever else it holds stays off PATH and nothing in it is trusted without a pin.
tools_dir=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/clusterimage-tools.XXXXXX")
bindir=$tools_dir/bin
scratch=$tools_dir/scratch
mkdir "$bindir" "$scratch"
at_exit rm -rf "$scratch"

fill() {
  local s=${1//\{version\}/$2}
  printf '%s\n' "${s//\{arch\}/$arch}"
}

sha_of() {
  local sum
  read -r sum _ < <(printf '%s\0' "$1" | sha256_lines)
  printf '%s\n' "$sum"
}

fetch() {
  curl --fail --silent --show-error --location --connect-timeout 20 --max-time 300 \
    --output "$2" "$1"
}

# Downloads to a side file first so an interrupted transfer never looks like a cached tool.
download() {
  log "downloading $1"
  retry fetch "$1" "$2.part" || die "download failed: $1"
  mv "$2.part" "$2"
}

# The cached download $1 of $2, fetched first when absent, copied to $3; the copy is what gets hashed and used.
from_cache() {
  mkdir -p "$(dirname "$1")"
  if [[ ! -f $1 ]]; then download "$2" "$1"; fi
  cp "$1" "$3"
}

mismatch() {
  rm -f "$1"
  die "sha256 mismatch for $2: got $3, expected $4; refusing to use it"
}

install_buildah() {
  local ver=${CIMG_BUILDAH_VERSION:-} want=${CIMG_BUILDAH_SHA256:-} url bin=$bindir/buildah got
  ver=${ver#v}
  [[ -n $ver ]] || die "buildah-version is empty: set it to download a verified buildah, or use tools=system"
  [[ -n ${CIMG_BUILDAH_URL:-} ]] || die "buildah-url is required to download buildah"
  url=$(fill "$CIMG_BUILDAH_URL" "$ver")
  if [[ -n $want ]]; then
    from_cache "$cache/buildah/$ver/$arch/buildah" "$url" "$bin"
    got=$(sha_of "$bin")
    [[ ${got,,} == "${want,,}" ]] || mismatch "$cache/buildah/$ver/$arch/buildah" "buildah $ver ($arch)" "$got" "$want"
    log "buildah $ver ($arch) verified: $got"
  else
    # No pin, no trust to keep: a copy on this runner could be anyone's, so fetch it afresh every time.
    download "$url" "$bin"
    got=$(sha_of "$bin")
    warn "buildah $ver ($arch) is not pinned, so it is downloaded on every run; its sha256 is $got." \
      "Set buildah-sha256-$arch (clusterimg-gen lock does) to pin it and cache it."
    summary "> [!WARNING]" \
      "> buildah $ver ($arch) is not pinned, so it is downloaded on every run; its sha256 is \`$got\`." \
      "> Set \`buildah-sha256-$arch\` (\`clusterimg-gen lock\` does) to pin it and cache it."
  fi
  chmod +x "$bin"
}

install_sealos() {
  local ver=${CIMG_SEALOS_VERSION:-} want=${CIMG_SEALOS_SHA256:-} url name tarball got
  ver=${ver#v}
  [[ -n $ver ]] || die "sealos-version is empty: set it to download a verified sealos, or use tools=system"
  [[ -n ${CIMG_SEALOS_URL:-} ]] || die "sealos-url is required to download sealos"
  url=$(fill "$CIMG_SEALOS_URL" "$ver")
  name=${url##*/}
  name=${name%%\?*}
  tarball=$cache/sealos/$ver/$arch/$name
  if [[ -z $want ]]; then
    local sums_url
    [[ -n ${CIMG_SEALOS_CHECKSUMS_URL:-} ]] ||
      die "sealos-checksums-url is required when sealos-sha256-$arch is not set"
    sums_url=$(fill "$CIMG_SEALOS_CHECKSUMS_URL" "$ver")
    # The release's own sums, fetched for this run only: a copy kept on this runner is never trusted.
    download "$sums_url" "$scratch/checksums.txt"
    want=$(listed_sum "$name" <"$scratch/checksums.txt") || want=
    [[ -n $want ]] || die "$name is not listed in $sums_url"
  fi
  from_cache "$tarball" "$url" "$scratch/$name"
  got=$(sha_of "$scratch/$name")
  [[ ${got,,} == "${want,,}" ]] || mismatch "$tarball" "$name" "$got" "$want"
  tar -xzf "$scratch/$name" -C "$scratch" --no-same-owner sealos || die "$name has no top-level sealos binary"
  mv -f "$scratch/sealos" "$bindir/sealos"
  chmod +x "$bindir/sealos"
  log "sealos $ver ($arch) verified: $got"
}

group_start "install ${need[*]} ($arch)"
install_buildah
if [[ $builder == sealos ]]; then install_sealos; fi
if [[ -n ${GITHUB_PATH:-} ]]; then printf '%s\n' "$bindir" >>"$GITHUB_PATH"; fi
group_end
