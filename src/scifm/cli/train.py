"""`scifm models`, `scifm train` and `scifm evaluate`: neural operators on datasets."""

from __future__ import annotations

import typer

from scifm._checks import UserError
from scifm.cli._parse import non_negative, positive


def models():
    """List the FNO size presets with their exact parameter counts (7 input channels, 1 output),
    and the pre-trained models shipped with scifm (`--init pretrained:NAME`), with their cards."""
    from rich.console import Console
    from rich.table import Table

    from scifm.models import PRESETS, pretrained_models

    console = Console()
    table = Table("preset", "width", "modes", "layers", "parameters")
    for p in PRESETS.values():
        table.add_row(p.name, str(p.width), str(p.modes), str(p.layers), f"{p.parameters():,}")
    console.print(table)
    shipped = pretrained_models()
    table = Table("preset", "trained on", "grid", "test error")
    table.add_column("pre-trained model (--init)", no_wrap=True)
    for m in shipped:
        card = m.card
        errors = ", ".join(f"{t} {e:.3g}" for t, e in card["test_rel_l2"].items())
        grid = f"{card['resolution']}x{card['resolution']}"
        table.add_row(card["preset"], card["trained_on"], grid, errors, m.reference)
    if shipped:
        console.print(table)
        for m in shipped:
            print(f"{m.reference}: model card {m.path / 'card.md'}")
    else:
        console.print("no pre-trained models in this installation")


def train(
    train_path: str = typer.Option(..., "--train", help="Training dataset (HDF5)."),
    val_path: str = typer.Option(..., "--val", help="Validation dataset (HDF5)."),
    out: str = typer.Option(
        ..., "--out", help="Run directory; an unfinished run there is resumed."
    ),
    model: str = typer.Option(
        None, "--model", help="FNO preset (see `scifm models`) [default: fno-1m, or --init's]."
    ),
    init: str = typer.Option(
        None,
        "--init",
        help="Start from this run's (or checkpoint's) weights and normalisation, or from a "
        "model shipped with scifm, pretrained:NAME (see `scifm models`).",
    ),
    adapter: bool = typer.Option(
        False,
        "--adapter",
        help="With --init whose channels differ from the data's (a coefficient field such as "
        "Darcy's a, other outputs): new lift columns (zero) and output rows (fresh) for the new "
        "channels, Fourier layers kept.",
    ),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Passes over the training set."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Samples per step."),
    lr: float = typer.Option(
        1e-3,
        "--lr",
        parser=positive,
        help="Peak learning rate (Adam, cosine decay over the run).",
    ),
    loss: str = typer.Option(
        "relative_l2", "--loss", help="relative_l2 or sse (summed squared error)."
    ),
    physics: bool = typer.Option(
        False,
        "--physics",
        help="Physics-informed: train on the residual of the training file's equation (its "
        "system: poisson, advdiff, helmholtz or darcy), so solutions are not needed; the best "
        "checkpoint is picked by the residual on the validation inputs.",
    ),
    labels: int = typer.Option(
        None,
        "--labels",
        min=0,
        help="With --physics: how many of the training samples (the first) keep their "
        "solution, which adds its relative L2 error to the loss [default: 0, none].",
    ),
    n: int = typer.Option(None, "--n", min=1, help="Use only the first N training samples."),
    seed: int = typer.Option(0, "--seed", help="Initialisation and shuffling seed."),
    finetune: str = typer.Option(
        "full",
        "--finetune",
        help="Fine-tuning strategy with --init: full, last (projection only), magnitude (largest half of each tensor fixed), l2sp (pull to the pre-trained weights), spider (importance-aware).",
    ),
    validate_every: int = typer.Option(
        1, "--validate-every", min=1, help="Validate and save every N epochs (and after the last)."
    ),
    checkpoint_every: float = typer.Option(
        600.0,
        "--checkpoint-every",
        parser=non_negative,
        help="Seconds between resumable saves inside an epoch.",
    ),
    coordinator: str = typer.Option(
        None,
        "--coordinator",
        help="Several processes (hosts): HOST:PORT of process 0, with --num-processes and "
        "--process-id; under SLURM's srun all three are read from its environment.",
    ),
    num_processes: int = typer.Option(
        None, "--num-processes", help="Processes in the run (one per host or per GPU)."
    ),
    process_id: int = typer.Option(None, "--process-id", help="This process's index, 0 first."),
    log: list[str] = typer.Option(  # noqa: B008 - typer reads it
        None,
        "--log",
        help="Also log the metrics to tensorboard[:DIR] (event files, default RUN/tensorboard) "
        "or mlflow[:STORE] (a local SQLite store, default ./mlruns); repeatable; needs "
        "pip install 'scifm[log]'.",
    ),
):
    """Train an FNO on a dataset, validating every epoch; keeps the best checkpoint.

    The batch is split over every device of every process; across processes only process 0
    writes the run directory, which must be on a file system all of them share.

    Example: scifm train --train poisson.h5 --val poisson_val.h5 --model fno-1m --out runs/p
    """
    from pathlib import Path

    import jax

    from scifm import data, models
    from scifm import train as train_lib
    from scifm.cli._run import BarAndPlot

    # before any JAX computation: several processes join one runtime (nothing with one)
    train_lib.initialize_distributed(coordinator, num_processes, process_id)
    strategy = train_lib.get_strategy(finetune)  # check arguments before reading data
    log = log or []
    train_lib.check_loggers(log)
    loss_fn = train_lib.get_loss(loss)
    if labels is not None and not physics:
        raise UserError("--labels is for --physics (how many training solutions it may use)")
    if physics and loss != "relative_l2":
        raise UserError(f"--physics trains on the equation's residual; drop --loss {loss}")
    if init is None and finetune != "full":
        raise UserError(f"--finetune {finetune} needs --init (the pre-trained run to start from)")
    # the run's configuration names files by what they are, not by how their path was typed
    train_path, val_path = str(Path(train_path).resolve()), str(Path(val_path).resolve())
    if init is not None:  # a shipped model keeps its name (refused here if there is none)
        shipped = models.resolve_init(init) != init
        init = init if shipped else str(Path(init).resolve())
    train_fields = data.FieldSet.load(train_path, limit=n)
    val_fields = data.FieldSet.load(val_path)
    if physics:
        with data.open(train_path) as ds:
            system = ds.system or "unknown"
        loss_fn = train_lib.physics_loss(system)
        if (labels or 0) > len(train_fields):
            raise UserError(
                f"--labels {labels}: the training set holds {len(train_fields)} samples"
            )
        train_fields = train_lib.unlabelled(train_fields, labels or 0)
    start, name = train_lib.start_model(
        train_fields, preset=model, init=init, seed=seed, adapter=adapter
    )
    metadata = {"model": {"preset": name}, "init": init}
    if physics:
        metadata["labels"] = labels or 0
    if adapter:
        pretrained, _ = train_lib.load(init)
        changes = models.adapter_changes(
            pretrained.input_names, pretrained.output_names, train_fields
        )
        metadata["adapter"] = changes
        if jax.process_index() == 0:
            print(
                "adapter: new inputs "
                + (", ".join(changes["new_inputs"]) or "none")
                + " (zero lift columns); new outputs "
                + (", ".join(changes["new_outputs"]) or "none")
                + " (fresh rows); dropped inputs "
                + (", ".join(changes["dropped_inputs"]) or "none")
                + "; Fourier layers kept"
            )
    sharding = train_lib.data_parallel()  # the batch split over every device
    if sharding is not None and jax.process_index() == 0:
        print(
            f"data parallel: batch split over {jax.device_count()} devices in "
            f"{jax.process_count()} process{'es' if jax.process_count() > 1 else ''}"
        )
    result = train_lib.fit(
        start,
        train_fields,
        val_fields,
        out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        loss=loss_fn,
        strategy=strategy,
        seed=seed,
        validate_every=validate_every,
        checkpoint_every=checkpoint_every,
        sharding=sharding,
        metadata=metadata,
        progress=BarAndPlot("train", out, train_lib.plot_curves),
        log=log,
    )
    if jax.process_index():
        return  # process 0 reports
    train_lib.plot_curves(out)
    residual = (
        f"residual {result['best_val_residual']:.4g}, " if "best_val_residual" in result else ""
    )
    print(
        f"best validation {residual}relative L2 {result['best_val_rel_l2']:.4g} at epoch "
        f"{result['best_epoch']} ({result['train_seconds']:.1f} s); run: {out}"
    )


