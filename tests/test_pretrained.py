"""Pre-trained models shipped in the package: packing one from a sweep with its card, taking it
with ``--init pretrained:NAME``, and the model that ships."""

from __future__ import annotations

import hashlib
import json

import jax
import numpy as np
import pytest
from _studies import ONE_RATE as TINY

from scifm import data, experiments, models, train
from scifm.cli import main
from scifm.experiments import load_study
from scifm.models import _pretrained


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny sweep, and its pre-trained model packed as the shipped model "tiny"."""
    d = tmp_path_factory.mktemp("pretrained")
    with jax.enable_x64(False):
        experiments.sweep(load_study("demo", TINY), d / "sweep", progress=False)
        folder = experiments.pack_pretrained(
            d / "sweep", "tiny", d / "shipped", resolutions=(16, 32), n_test=8
        )
    return d, folder


@pytest.mark.xdist_group("pretrained-pack")
def test_the_card_is_measured_on_the_packed_weights(packed):
    d, folder = packed
    card = json.loads((folder / "card.json").read_text())
    weights = (folder / "checkpoint.eqx").read_bytes()
    assert card["sha256"] == hashlib.sha256(weights).hexdigest() and card["bytes"] == len(weights)
    assert weights == (d / "sweep/runs/pretrain/fno-64k/checkpoint.eqx").read_bytes()
    # at the training grid the card's errors are the sweep's own tests of this model
    point = json.loads((d / "sweep/runs/pretrain/fno-64k/point.json").read_text())
    for task in ("poisson", "helmholtz"):
        assert card["test_rel_l2"][task] == pytest.approx(
            point["test"][task]["rel_l2_mean"], abs=1e-5
        )
    assert set(card["test_rel_l2_by_resolution"]) == {"16", "32"}
    assert card["trained_on"] == "poisson + helmholtz" and card["samples"] == {
        "poisson": 16,
        "helmholtz": 16,
    }
    (downstream,) = card["downstream"]
    assert downstream["task"] == "poisson-ood" and set(downstream["scratch"]) == {"4", "8"}
    text = (folder / "card.md").read_text()
    assert "# `pretrained:tiny`" in text and "| 16x16 | 32x32 |" in text
    assert "## What it is not good at" in text
    # a study of several seeds has no one model to ship
    seeded = d / "seeded"
    seeded.mkdir()
    (seeded / "study.json").write_text(
        json.dumps(load_study("demo", [*TINY, "seeds=[0, 1]"]).to_dict())
    )
    with pytest.raises(ValueError, match="one preset and one seed"):
        experiments.pack_pretrained(seeded, "x", d / "shipped")


@pytest.mark.xdist_group("pretrained-pack")
def test_a_shipped_model_is_listed_and_fine_tuned_by_its_name(packed, monkeypatch, capsys):
    d, folder = packed
    monkeypatch.setattr(_pretrained, "_folder", lambda: folder.parent)
    assert [m.reference for m in models.pretrained_models()] == ["pretrained:tiny"]
    assert main(["models"]) == 0
    assert "pretrained:tiny" in capsys.readouterr().out
    sweep = d / "sweep" / "data"
    args = ["train", "--train", str(sweep / "poisson-ood-train.h5")]
    args += ["--val", str(sweep / "poisson-ood-val.h5"), "--epochs", "1"]
    with jax.enable_x64(False):
        assert main([*args, "--init", "pretrained:tiny", "--out", str(d / "tuned")]) == 0
        config = json.loads((d / "tuned" / "config.json").read_text())
        assert config["init"] == "pretrained:tiny"
        loaded, _ = train.load("pretrained:tiny")
        reference, _ = train.load(d / "sweep/runs/pretrain/fno-64k")
    assert all(
        np.array_equal(a, b, equal_nan=True)
        for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(reference), strict=True)
    )
    capsys.readouterr()
    assert main([*args, "--init", "pretrained:nope", "--out", str(d / "refused")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no pre-trained model 'nope'; shipped: pretrained:tiny" in err
    assert not (d / "refused").exists()


@pytest.mark.xdist_group("pretrained-pack")
def test_a_rerun_of_the_study_makes_the_same_weights(packed):
    d, folder = packed
    again = d / "again"
    study = load_study("demo", TINY)
    with jax.enable_x64(False):
        experiments.prepare(study, again)
        point = experiments.Point(experiments.PointKind.PRETRAIN, "fno-64k")
        experiments.run_point(again, point.to_dict())
    weights = (again / point.directory / "checkpoint.eqx").read_bytes()
    assert (
        hashlib.sha256(weights).hexdigest()
        == json.loads((folder / "card.json").read_text())["sha256"]
    )


SHIPPED = "fno-1m-mix64"


def test_the_shipped_model_is_its_cards_and_solves_its_tasks(tmp_path):
    shipped = models.get_pretrained(SHIPPED)
    card = shipped.card
    weights = (shipped.path / "checkpoint.eqx").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == card["sha256"]
    assert len(weights) < 8 * 2**20  # a few MB: it travels in the wheel
    study = load_study(card["study"])
    with jax.enable_x64(False):
        model, hyper = train.load(shipped.reference)
        assert hyper["preset"] == card["preset"] == "fno-1m"
        for task in card["tasks"]:
            # the first 16 of the card's test problems, generated afresh
            path = data.generate(
                study.tasks[task].build(),
                16,
                card["resolution"],
                study.data_seed(task, "test"),
                tmp_path / f"{task}.h5",
            )
            error = train.evaluate(model, data.FieldSet.load(path))["rel_l2_mean"]
            # the card's mean is over 128 problems: these 16 agree within their spread
            assert 0.5 * card["test_rel_l2"][task] < error < 2 * card["test_rel_l2"][task]
    assert card["test_rel_l2"]["poisson"] < 0.1  # predicting zero scores 1
