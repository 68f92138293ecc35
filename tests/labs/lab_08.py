"""Hidden cases of lab 08 (CI/CD), which `app.grading` runs in the learner's kernel.

A case runs after the lab's setup, parameters and exercise cells, so the learner's functions
and the setup's names (`parse`, which reads YAML as GitHub does, and `workflows`, the real ones)
exist. It plants workflows of its own, as YAML text, never the lab's check cases, calls one
function, and raises AssertionError in plain words when the answer is wrong; a stub's
NotImplementedError passes through untouched. Nothing touches a file or a server. The grader
sends each case's source, calls it and deletes its name, so nothing it defines lands in the
learner's namespace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    # In the learner's kernel: the setup cell's names (solutions/08_ci_cd.ipynb).
    parse: Callable[[str], dict] = ...
    workflows: dict[str, dict] = ...
    # In the learner's kernel: the learner's functions (solutions/08_ci_cd.ipynb).
    unpinned: Callable[[dict], list[str]] = ...
    permission_problems: Callable[[dict, dict[str, set[str]]], list[str]] = ...
    job_waves: Callable[[dict], list[list[str]]] = ...
    matches: Callable[[str, str], bool] = ...
    triggered: Callable[..., list[str]] = ...

cases = Cases()


@cases.helper
def _lab08_sha():
    """40 hexadecimal digits: a ref pinned to a full commit SHA."""
    return "0123456789abcdef0123456789abcdef01234567"


# unpinned(document) -> the `uses:` not pinned to a full SHA, in order, once each
@cases.exercise(1)
def _finds_reusable_workflows_on_jobs():
    """Reusable workflows are called with `uses:` on the job itself, not in a step."""
    sha = _lab08_sha()
    workflow = parse(f"""
    on: push
    jobs:
      build:
        uses: octo-org/ci/.github/workflows/build.yml@main
      local:
        uses: ./.github/workflows/local.yml
      release:
        uses: octo-org/ci/.github/workflows/release.yml@{sha}
      lint:
        runs-on: ubuntu-24.04
        steps:
          - run: make lint
          - uses: actions/setup-node@v4
    """)
    got = unpinned(workflow)
    assert isinstance(got, list), f"unpinned must return a list, not {got!r}"
    assert "octo-org/ci/.github/workflows/build.yml@main" in got, (
        "a job that calls a reusable workflow has `uses:` on the job itself, not in a "
        "step: you missed octo-org/ci/.github/workflows/build.yml@main, a branch"
    )
    expected = ["octo-org/ci/.github/workflows/build.yml@main", "actions/setup-node@v4"]
    assert got == expected, (
        f"expected {expected} (release.yml is pinned to a SHA, local.yml is local); "
        f"you returned {got}"
    )


@cases.exercise(1)
def _refuses_near_misses_of_a_full_sha():
    """Near misses: short, too long, not hex; Docker images excepted; each listed once."""
    sha = _lab08_sha()
    short = "11bd719"
    workflow = parse(f"""
    on: pull_request
    jobs:
      test:
        runs-on: ubuntu-24.04
        steps:
          - uses: actions/checkout@{short}
          - uses: octo/thirty-nine@{sha[:39]}
          - uses: octo/pinned@{sha}
          - uses: docker://alpine:3.20
          - uses: octo/forty-one@{sha}a
          - uses: octo/not-hex@{"g" * 40}
      again:
        runs-on: ubuntu-24.04
        steps:
          - uses: actions/checkout@{short}
          - uses: actions/cache@v4.2.3
    """)
    got = unpinned(workflow)
    expected = [
        f"actions/checkout@{short}",
        f"octo/thirty-nine@{sha[:39]}",
        f"octo/forty-one@{sha}a",
        f"octo/not-hex@{'g' * 40}",
        "actions/cache@v4.2.3",
    ]
    assert "docker://alpine:3.20" not in got, "docker:// images are not asked about"
    assert f"octo/pinned@{sha}" not in got, "octo/pinned is pinned to 40 hex digits"
    missed = [action.split("@")[0] for action in expected if action not in got]
    assert not missed, (
        f"you accepted {missed}: a short SHA, 39 or 41 characters, 40 that are not hex "
        "(g is no hex digit) or a tag is not a full commit SHA"
    )
    assert got == expected, f"list each once, in the file's order: expected {expected}, not {got}"


@cases.exercise(1)
def _reads_composite_and_docker_actions():
    """Actions: a composite one's steps, with an action in a subfolder; a Docker one."""
    sha = _lab08_sha()
    composite = parse(f"""
    name: set up
    description: a composite action
    runs:
      using: composite
      steps:
        - uses: github/codeql-action/init@{sha}
        - uses: actions/setup-python@v5
        - uses: ./.github/actions/other
        - run: make setup
          shell: bash
    """)
    got = unpinned(composite)
    assert got == ["actions/setup-python@v5"], (
        "in a composite action's runs: steps:, setup-python@v5 is a tag, and "
        f"github/codeql-action/init@<40 hex> is pinned; you returned {got}"
    )
    container = parse("""
    name: in a container
    description: a Docker action
    runs:
      using: docker
      image: Dockerfile
    """)
    try:
        got = unpinned(container)
    except NotImplementedError:
        raise
    except Exception as error:
        raise AssertionError(
            f"unpinned crashed on a Docker action ({type(error).__name__}: {error}): "
            "an action that is not composite has no steps, so nothing to report"
        ) from None
    assert list(got) == [], f"a Docker action has no steps: expected [], not {got}"


