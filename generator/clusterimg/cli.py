"""The click layer: collect arguments, call one function, present the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__, defaults
from .errors import CheckFailed, FatalError
from .model import Arch, split_tag


class ArchType(click.ParamType):
    """An arch name, parsed into Arch once; a bad one names the valid values."""

    name = "arch"

    def convert(self, value, param, ctx) -> Arch:
        try:
            return Arch(value)
        except ValueError:
            self.fail(f"{value!r}: expected one of " + ", ".join(a.value for a in Arch), param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return "[" + "|".join(a.value for a in Arch) + "]"


class ImageTagType(click.ParamType):
    """NAME:TAG, refused at the command line when model.split_tag cannot split it."""

    name = "NAME:TAG"

    def convert(self, value, param, ctx) -> str:
        try:
            split_tag(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return value


ARCH = ArchType()
IMAGE_TAG = ImageTagType()

repo_option = click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
    help="Repository root (holds clusterimage.yaml and the apps directory).",
)
repository_option = click.option("--repository", help="Image namespace; overrides clusterimage.yaml.")
action_option = click.option(
    "--action", metavar="REF", help="The action the workflow uses (./path, owner/repo@sha or vendored); overrides "
    "clusterimage.yaml [default: the release this clusterimg-gen was built from, else vendored].",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="clusterimg-gen")
# main() reads --debug itself, since it catches errors after click has finished.
@click.option("--debug", is_flag=True, expose_value=False, help="Show tracebacks.")
def cli() -> None:
    """Build sealos cluster images for amd64 and arm64 and publish them as one multi-arch image."""


@cli.command()
@repo_option
@repository_option
@action_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--strict", is_flag=True, help="Lint warnings fail the command (exit 1) before anything is written.")
def workflows(repo: Path, repository: str | None, action: str | None, check: bool, strict: bool) -> None:
    """Render .github/workflows/ (and the action copy) from the tree and clusterimage.yaml."""
    from . import config as config_mod
    from . import header, lockfile, render, resolve, write
    from . import plan as plan_mod

    config = config_mod.load(repo, {"repository": repository, "action": action})
    tree = plan_mod.discover(repo, config)  # the tree must be valid before anything is written
    _warn(config.warnings() + tree.warnings() + plan_mod.cmd_warnings(tree.found) + resolve.runtime_warnings(), strict)
    command = header.regenerate(repository, action)
    files = render.render(resolve.resolve(config, plan_mod.build_plan(config, tree.found), lockfile.load(repo)), command)
    if check:
        changed, stale = write.diff(repo, files)
        for rel in changed:
            click.echo(f"would write {rel}")
        for rel in stale:
            click.echo(f"would remove {rel}")
        if changed or stale:
            raise CheckFailed(f"{len(changed) + len(stale)} generated file(s) out of date; run: {command}")
        return
    changed, stale = write.write(repo, files)
    for rel in changed:
        click.echo(f"wrote {rel}")
    for rel in stale:
        click.echo(f"removed {rel}")
    if not changed and not stale:
        click.echo(f"{len(files)} file(s) up to date")


@cli.command()
@repo_option
@repository_option
@click.option("--all", "all_", is_flag=True, help="Every app-version (the default without other selectors).")
@click.option("--changed-from", metavar="REV", help="Only app-versions whose files changed since REV.")
@click.option("--changed-to", metavar="REV", default="HEAD", show_default=True)
@click.option("--app", help="Only this app.")
@click.option("--version", "version", help="Only this version (with --app).")
@click.option("--skip-unchanged", is_flag=True, help="Drop targets whose published image has the same input digest.")
@click.option("--adopt", is_flag=True,
              help="With --skip-unchanged: a published image without our input label counts as current.")
@click.option("--schedule", "cron", metavar="CRON", help="Only apps this cron rebuilds ('*': any schedule).")
@click.option("--event", metavar="NAME",
              help="Plan for this GitHub event (push, pull_request, workflow_dispatch, issue_comment, schedule): it "
                   "decides --changed-from, --skip-unchanged and --adopt from --before, --base, --last-success and "
                   "--force, as the plan job does.")
@click.option("--before", metavar="SHA", help="With --event push: the push's `before` commit.")
@click.option("--base", metavar="SHA", help="With --event pull_request: the base commit.")
@click.option("--last-success", metavar="SHA",
              help="With --event push: the head of the workflow's last successful push run on this branch.")
@click.option("--force", is_flag=True, help="With --event: rebuild even what did not change.")
@click.option("--format", "fmt", type=click.Choice(["json", "text", "github"]), default="text", show_default=True)
@click.option("--build-shards", type=click.IntRange(1), default=1, help="Build jobs per stage and arch (github format).")
@click.option("--manifest-shards", type=click.IntRange(1), default=1, help="Fan-in jobs per stage (github format).")
@click.option("--stages", type=click.IntRange(1), default=1, help="Stages in the workflow (github format).")
@click.option("--groups", type=click.IntRange(1), default=1, help="Plan jobs in the workflow (github format).")
@click.option("--group", type=click.IntRange(1), default=1,
              help="The plan job this is, 1 to --groups: only its app-versions are planned, looked up and emitted.")
@click.option("--summary", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also append the text plan as a Markdown code block to FILE (e.g. $GITHUB_STEP_SUMMARY).")
def plan(repo, repository, all_, changed_from, changed_to, app, version, skip_unchanged, adopt, cron, event, before,
         base, last_success, force, fmt, build_shards, manifest_shards, stages, groups, group, summary):
    """Print what to build: one target per app-version and arch, one manifest list per app-version."""
    from . import execute, report
    from .layout import Layout

    if version and not app:
        raise click.UsageError("--version needs --app")
    if all_ and changed_from:
        raise click.UsageError("--all and --changed-from are mutually exclusive")
    if group > groups:
        raise click.UsageError(f"--group {group}: expected 1 to --groups ({groups})")
    if event and (all_ or changed_from or skip_unchanged or adopt):
        raise click.UsageError("--event decides --changed-from, --skip-unchanged and --adopt; give one or the other")
    if not event and (before or base or last_success or force):
        raise click.UsageError("--before, --base, --last-success and --force need --event")
    outcome = execute.plan(execute.PlanArgs(
        repo=repo, repository=repository, changed_from=changed_from, changed_to=changed_to, app=app, version=version,
        skip_unchanged=skip_unchanged, adopt=adopt, cron=cron, times=fmt != "text", groups=groups, group=group,
        event=event, before=before, base=base, last_success=last_success, force=force))  # fmt: skip
    _warn(outcome.warnings, False)
    for note in outcome.notes:
        click.echo(note, err=True)
    layout = Layout(arches=outcome.config.arches, build_shards=build_shards, manifest_shards=manifest_shards,
                    stages=stages, groups=groups)
    click.echo(report.plan(outcome.plan, fmt, layout, outcome.accounting, group - 1), nl=False)
    if summary:
        with summary.open("a", encoding="utf-8") as fh:
            fh.write("```\n" + report.plan(outcome.plan, "text", layout, outcome.accounting) + "```\n")


@cli.command()
@click.argument("context", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--image", "image_tag", required=True, type=IMAGE_TAG, metavar="NAME:TAG",
              help="Per-arch ref is NAME:TAG-ARCH.")
@click.option("--arch", required=True, type=ARCH)
@click.option("--file", "file_", help="Build file (default: after init.sh, a non-empty Dockerfile, else Kubefile, else Sealfile).")
@click.option("--inputs", metavar="DIGEST", help="Input digest to label the image with (from `plan --format json`).")
@click.option("--setup", metavar="SCRIPT", help="Script to run before init.sh, from the current directory.")
@click.option("--builder", type=click.Choice(["sealos", "buildah"]), default=defaults.BUILDER, show_default=True)
@click.option("--push", is_flag=True, help="Push NAME:TAG-ARCH after the build.")
@click.option("--tls-verify/--no-tls-verify", default=defaults.TLS_VERIFY, show_default=True)
@click.option("--retries", type=click.IntRange(1, 10), default=defaults.RETRIES, show_default=True)
@click.option("--save-images/--no-save-images", default=True, show_default=True,
              help="Save the embedded images for ARCH into the prepared context's registry/ before the build.")
@click.option("--evidence/--no-evidence", default=defaults.EVIDENCE, show_default=True,
              help="After a push, write the pushed image's CycloneDX SBOM (its path is the output `sbom`).")
def build(context, image_tag, arch, file_, inputs, setup, builder, push, tls_verify, retries, save_images,
          evidence) -> None:
    """Build one arch of a cluster image locally, with the action's own scripts."""
    from . import runner

    out = runner.build(
        str(context), image_tag, arch.value, file=file_, inputs=inputs, setup=setup, builder=builder, push=push,
        tls_verify=tls_verify, retries=retries, save_images=save_images, evidence=evidence,
    )
    click.echo(json.dumps(out, sort_keys=True))


