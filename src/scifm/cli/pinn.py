"""`scifm pinn`: hard-constrained PINNs on high-dimensional PDEs with exact solutions."""

from __future__ import annotations

import typer

from scifm.cli._parse import positive


def pinn(
    pde: str = typer.Option(
        "allen-cahn-2body",
        "--pde",
        help="Problem: {poisson,allen-cahn,sine-gordon}-{2body,3body}, biharmonic-3body; "
        "append -gpinn for the gradient-enhanced loss.",
    ),
    dim: int = typer.Option(100, "--dim", min=1, max=10_000_000, help="Dimension d of the PDE."),
    estimator: str = typer.Option(
        "stde", "--estimator", help="exact, stde, stde-dense, hte, sdgd or sdgd-fwd."
    ),
    num_samples: int = typer.Option(
        16, "--num-samples", min=1, help="Sampled dimensions/directions."
    ),
    steps: int = typer.Option(
        10_000, "--steps", min=1, help="Adam steps (lr decays linearly to 0)."
    ),
    out: str = typer.Option(
        None, "--out", help="Run directory (config, metrics, checkpoint, plot); resumes if present."
    ),
    width: int = typer.Option(128, "--width", min=1, help="MLP width."),
    depth: int = typer.Option(4, "--depth", min=1, help="MLP hidden layers."),
    batch_size: int = typer.Option(100, "--batch-size", min=1, help="Residual points per step."),
    lr: float = typer.Option(1e-3, "--lr", parser=positive, help="Initial learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for the solution's c_i, the model, points."),
    n_test: int = typer.Option(
        20_000, "--n-test", min=1, help="Test points for the relative L2 error."
    ),
    eval_every: int = typer.Option(
        1000, "--eval-every", min=0, help="Steps between evaluations (0: only after the last step)."
    ),
    checkpoint_every: int = typer.Option(
        500, "--checkpoint-every", min=1, help="Steps between checkpoints."
    ),
    float64: bool = typer.Option(False, "--float64", help="Train in float64 (default float32)."),
    list_names: bool = typer.Option(
        False, "--list", help="List the problems and estimators, and exit."
    ),
):
    """Train a hard-constrained PINN (u = p(|x|^2) * MLP(x), zero on the boundary) on a
    high-dimensional PDE with an exact solution; report the relative L2 error.

    Example: scifm pinn --pde allen-cahn-2body --dim 100000 --estimator stde --steps 10000 --out runs/ac
    """
    import jax

    if float64:
        jax.config.update("jax_enable_x64", True)
    from scifm import pinn as pinn_lib
    from scifm.cli._run import BarAndPlot

    if list_names:
        print("problems (--pde): " + ", ".join(pinn_lib.problem_names()))
        print("estimators (--estimator):")
        for name, make in pinn_lib.ESTIMATORS.items():
            doc = (type(make(2)).__doc__ or "").strip().splitlines()[0]
            print(f"  {name:11s} {doc}")
        return
    est = pinn_lib.make_estimator(estimator, num_samples)
    problem = pinn_lib.make_problem(pde, dim, key=jax.random.key(seed))
    config = {"pde": pde, "dim": dim, "estimator_name": estimator, "num_samples": num_samples}
    progress = BarAndPlot(f"{pde} d={dim} {estimator}", out, pinn_lib.plot_metrics, unit="it")
    _, result = pinn_lib.fit(
        problem,
        est,
        steps=steps,
        width=width,
        depth=depth,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        n_test=n_test,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        run_dir=out,
        config=config,
        progress=progress,
    )
    if out:
        pinn_lib.plot_metrics(out)
    print(
        f"{pde} d={dim} {estimator}: relative L2 {result['rel_l2']:.3e} after {steps} steps "
        f"({result['train_time_s']:.1f} s of training)"
    )
    if out:
        print(
            f"run directory: {out} (config.json, metrics.jsonl, checkpoint.eqx, result.json, loss.png)"
        )
