#!/usr/bin/env bash
# Prepares a build context as labring's CI does: a copy of the app-version dir, the repository's set-up script, then
# init.sh <arch> <app> <version>; then picks the build file. The checkout is never touched.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

arch=${CIMG_ARCH:-}
arch_ok "$arch"
context=${CIMG_CONTEXT:-}
[[ -d $context ]] || die "context '$context' is not a directory"
version=${CIMG_VERSION:-}
[[ -n $version ]] || die "version is required"
image=${CIMG_IMAGE:-}
app=${CIMG_APP:-${image##*/}}
[[ -n $app ]] || die "app or image is required"

# The tree's scripts never see registry credentials.
unset CIMG_USERNAME CIMG_PASSWORD REGISTRY_USERNAME REGISTRY_PASSWORD

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cimg-context.XXXXXX")
cp -a "$context/." "$work/"

if [[ -n ${CIMG_SETUP:-} ]]; then
  [[ -f $CIMG_SETUP ]] || die "setup script '$CIMG_SETUP' not found"
  group_start "setup: $CIMG_SETUP"
  bash "$CIMG_SETUP" || die "setup script $CIMG_SETUP failed"
  group_end
fi

if [[ ${CIMG_PREPARE:-true} == true && -f $work/init.sh ]]; then
  group_start "prepare: init.sh $arch $app $version"
  (cd "$work" && bash init.sh "$arch" "$app" "$version") || die "init.sh $arch $app $version failed in $context"
  group_end
fi

# The configured file, else labring's order: a non-empty Dockerfile, else Kubefile, else Sealfile.
file=${CIMG_FILE:-}
if [[ -n $file ]]; then
  [[ -f $work/$file ]] || die "file '$file' not found in $context"
else
  if [[ -s $work/Dockerfile ]]; then
    file=Dockerfile
  elif [[ -f $work/Kubefile ]]; then
    file=Kubefile
  elif [[ -f $work/Sealfile ]]; then
    file=Sealfile
  elif [[ -f $work/init.sh ]]; then
    die "no Dockerfile, Kubefile or Sealfile in $context after init.sh: init.sh did not write one"
  else
    die "no Dockerfile, Kubefile or Sealfile in $context"
  fi
fi
log "prepared $context as $work; building $file"
set_output context "$work"
set_output file "$file"