@cli.command()
@click.argument("image_tag", type=IMAGE_TAG, metavar="NAME:TAG")
@click.option("--arch", "arches", multiple=True, required=True, type=ARCH)
@click.option("--inputs", multiple=True, metavar="ARCH=DIGEST",
              help="Publish only if that arch's image carries this input digest (repeatable; from `plan`).")
@click.option("--tls-verify/--no-tls-verify", default=defaults.TLS_VERIFY, show_default=True)
@click.option("--retries", type=click.IntRange(1, 10), default=defaults.RETRIES, show_default=True)
def manifest(image_tag, arches, inputs, tls_verify, retries) -> None:
    """Create, push and verify the manifest list NAME:TAG from NAME:TAG-ARCH images."""
    from . import runner

    out = runner.manifest(image_tag, [a.value for a in arches], inputs=inputs, tls_verify=tls_verify, retries=retries)
    click.echo(json.dumps(out, sort_keys=True))


@cli.command()
@repo_option
@click.option(
    "--update", multiple=True, metavar="NAME",
    help="Refresh only this entry (repeatable): an action such as actions/checkout, sealos or buildah.",
)
@click.option("--api-url", metavar="URL", help="GitHub API base [default: $GITHUB_API_URL or https://api.github.com].")
@action_option
def lock(repo: Path, update: tuple[str, ...], api_url: str | None, action: str | None) -> None:
    """Pin actions to commit SHAs and sealos/buildah to a version and sha256 sums, in clusterimage.lock."""
    from . import lock as lock_mod

    for line in lock_mod.run(repo, update, api_url, action):
        click.echo(line)


