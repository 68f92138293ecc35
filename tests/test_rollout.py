"""Progressive delivery: the challenger in shadow, on a sticky canary share, rolled back by rule.

The API runs in-process against MLflow's SQLite registry: a baseline champion, and challengers
that are real models (a second baseline, and a badly regularised one that reads 4 val digits in
10). The rule's pure parts (tags, buckets, the judge) are tested on their own first.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from app import registry
from app.config import Settings
from app.data import load_split
from app.poll import wait_for
from app.serving.app import create_app
from app.serving.rollout import (
    CANARY,
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    MODE,
    SHADOW,
    SHARE,
    STOPPED,
    CanaryJudge,
    Rollout,
    bucket,
    canary_serves,
)
from app.training import train_and_log
from tests.helpers import champion_of, isolated

# -- the rule's parts ------------------------------------------------------------------------


def test_tags_say_how_the_challenger_serves_and_nonsense_means_shadow():
    assert Rollout.from_tags({}, 0.1) == Rollout(SHADOW, 0.1, None)
    assert Rollout.from_tags({MODE: CANARY, SHARE: "0.25"}, 0.1) == Rollout(CANARY, 0.25, None)
    assert Rollout.from_tags({MODE: CANARY, STOPPED: "why"}, 0.1).stopped == "why"
    for nonsense in ({MODE: "blue-green"}, {MODE: CANARY, SHARE: "half"}, {SHARE: "1.5"}):
        assert Rollout.from_tags(nonsense, 0.1) == Rollout(SHADOW, 0.0, None)


def test_a_client_keeps_its_bucket_and_a_share_draws_that_many_clients():
    clients = [f"client-{i}" for i in range(4000)]
    canary = Rollout(CANARY, 0.2, None)
    chosen = [canary_serves(canary, client, "7") for client in clients]
    assert 0.18 < np.mean(chosen) < 0.22
    assert chosen == [canary_serves(canary, client, "7") for client in clients]  # sticky
    other = [canary_serves(canary, client, "8") for client in clients]
    assert np.mean(np.array(chosen) != np.array(other)) > 0.1  # another challenger, others
    assert not canary_serves(canary, None, "7") and not canary_serves(canary, "", "7")
    assert not any(canary_serves(Rollout(SHADOW, 1.0, None), c, "7") for c in clients[:50])
    assert not canary_serves(Rollout(CANARY, 1.0, "stopped"), "client-1", "7")
    assert all(0 <= bucket(c, "7") < 1 for c in clients[:100])


def judge(**rule) -> CanaryJudge:
    return CanaryJudge(Settings(_env_file=None, **{f"rollout_{k}": v for k, v in rule.items()}))


def test_the_judge_waits_for_its_minimum_then_names_the_rule_that_broke():
    errors = judge(min_requests=20, max_error_gap=0.05)
    for _ in range(20):
        assert errors.observe(CHAMPION_ROLE, True, 0.001) is None
    verdicts = [errors.observe(CHALLENGER_ROLE, i % 5 != 0, 0.001) for i in range(20)]
    assert verdicts[:19] == [None] * 19  # 20 % errors, but not 20 requests yet
    assert verdicts[19].startswith("error share 20.0%")
    for seconds, broken in ((0.0029, False), (0.004, True)):
        slow = judge(min_requests=10, max_latency_ratio=3.0)
        for _ in range(10):
            slow.observe(CHAMPION_ROLE, True, 0.001)
        verdicts = [slow.observe(CHALLENGER_ROLE, True, seconds) for _ in range(10)]
        assert verdicts[:9] == [None] * 9
        said = "median model latency 4.00 ms against the champion's 1.00 ms"
        assert verdicts[9] == (said if broken else None)
    labels = judge(min_labels=10, max_accuracy_gap=0.1)
    for i in range(10):
        labels.observe_label(CHAMPION_ROLE, True)
        verdict = labels.observe_label(CHALLENGER_ROLE, i % 2 == 0)
    assert verdict == "accuracy 50.0% on labels, the champion's 100.0%"
    labels.reset()
    assert labels.observe_label(CHALLENGER_ROLE, False) is None


# -- in the API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_models(local_registry, params):
    """A champion (a baseline) and two registered challengers: a good one and a bad one."""
    settings = isolated(local_registry)
    champion = champion_of(settings, params)
    made = {}
    for name, overrides in (("good", {"C": 0.1}), ("bad", {"C": 1e-5})):
        logged = train_and_log(settings, params, "baseline", overrides=overrides, label=name)
        made[name] = registry.register_challenger(settings, logged.model_uri).version
    return settings, champion, made


@pytest.fixture
def api(two_models):
    settings, _, _ = two_models
    with TestClient(create_app(settings.model_copy(update={"api_poll_seconds": 3600}))) as client:
        yield client


def challenge(settings: Settings, version: str, **tags: str) -> None:
    """Make `version` the challenger, with exactly these rollout tags."""
    client = MlflowClient()
    for key in (MODE, SHARE, STOPPED):
        client.delete_model_version_tag(settings.model_name, version, key)
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    client.set_registered_model_alias(settings.model_name, registry.CHALLENGER, version)


def metric(api: TestClient, name: str) -> dict[str, float]:
    """Every series of a metric, by its labels' text."""
    found = {}
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(name):
            series, value = line.rsplit(" ", 1)
            found[series.removeprefix(name)] = float(value)
    return found