# permission_problems(workflow, may_write) -> one sentence per problem
@cases.exercise(2)
def _names_missing_top_level_permissions():
    """No top-level permissions: one problem; a job's unneeded write on top of it."""
    workflow = parse("""
    on: push
    jobs:
      build:
        runs-on: ubuntu-24.04
        steps: [{run: make build}]
      release:
        runs-on: ubuntu-24.04
        permissions: {contents: write}
        steps: [{run: make release}]
    """)
    got = permission_problems(workflow, {"release": {"contents"}})
    assert isinstance(got, list), f"return a list of sentences, not {got!r}"
    assert len(got) == 1 and "permissions" in got[0], (
        "with no top-level permissions the token gets the repository's default: one "
        "problem, with the word 'permissions'; release may write contents, so nothing "
        f"else. You returned {got}"
    )
    got = permission_problems(workflow, {})
    assert len(got) == 2 and any("release" in p and "contents" in p for p in got), (
        "without may_write, release's contents: write is a second problem, naming the "
        f"job and the scope; you returned {got}"
    )


@cases.exercise(2)
def _names_write_all_and_accepts_read_all():
    """write-all and read-all, at the top level and on a job; {} is fine."""
    workflow = parse("""
    on: push
    permissions: write-all
    jobs:
      package:
        runs-on: ubuntu-24.04
        permissions: read-all
        steps: [{run: make package}]
    """)
    got = permission_problems(workflow, {"package": {"packages"}})
    assert len(got) == 1 and "write-all" in got[0], (
        f"permissions: write-all at the top level is one problem, naming write-all; "
        f"read-all on a job is fine. You returned {got}"
    )
    workflow["permissions"] = {}
    workflow["jobs"]["package"]["permissions"] = "write-all"
    got = permission_problems(workflow, {"package": {"packages"}})
    assert len(got) == 1 and "package" in got[0] and "write-all" in got[0], (
        "permissions: {} at the top level grants nothing (fine); write-all on the job "
        "package is one problem, naming the job and write-all, even if package may "
        f"write packages. You returned {got}"
    )


@cases.exercise(2)
def _allows_writes_per_job():
    """Allowed scopes are per job; read and none are fine; order follows the file."""
    workflow = parse("""
    on: push
    permissions: {contents: read, actions: none}
    jobs:
      publish:
        runs-on: ubuntu-24.04
        permissions: {packages: write, contents: write, statuses: read}
        steps: [{run: make publish}]
      tagger:
        runs-on: ubuntu-24.04
        permissions: {contents: write, packages: write, checks: none}
        steps: [{run: make tag}]
    """)
    got = permission_problems(workflow, {"publish": {"packages"}, "tagger": {"contents"}})
    expected = [("publish", "contents"), ("tagger", "packages")]
    found = [(j, s) for j, s in expected if any(j in p and s in p for p in got)]
    assert len(got) == 2 and found == expected, (
        "may_write is per job: publish may write packages but not contents, tagger "
        "contents but not packages; read and none are fine. Expected two problems, "
        f"one naming each job and scope {expected}; you returned {got}"
    )


@cases.exercise(2)
def _judges_the_workbook_s_workflows():
    """The real workflows, judged with no job allowed to write: the image job is the one."""
    for name, workflow in workflows.items():
        got = permission_problems(workflow, {})
        if name == "docker.yml":
            assert len(got) == 1 and "image" in got[0] and "packages" in got[0], (
                "with may_write {}, docker.yml's image job writes packages without "
                f"leave: one problem naming image and packages, not {got}"
            )
        else:
            assert got == [], f"{name} writes nothing, but you found {got}"


