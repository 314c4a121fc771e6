"""Physics-informed fine-tuning with and without the preconditioner, from a study's model.

From the pre-trained model of a finished ``darcy`` sweep (``scifm sweep darcy --out SWEEP``):
fine-tune through the adapter on the Darcy residual over all training inputs with no label,
once with the preconditioned residual (the default) and once with the plain ``||L u - f|| /
||f||``, at each learning rate; print the test error (128 samples) and the residual of the
checkpoint chosen by the validation residual. Accuracy, not speed: it runs in about a minute.

    .venv/bin/python benchmarks/physics_ablation.py SWEEP [--steps 192] [--lr 1e-3,3e-3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from scifm import data, train
from scifm.bench import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a finished darcy sweep directory")
    parser.add_argument("--preset", default="fno-64k")
    parser.add_argument("--steps", type=int, default=192)
    parser.add_argument("--lr", default="1e-3,3e-3")
    args = parser.parse_args()
    inputs = data.FieldSet.load(args.sweep / "data" / "darcy-train.h5")
    val = data.FieldSet.load(args.sweep / "data" / "darcy-val.h5")
    test = data.FieldSet.load(args.sweep / "data" / "darcy-test.h5")
    pretrained = args.sweep / "runs" / "pretrain" / args.preset
    free = train.unlabelled(inputs, 0)
    cpu = machine()["processor"]
    print(f"# {cpu}; {len(free)} unlabelled inputs, {args.steps} steps, batch 16")
    print("| residual | lr | test error | test residual | validation residual |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        for preconditioned in (True, False):
            loss = train.physics_loss("darcy", preconditioned=preconditioned)
            for lr in (float(x) for x in args.lr.split(",")):
                model, _ = train.start_model(free, init=pretrained, seed=0, adapter=True)
                out = Path(scratch) / f"{preconditioned}-{lr}"
                epochs = max(1, args.steps // (len(free) // 16))
                result = train.fit(
                    model, free, val, out, epochs=epochs, batch_size=16, lr=lr, loss=loss,
                    validate_every=max(1, epochs // 5),
                )  # fmt: skip
                best, _ = train.load(out)
                error = train.evaluate(best, test)["rel_l2_mean"]
                residual = train.physics_residuals(loss, best, test).mean()
                name = "preconditioned" if preconditioned else "plain"
                print(
                    f"| {name} | {lr:g} | {error:.3f} | {residual:.3f} "
                    f"| {result['best_val_residual']:.3f} |"
                )
                shutil.rmtree(out)


if __name__ == "__main__":
    main()