@cli.command()
@click.argument("app")
@click.argument("version")
@repo_option
@click.option("--github-repo", metavar="OWNER/NAME", help="Where to dispatch [default: from git remote origin].")
@click.option("--workflow", default="clusterimage.yml", show_default=True, help="Workflow file name (or numeric id).")
@click.option("--ref", default="main", show_default=True, help="Branch or tag the workflow runs on.")
@click.option("--force", is_flag=True, help="Also pass the input force=true.")
@click.option("--api-url", metavar="URL", help="GitHub API base [default: $GITHUB_API_URL or https://api.github.com].")
def dispatch(app, version, repo, github_repo, workflow, ref, force, api_url) -> None:
    """Run the generated workflow for one app-version (workflow_dispatch with inputs app and version)."""
    import re

    from . import github
    from .model import COMPONENT, TAG

    if not COMPONENT.fullmatch(app):
        raise click.BadParameter(f"{app!r}: expected an app name (a lowercase directory name)", param_hint="APP")
    if not TAG.fullmatch(version):
        raise click.BadParameter(f"{version!r}: expected a version (an OCI tag such as v1.2.3)", param_hint="VERSION")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", workflow):
        raise click.BadParameter(f"{workflow!r}: expected a file name in .github/workflows/", param_hint="--workflow")
    slug = github_repo or _configured_github_repo(repo)
    slug = github.check_repo(slug) if slug else github.origin(repo)
    inputs = {"app": app, "version": version, **({"force": "true"} if force else {})}
    with github.connect(api_url, need_token=True) as gh:
        gh.dispatch(slug, workflow, ref, inputs)
    click.echo(f"dispatched {workflow} in {slug} on {ref}: " + " ".join(f"{k}={v}" for k, v in inputs.items()))


