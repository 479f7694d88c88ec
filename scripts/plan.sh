#!/usr/bin/env bash
# Plan job: install clusterimg-gen from this action's own checkout and run `plan` for the event.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The head commit of the newest successful push run of workflow $1 on this branch; nothing when it has none.
last_success() {
  local runs
  runs=$(retry github_api GET "actions/workflows/$1/runs" --get --data-urlencode "branch=$GITHUB_REF_NAME" \
    --data event=push --data status=success --data per_page=1) || return 1
  python3 -c 'import json, re, sys
try:
    runs = json.load(sys.stdin)["workflow_runs"]
    sha = runs[0]["head_sha"] if runs else ""
except (ValueError, LookupError, TypeError):
    sys.exit("the answer is not a list of workflow runs")
if not isinstance(sha, str) or not re.fullmatch("([0-9a-f]{40})?", sha):
    sys.exit(f"GitHub returned {sha!r}, not a 40-hex commit SHA")
print(sha)' <<<"$runs"
}

# Sets $last to the head of workflow $1's last successful push run on this branch, for `plan --last-success`: a push
# run cancelled while pending never built its changes. Empty when it cannot be known; the plan then diffs from `before`.
last_success_of() {
  local sha
  last=
  if [[ ! ${GITHUB_REPOSITORY:-} =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ || -z ${GITHUB_REF_NAME:-} ]]; then
    warn "the last successful run needs GITHUB_REPOSITORY and GITHUB_REF_NAME; diffing from $CIMG_BEFORE"
  elif [[ ! $1 =~ ^[A-Za-z0-9_-][A-Za-z0-9_.-]*$ ]]; then
    warn "workflow '$1' is not a workflow file name; diffing from $CIMG_BEFORE"
  elif ! sha=$(last_success "$1"); then
    warn "could not look up the last successful run of $1 on $GITHUB_REF_NAME; diffing from $CIMG_BEFORE"
  elif [[ -n $sha ]]; then
    log "the last successful run of $1 on $GITHUB_REF_NAME is $sha"
    last=$sha
  fi
}

# The event decides what to plan (`plan --event`); this script only gathers what needs the network or a secret.
args=(plan --repo "${CIMG_REPO:-.}")
if [[ -n ${CIMG_EVENT:-} ]]; then args+=(--event "$CIMG_EVENT"); fi
if [[ -n ${CIMG_BEFORE:-} ]]; then args+=(--before "$CIMG_BEFORE"); fi
if [[ -n ${CIMG_BASE:-} ]]; then args+=(--base "$CIMG_BASE"); fi
if [[ -n ${CIMG_APP:-} ]]; then args+=(--app "$CIMG_APP"); fi
if [[ -n ${CIMG_APP:-} && -n ${CIMG_VERSION:-} ]]; then args+=(--version "$CIMG_VERSION"); fi
if [[ -n ${CIMG_SCHEDULE:-} ]]; then args+=(--schedule "$CIMG_SCHEDULE"); fi
if [[ ${CIMG_FORCE:-false} == true ]]; then args+=(--force); fi
if [[ ${CIMG_EVENT:-} == push && -n ${CIMG_BEFORE:-} && ${CIMG_BEFORE//0/} != "" && -n ${CIMG_WORKFLOW:-} &&
  -n ${CIMG_TOKEN:-} ]]; then
  mask "$CIMG_TOKEN" "the token"
  last_success_of "$CIMG_WORKFLOW"
  if [[ -n $last ]]; then args+=(--last-success "$last"); fi
fi

# The plan's registry lookups run as this user, unlike the builds.
if [[ -n ${CIMG_USERNAME:-} ]]; then
  [[ -n ${CIMG_REGISTRY:-} ]] || die "registry is required with username"
  registry_login "$CIMG_REGISTRY" user
fi

clusterimg_gen_venv "$CIMG_ACTION_PATH/.."

# One run gives both the matrices and the summary: with --skip-unchanged, each run asks the registry.
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then args+=(--summary "$GITHUB_STEP_SUMMARY"); fi
"$CIMG_GEN" "${args[@]}" --format github \
  --build-shards "${CIMG_BUILD_SHARDS:-1}" --manifest-shards "${CIMG_MANIFEST_SHARDS:-1}" --stages "${CIMG_STAGES:-1}" \
  --groups "${CIMG_GROUPS:-1}" --group "${CIMG_GROUP:-1}" \
  >> "${GITHUB_OUTPUT:-/dev/stdout}"
