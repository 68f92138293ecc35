"""A model card for every registered version, written by the gate from the run's own numbers.

What a reader of MLflow's registry needs on a version's page: where it came from (data version
and md5, commit, run), how it scored on each evaluation set beside the champion it was judged
against, the gate's decision and reason, and what it is for and where it is weak. It is the
version's description (the registry's "Description" field) and an artifact of its run
(`model_card.md`), so it travels with the run when the registry does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlflow.entities import Run

if TYPE_CHECKING:
    from app.registry import GateDecision

ARTIFACT = "model_card.md"
# What each evaluation set is, in a reader's words (app.registry.evaluation_sets names them).
SETS = {
    "val": "val: held-out scans, like the training data",
    "shifted_val": "shifted_val: val digits moved, thickened and blurred (drifted input)",
    "field_val": "field_val: digits labelled by users of the API (held out by hash)",
}
SHIFTED_WEAKNESS = (
    "not measured for this version, whose data holds no shifted_val set; models trained on "
    "scans alone lose accuracy on them (notebook 05), and data versions that bring shifted_val "
    "print the loss here."
)
INTENDED_USE = (
    "Classifying 8x8 grey-scale images of one handwritten digit (0-9), pixel values 0-16, "
    "scanned and centred as in scikit-learn's digits dataset; for teaching MLOps, not for "
    "decisions about people."
)


def model_card(name: str, run: Run, decision: GateDecision) -> str:
    """The card of one registered version, in Markdown."""
    tags, metrics = run.data.tags, run.data.metrics
    rows = [
        f"| {SETS.get(evaluation_set, evaluation_set)} | {score:.4f} | "
        + ("none" if decision.champion is None else f"{decision.champion[evaluation_set]:.4f}")
        + " |"
        for evaluation_set, score in decision.challenger.items()
    ]
    weaknesses = [
        "Drawn digits (the playground's mouse strokes) are not scans: their input drift score "
        "is high although the model stays confident. Watch `api_input_drift_score`.",
    ]
    shifted = decision.challenger.get("shifted_val")
    if shifted is None:
        weaknesses.insert(0, f"Shifted digits (moved, thickened, blurred): {SHIFTED_WEAKNESS}")
    else:
        lost = decision.challenger["val"] - shifted
        weaknesses.insert(
            0,
            f"Shifted digits: {shifted:.1%} right against {decision.challenger['val']:.1%} on "
            f"val ({lost:.1%} lost).",
        )
    champion = f"v{decision.champion_version}" if decision.champion_version else "none"
    lines = [
        f"# {name} v{decision.version}: {tags.get('family', run.data.params.get('family', '?'))}",
        "",
        f"**Gate: {'promoted' if decision.promoted else 'rejected'}.** {decision.reason}",
        "",
        "## Lineage",
        "",
        f"- data version `{tags.get('data_version', 'unknown')}`, "
        f"md5 `{tags.get('data_md5', 'unknown')}`",
        f"- commit `{tags.get('git_commit', 'unknown')}`",
        f"- run `{run.info.run_name}` ({run.info.run_id})",
        "",
        "## Accuracy on each evaluation set",
        "",
        f"Scored by the gate on the data it judged, beside the champion then ({champion}); the "
        f"rule: at least {decision.min_accuracy:.4f} on val, and within "
        f"{decision.tolerance:.4f} of the champion on every set.",
        "",
        f"| set | this version | champion {champion} |",
        "|-----|-----:|-----:|",
        *rows,
        "",
        f"Training: val loss {metrics.get('val_loss', float('nan')):.4f}, macro F1 "
        f"{metrics.get('val_macro_f1', float('nan')):.4f}.",
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Known weaknesses",
        "",
        *[f"- {weakness}" for weakness in weaknesses],
        "",
    ]
    return "\n".join(lines)