@cli.command()
@repo_option
@repository_option
@click.option("--strict", is_flag=True, help="Exit 1 when there is any warning.")
def lint(repo: Path, repository: str | None, strict: bool) -> None:
    """Check the tree: a child Kubefile's CMD must repeat each command of its in-tree parent's CMD."""
    from . import config as config_mod
    from . import plan as plan_mod

    tree = plan_mod.discover(repo, config_mod.load(repo, {"repository": repository}))
    _warn(tree.warnings() + plan_mod.cmd_warnings(tree.found), strict)
    click.echo(f"{len(tree.found)} app-version(s) checked, {len(tree.templates)} template(s), "
               f"{len(tree.skipped)} dir(s) skipped")


def _configured_github_repo(repo: Path) -> str | None:
    """`github_repo: OWNER/NAME` in clusterimage.yaml, for repos whose origin is not GitHub."""
    from . import config as config_mod

    return config_mod.load(repo, {"repository": "unused"}, check_tree=False).github_repo


def _warn(warnings: list[str], strict: bool) -> None:
    import os

    # On a runner, each warning is also an annotation on the run.
    prefix = "::warning::" if os.environ.get("GITHUB_ACTIONS") == "true" else "warning: "
    for line in warnings:
        click.echo(f"{prefix}{line}", err=True)
    if strict and warnings:
        raise CheckFailed(f"{len(warnings)} lint warning(s) and --strict")


@cli.command()
@click.argument("context", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--arch", "arches", multiple=True, type=ARCH,
              help="Arch to check (repeatable) [default: amd64 and arm64].")  # fmt: skip
@click.option("--check", is_flag=True, help="Ask the registry for each image and arch; exit 1 if any is missing.")
@click.option("--registry", metavar="HOST",
              help="The configured registry: REGISTRY_USERNAME/REGISTRY_PASSWORD log in to it, and --no-tls-verify "
                   "applies to it alone.")
@click.option("--tls-verify/--no-tls-verify", default=defaults.TLS_VERIFY, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["json", "text", "save"]), default="text", show_default=True,
              help="save: one `SOURCE NAME` line per image, NAME being its place in registry/ (read by save.sh).")
def images(context: Path, arches: tuple[str, ...], check: bool, registry: str | None, tls_verify: bool,
           fmt: str) -> None:  # fmt: skip
    """List the images `sealos build` saves for CONTEXT: images/shim/*, manifests/, charts/ and tar.txt archives."""
    import os

    from . import images as images_mod

    if arches and not check:
        raise click.UsageError("--arch needs --check")
    username, password = os.environ.get("REGISTRY_USERNAME"), os.environ.get("REGISTRY_PASSWORD")
    if check and username and not registry:
        raise click.UsageError("REGISTRY_USERNAME is set: name the registry it logs in to with --registry")
    listing = images_mod.collect(context)
    for note in images_mod.notes(listing):
        click.echo(f"warning: {note}", err=True)
    missed = None
    if check:
        arches = tuple(a.value for a in dict.fromkeys(arches or Arch))
        missed = images_mod.check(listing, arches, own=registry, username=username, password=password,
                                  tls_verify=tls_verify)
    click.echo(images_mod.report(listing, missed, fmt), nl=False)
    if missed:
        absent = len({m.image for m in missed})
        raise CheckFailed(f"{len(missed)} image × arch pair(s) missing, in {absent} of {len(listing.images)} image(s)")
    if check and listing.images:
        click.echo(f"all {len(listing.images)} image(s) exist for " + ", ".join(f"linux/{a}" for a in arches), err=True)
    elif check:
        click.echo("no embedded images to check", err=True)


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="clusterimg-gen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except FatalError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