def send(api: TestClient, rows, client: str | None = None) -> dict:
    headers = {"X-Client-Id": client} if client else {}
    answer = api.post("/predict", json={"instances": rows.tolist()}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_in_shadow_the_challenger_scores_every_request_and_answers_none(api, two_models):
    settings, champion, made = two_models
    challenge(settings, made["bad"])
    api.app.state.store.refresh_now()
    X, y = load_split(settings.data_dir / "val")
    answers = [send(api, X[i : i + 2], client=f"c{i}") for i in range(0, 60, 2)]
    assert {a["model"]["version"] for a in answers} == {champion}
    assert {a["model"]["role"] for a in answers} == {"champion"}
    api.app.state.shadow.drain()
    counted = metric(api, "api_shadow_predictions_total")
    agree = counted[f'{{agreement="agree",challenger_version="{made["bad"]}"}}']
    disagree = counted[f'{{agreement="disagree",challenger_version="{made["bad"]}"}}']
    assert agree + disagree == 60 and disagree > 10  # the bad model disagrees often
    for answer, truth in zip(answers, y[:60:2], strict=True):
        label = {"prediction_id": answer["predictions"][0]["id"], "digit": int(truth)}
        assert api.post("/feedback", json=label).status_code == 201
    scored = metric(api, "api_shadow_labels_total")
    assert sum(scored.values()) == 30  # both answers scored on each label
    info = metric(api, "api_challenger_info")
    assert info == {f'{{mode="shadow",share="0",version="{made["bad"]}"}}': 1.0}


def test_a_canary_share_is_sticky_per_client_and_named_in_the_answer(api, two_models):
    settings, champion, made = two_models
    challenge(settings, made["good"], **{MODE: CANARY, SHARE: "0.5"})
    api.app.state.store.refresh_now()
    X, _ = load_split(settings.data_dir / "val")
    seen: dict[str, set] = {}
    for i in range(240):
        client = f"client-{i % 60}"
        model = send(api, X[i : i + 1], client)["model"]
        seen.setdefault(client, set()).add((model["version"], model["role"]))
    assert all(len(pairs) == 1 for pairs in seen.values())  # one model per client
    roles = [next(iter(pairs))[1] for pairs in seen.values()]
    assert 0.3 < roles.count("challenger") / len(roles) < 0.7
    assert {next(iter(p)) for p in seen.values()} == {
        (champion, "champion"),
        (made["good"], "challenger"),
    }
    assert send(api, X[:1])["model"]["role"] == "champion"  # no X-Client-Id: the champion
    requests = metric(api, "api_role_requests_total")
    assert any('role="challenger"' in series for series in requests)


def test_a_bad_canary_is_rolled_back_by_its_labels_and_no_request_fails(api, two_models):
    settings, champion, made = two_models
    challenge(settings, made["bad"], **{MODE: CANARY, SHARE: "0.5"})
    store = api.app.state.store
    store.refresh_now()
    X, y = load_split(settings.data_dir / "val")
    roles, sent = [], 0
    for i in range(len(y)):
        answer = send(api, X[i : i + 1], client=f"client-{i}")
        sent += 1
        roles.append(answer["model"]["role"])
        label = {"prediction_id": answer["predictions"][0]["id"], "digit": int(y[i])}
        assert api.post("/feedback", json=label).status_code == 201
        if store.challenger is None:
            break
    assert store.challenger is None, "the bad canary was never rolled back"
    minimum = settings.rollout_min_labels
    assert roles.count("challenger") >= minimum and sent < 6 * minimum, (
        sent,
        roles.count("challenger"),
    )
    assert metric(api, "api_canary_rollbacks_total") == {"": 1.0}

    def tagged() -> str | None:
        tags = MlflowClient().get_model_version(settings.model_name, made["bad"]).tags
        return tags.get(STOPPED)

    assert wait_for(tagged, 10).startswith("accuracy")
    after = [send(api, X[i : i + 1], client=f"client-{i}")["model"]["role"] for i in range(40)]
    assert set(after) == {"champion"}
    store.refresh_now()  # the next poll reads the tag: it stays stopped
    assert store.challenger is None