def evaluate(
    run: str = typer.Argument(..., help="Run directory (or checkpoint.eqx)."),
    data_path: str = typer.Option(..., "--data", help="Dataset to evaluate on (HDF5)."),
    json_out: str = typer.Option(
        None,
        "--json",
        help="Where to write the JSON [default: RUN/eval-<data name>-<hash of its path>.json].",
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Samples per evaluation batch."),
):
    """Mean per-sample relative L2 error of a trained model on a dataset, and its spread."""
    import hashlib
    from pathlib import Path

    from scifm import data
    from scifm import train as train_lib
    from scifm._io import atomic_write_json

    model, _ = train_lib.load(run)
    fields = data.FieldSet.load(data_path)
    metrics = {
        "data": str(Path(data_path).resolve()),
        **train_lib.evaluate(model, fields, batch_size),
    }
    base = Path(run) if Path(run).is_dir() else Path(run).parent
    if json_out:
        path = Path(json_out)
    else:  # named after the file, and after its full path: another file of the same name
        # elsewhere gets its own result instead of overwriting this one
        digest = hashlib.sha1(metrics["data"].encode()).hexdigest()[:8]
        path = base / f"eval-{Path(data_path).stem}-{digest}.json"
    if not (base / "result.json").exists():
        print(f"note: {base} holds an unfinished run; this scores its best checkpoint so far")
    atomic_write_json(path, metrics)
    print(
        f"relative L2: mean {metrics['rel_l2_mean']:.4g}, std {metrics['rel_l2_std']:.4g}, "
        f"median {metrics['rel_l2_median']:.4g}, p90 {metrics['rel_l2_p90']:.4g} over {metrics['n']} samples"
    )
    print(f"wrote {path}")