# job_waves(workflow) -> [[jobs of wave 0], [wave 1], ...], each sorted
@cases.exercise(3)
def _waits_for_the_last_need():
    """A diamond and a longer path: a job waits for the last of its needs."""
    workflow = parse("""
    on: push
    jobs:
      report: {runs-on: ubuntu-24.04, needs: [build, package]}
      package: {runs-on: ubuntu-24.04, needs: [unit, integration]}
      unit: {runs-on: ubuntu-24.04, needs: build}
      integration: {runs-on: ubuntu-24.04, needs: [build]}
      build: {runs-on: ubuntu-24.04, needs: []}
      docs: {runs-on: ubuntu-24.04}
      publish: {runs-on: ubuntu-24.04, needs: [docs, report]}
    """)
    got = job_waves(workflow)
    expected = [
        ["build", "docs"],
        ["integration", "unit"],
        ["package"],
        ["report"],
        ["publish"],
    ]
    assert got == expected, (
        "report needs build (wave 0) and package (wave 2), so it is in wave 3; needs: "
        "[] and no needs are the same; each wave sorted. Expected "
        f"{expected}, not {got}"
    )
    single = parse("on: push\njobs:\n  only: {runs-on: ubuntu-24.04}\n")
    assert job_waves(single) == [["only"]], "one job: one wave, [['only']]"


@cases.exercise(3)
def _names_an_unknown_need():
    """A need that is no job of the workflow: ValueError naming it, not a KeyError."""
    workflow = parse("""
    on: push
    jobs:
      test: {runs-on: ubuntu-24.04}
      image: {runs-on: ubuntu-24.04, needs: [test, lint-all]}
    """)
    try:
        got = job_waves(workflow)
    except NotImplementedError:
        raise
    except ValueError as error:
        assert "lint-all" in str(error), f"name the unknown job lint-all: {error}"
    except Exception as error:
        raise AssertionError(
            "image needs lint-all, which is no job: expected a ValueError naming it, "
            f"not {type(error).__name__}: {error}"
        ) from None
    else:
        raise AssertionError(
            f"image needs lint-all, which is no job: expected a ValueError, got {got}"
        )


@cases.exercise(3)
def _names_every_job_of_a_cycle():
    """A cycle of three beside free jobs, and a job that needs itself."""
    workflow = parse("""
    on: push
    jobs:
      lint: {runs-on: ubuntu-24.04}
      alpha: {runs-on: ubuntu-24.04, needs: [lint, gamma]}
      beta: {runs-on: ubuntu-24.04, needs: alpha}
      gamma: {runs-on: ubuntu-24.04, needs: beta}
      after: {runs-on: ubuntu-24.04, needs: alpha}
    """)
    for jobs, cycle in [
        (workflow["jobs"], ["alpha", "beta", "gamma"]),
        ({"lint": {}, "solo": {"needs": "solo"}}, ["solo"]),
    ]:
        try:
            got = job_waves({"on": "push", "jobs": jobs})
        except NotImplementedError:
            raise
        except ValueError as error:
            missing = [job for job in cycle if job not in str(error)]
            assert not missing, f"name every job of the cycle {cycle}: {error}"
        except Exception as error:
            raise AssertionError(
                f"{cycle} need each other: expected a ValueError, not "
                f"{type(error).__name__}: {error}"
            ) from None
        else:
            raise AssertionError(
                f"{cycle} need each other (a cycle): expected a ValueError, got {got}"
            )


# matches(pattern, name) -> bool; triggered(workflows, event, ref, changed) -> sorted names
@cases.exercise(4)
def _matches_globs_as_github_does():
    """The glob rules, one pair at a time."""
    pairs = [
        ("main", "main", True),
        ("main", "mainline", False),
        ("feature/*", "feature/login", True),
        ("feature/*", "feature/a/b", False),
        ("feature/**", "feature/a/b", True),
        ("*", "a/b", False),
        ("**", "a/b/c", True),
        ("**/README.md", "README.md", True),
        ("**/README.md", "docs/api/README.md", True),
        ("*.py", "app/config.py", False),
        ("**.py", "app/config.py", True),
        ("docs/**", "docs/a/b.md", True),
        ("docs/**", "documents/a.md", False),
        ("v*.*.*", "v10.0.1", True),
        ("v*.*.*", "v1.2", False),
        ("v*.*.*", "v1x2x0", False),
        ("data.dvc", "dataxdvc", False),
        ("release-*", "release-", True),
    ]
    wrong = [(p, n, want) for p, n, want in pairs if bool(matches(p, n)) != want]
    assert not wrong, (
        "* stops at /, ** does not, **/ may match nothing, a dot is a dot; "
        "these (pattern, name, expected) came out wrong: "
        + "; ".join(f"{p!r} vs {n!r} should be {w}" for p, n, w in wrong[:4])
    )


