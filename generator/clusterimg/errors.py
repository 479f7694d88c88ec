"""Every error a user can cause, each with its exit code. Inner code raises; only cli.main() catches."""


class FatalError(Exception):
    exit_code = 3


class UserError(FatalError):
    """Bad input: a config value, a directory name, a flag. One line, exit 2."""

    exit_code = 2


class ConfigError(UserError):
    def __init__(self, file: str, key: str, value: object, expected: str):
        super().__init__(f"{file}: {key}: {value!r}: expected {expected}")
        self.file, self.key, self.value, self.expected = file, key, value, expected


class StepFailed(FatalError):
    """A build, push or manifest step (or a git call) failed. Exit 1."""

    exit_code = 1


class CheckFailed(FatalError):
    """`--check` found work to do, or a lint found problems. Exit 1."""

    exit_code = 1


class GitHubError(FatalError):
    """A GitHub API call failed: credentials, a missing repo or tag, the rate limit, the network. Exit 1."""

    exit_code = 1
