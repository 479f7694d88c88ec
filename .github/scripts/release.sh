#!/usr/bin/env bash
# The release workflow's own steps, on a vX.Y.Z tag:
#   stamp       write generator/clusterimg/release.json (repository, commit, tag) so the wheel names its release
#   build DIR   build the sdist and wheel into DIR with the hashed pins of requirements/release.txt, then verify DIR
#   verify DIR  DIR holds exactly this version's sdist and wheel, and the wheel carries that release.json
#   publish     create the GitHub release with notes, then move the major tag (v1) to the release commit
set -euo pipefail
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tag=${GITHUB_REF_NAME:?GITHUB_REF_NAME is not set}
repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
sha=${GITHUB_SHA:?GITHUB_SHA is not set}
[[ $tag =~ ^v([0-9]+)\.[0-9]+\.[0-9]+$ ]] || die "tag '$tag' is not a release tag vX.Y.Z"
major=v${BASH_REMATCH[1]}
version=${tag#v}
[[ $sha =~ ^[0-9a-f]{40}$ ]] || die "GITHUB_SHA '$sha' is not a commit SHA"
[[ $repo =~ ^[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9_.-]+$ ]] || die "GITHUB_REPOSITORY '$repo' is not OWNER/NAME"
metadata=$(REL_REPO=$repo REL_SHA=$sha REL_TAG=$tag python3 -c 'import json, os
print(json.dumps({"repository": os.environ["REL_REPO"], "sha": os.environ["REL_SHA"], "tag": os.environ["REL_TAG"]},
                 indent=2, sort_keys=True))')

stamp() {
  local declared
  declared=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$root/pyproject.toml")
  [[ $declared == "$version" ]] || die "tag $tag does not match version $declared in pyproject.toml"
  grep -qx "__version__ = \"$version\"" "$root/generator/clusterimg/__init__.py" ||
    die "tag $tag does not match __version__ in generator/clusterimg/__init__.py"
  printf '%s\n' "$metadata" >"$root/generator/clusterimg/release.json"
  log "generator/clusterimg/release.json: $repo@$sha ($tag)"
}

verify() {
  local dist=${1:?verify needs the dist directory} found
  found=$(cd "$dist" && ls)
  [[ $found == "clusterimage_action-$version-py3-none-any.whl"$'\n'"clusterimage_action-$version.tar.gz" ]] ||
    die "$dist should hold this version's wheel and sdist only; it holds: $(tr '\n' ' ' <<<"$found")"
  python3 - "$dist/clusterimage_action-$version-py3-none-any.whl" "$metadata" <<'PY' || die "the wheel does not carry this release's release.json"
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    assert json.loads(wheel.read("clusterimg/release.json")) == json.loads(sys.argv[2])
PY
  log "$dist: sdist and wheel of $version, naming $repo@$sha"
}

build() {
  local dist=${1:?build needs the dist directory} venv
  venv=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/release-build.XXXXXX")
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: \
    -r "$root/requirements/release.txt"
  "$venv/bin/python" -m build --no-isolation --outdir "$dist" "$root"
  rm -rf "$venv"
  verify "$dist"
}

# METHOD PATH BODY: prints the answer's body, then its HTTP status on a line of its own. The token goes to curl on
# stdin, never in argv.
api() {
  printf 'header = "Authorization: Bearer %s"\n' "$GITHUB_TOKEN" |
    curl --config - --silent --show-error --max-time 30 -w '\n%{http_code}' -X "$1" \
      -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28" \
      --data-binary "$3" "${GITHUB_API_URL:-https://api.github.com}$2"
}

create_release() {
  local body reply status
  body=$(REL_TAG=$tag REL_ACTION="$repo@$sha # $tag" REL_MAJOR="$repo@$major" REL_VERSION=$version python3 - <<'PY'
import json, os
e = os.environ
notes = (
    "Pin the action to this release:\n\n```yaml\n- uses: " + e["REL_ACTION"] + "\n```\n\n"
    "or follow `" + e["REL_MAJOR"] + "`. `pip install clusterimage-action==" + e["REL_VERSION"] + "` brings the "
    "generator, whose zero-config `clusterimg-gen workflows` writes the pinned line above.\n"
)
print(json.dumps({"tag_name": e["REL_TAG"], "name": e["REL_TAG"], "body": notes, "generate_release_notes": True}))
PY
  )
  reply=$(api POST "/repos/$repo/releases" "$body") || return 1
  status=${reply##*$'\n'}
  reply=${reply%$'\n'*}
  case $status in
  201) log "created the release $tag" ;;
  422)
    # A re-run after a failed tag move: the release is there already.
    [[ $reply == *already_exists* ]] || die "GitHub refused the release $tag (HTTP 422): $(tr -s '[:space:]' ' ' <<<"$reply")"
    log "the release $tag exists already"
    ;;
  4??) die "GitHub refused the release $tag (HTTP $status): $(tr -s '[:space:]' ' ' <<<"$reply")" ;;
  *) log "creating the release answered HTTP $status" && return 1 ;;
  esac
}

move_major() {
  local reply status
  reply=$(api PATCH "/repos/$repo/git/refs/tags/$major" "{\"sha\": \"$sha\", \"force\": true}") || return 1
  status=${reply##*$'\n'}
  if [[ $status == 422 && $reply == *"Reference does not exist"* ]]; then
    reply=$(api POST "/repos/$repo/git/refs" "{\"ref\": \"refs/tags/$major\", \"sha\": \"$sha\"}") || return 1
    status=${reply##*$'\n'}
  fi
  reply=${reply%$'\n'*}
  case $status in
  200 | 201) log "moved $major to $sha" ;;
  4??)
    # GitHub refuses the job's token a ref whose workflow files differ from every branch head.
    die "GitHub refused to move $major (HTTP $status): $(tr -s '[:space:]' ' ' <<<"$reply"); move it by hand:" \
      "git push --force origin $sha:refs/tags/$major"
    ;;
  *) log "moving $major answered HTTP $status" && return 1 ;;
  esac
}

publish() {
  [[ -n ${GITHUB_TOKEN:-} ]] || die "GITHUB_TOKEN is not set"
  mask "$GITHUB_TOKEN" "the token"
  retry create_release || die "could not create the release $tag"
  retry move_major || die "could not move $major to $sha"
  summary "Released \`$tag\`: \`$repo@$sha\`; \`$major\` points at it."
}

case ${1:-} in
stamp) stamp ;;
build) build "${2:-}" ;;
verify) verify "${2:-}" ;;
publish) publish ;;
*) die "usage: release.sh stamp | build DIR | verify DIR | publish" ;;
esac