@cases.exercise(4)
def _reads_every_form_of_on():
    """The forms of on:, and which kind of ref a filter rules out."""
    planted = {
        name: parse(text)
        for name, text in {
            "string.yml": "on: push\njobs: {}",
            "list.yml": "on: [pull_request, workflow_dispatch]\njobs: {}",
            "tags-only.yml": "on: {push: {tags: ['v*']}}\njobs: {}",
            "branches-only.yml": "on: {push: {branches: [main, 'releases/**']}}\njobs: {}",
            "paths-only.yml": "on: {push: {paths: ['src/**']}}\njobs: {}",
            "both.yml": "on: {push: {branches: [main], paths: ['docs/**']}}\njobs: {}",
        }.items()
    }
    examples = [
        (
            "push",
            "refs/heads/main",
            ["src/app.py"],
            ["branches-only.yml", "paths-only.yml", "string.yml"],
        ),
        (
            "push",
            "refs/heads/main",
            ["docs/index.md"],
            ["both.yml", "branches-only.yml", "string.yml"],
        ),
        (
            "push",
            "refs/tags/v2.0.0",
            ["README.md"],
            ["paths-only.yml", "string.yml", "tags-only.yml"],
        ),
        ("push", "refs/heads/releases/2.0/fix", ["README.md"], ["branches-only.yml", "string.yml"]),
        ("pull_request", "refs/heads/main", ["src/app.py"], ["list.yml"]),
        ("workflow_dispatch", "refs/heads/main", [], ["list.yml"]),
        ("issues", "", [], []),
    ]
    why = {
        "refs/tags/v2.0.0": "branches: alone rules tags out; tags: alone branches; "
        "paths are not evaluated for a tag",
    }
    for event, ref, changed, expected in examples:
        got = triggered(planted, event, ref, changed)
        assert list(got) == expected, (
            f"{event} on {ref or '(no ref)'} changing {changed}: expected {expected}, "
            f"got {got}. {why.get(ref, '')}"
        )


@cases.exercise(4)
def _filters_pull_requests_by_base_and_paths():
    """pull_request filters: the base branch and the changed paths."""
    planted = {
        "pr-python.yml": parse("""
        on:
          pull_request:
            branches: [main, 'release/*']
            paths: ['**/*.py']
        jobs: {}
        """),
        "pr-any.yml": parse("on:\n  pull_request:\njobs: {}\n"),
        "push-only.yml": parse("on:\n  push:\njobs: {}\n"),
    }
    examples = [
        ("refs/heads/main", ["setup.py"], ["pr-any.yml", "pr-python.yml"]),
        ("refs/heads/release/1.0", ["notes.md", "a/b.py"], ["pr-any.yml", "pr-python.yml"]),
        ("refs/heads/main", ["README.md"], ["pr-any.yml"]),
        ("refs/heads/release/1.0/x", ["app.py"], ["pr-any.yml"]),
        ("refs/heads/develop", ["app.py"], ["pr-any.yml"]),
    ]
    for ref, changed, expected in examples:
        got = triggered(planted, "pull_request", ref, changed)
        assert list(got) == expected, (
            f"a pull request into {ref} changing {changed}: expected {expected}, got "
            f"{got} (branches: is the branch it merges into; **/*.py matches setup.py)"
        )


@cases.exercise(4)
def _triggers_the_workbook_s_workflows():
    """The real workflows, on events the lab's check does not try."""
    examples = [
        ("push", "refs/heads/main", ["data.dvc"], ["ci.yml", "docker.yml", "retrain.yml"]),
        ("push", "refs/heads/main", ["configs/params.yaml"], ["ci.yml", "docker.yml"]),
        ("push", "refs/heads/release/main", ["params.yaml"], []),  # main is not */main
        ("push", "refs/tags/v2.0.0-rc.1", [], ["docker.yml"]),  # ci.yml: branches only
        ("push", "refs/tags/v2.0", [], []),
        ("workflow_dispatch", "refs/heads/main", [], ["nightly.yml", "retrain.yml"]),
    ]
    for event, ref, changed, expected in examples:
        got = triggered(workflows, event, ref, changed)
        assert list(got) == expected, (
            f"the workbook's workflows, {event} on {ref} changing {changed}: expected "
            f"{expected}, got {got}"
        )
