"""The PyTorch peer of `scifm bench fno`: the same FNO, trained the same way, in its own process.

The network is :class:`scifm.models.FNO`'s architecture written in PyTorch, as the TL-scaling
code's ``FNN2d`` is: a pointwise lift to ``width``; ``layers`` Fourier layers
``v -> act(K v + W v)`` with one complex ``width x width`` matrix per kept mode (the ``modes``
lowest rows, positive and negative, and columns of ``rfft2``, orthonormal), a pointwise skip,
GELU between layers; then ``width -> 2 width -> out`` with GELU. Same parameter count as scifm's
(checked in the tests), Adam (lr 1e-3), the mean per-sample relative L2 loss, float32.

With ``"library": "neuralop"`` in its config the worker trains neuraloperator's own ``FNO``
instead (``neuralop.models.FNO``, where the ``neuraloperator`` package is installed; it is not
a dependency of scifm's core), set to scifm's network as far as its options allow:
``n_modes = (2 modes, 2 modes - 1)`` (it keeps ``n // 2 + 1`` columns of the last axis: the
``modes`` lowest rows of each sign and ``modes`` columns, scifm's modes), a one-layer lift, no
positional embedding, no channel MLP in the blocks, linear skips, projection ``width -> 2 width
-> out``. The same number of parameters as scifm's (tested); its own initialisation and
implementation (complex einsum on the kept modes of ``rfft2``).

It runs as a worker process (``python -m scifm.bench._torch CONFIG``) that the benchmark drives
one step at a time over its standard input and output (``step`` in, the step's seconds out, one
JSON line each), so scifm's step and the peer's alternate in one run on the same cores, and
neither library's thread pool shares a process with the other's. Only this worker imports
PyTorch (the optional ``bench`` extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

INSTALL_HINT = "PyTorch is not installed; pip install 'scifm[bench]' to time its FNO beside scifm's"


def available(library: str = "torch") -> bool:
    """Whether ``library`` (``torch``, ``neuralop``) can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(library) is not None


def _neuralop_model(in_channels: int, out_channels: int, width: int, modes: int, layers: int):
    from neuralop.models import FNO

    return FNO(
        n_modes=(2 * modes, 2 * modes - 1),  # rows -modes..modes-1, columns 0..modes-1
        in_channels=in_channels,
        out_channels=out_channels,
        hidden_channels=width,
        n_layers=layers,
        lifting_channel_ratio=0,
        projection_channel_ratio=2,
        positional_embedding=None,
        use_channel_mlp=False,
        fno_skip="linear",
    )


def _model(in_channels: int, out_channels: int, width: int, modes: int, layers: int):
    import torch
    from torch import nn

    class Spectral(nn.Module):
        def __init__(self):
            super().__init__()
            scale = 1.0 / (width * width)
            shape = (2, width, width, modes, modes)  # (pos/neg rows, in, out, x, y)
            self.weight = nn.Parameter(scale * torch.rand(shape, dtype=torch.cfloat))

        def forward(self, v):
            b, _, h, w = v.shape
            vf = torch.fft.rfft2(v, norm="ortho")
            out = torch.zeros(b, width, h, w // 2 + 1, dtype=torch.cfloat)
            mix = "bixy,ioxy->boxy"
            out[:, :, :modes, :modes] = torch.einsum(mix, vf[:, :, :modes, :modes], self.weight[0])
            out[:, :, -modes:, :modes] = torch.einsum(
                mix, vf[:, :, -modes:, :modes], self.weight[1]
            )
            return torch.fft.irfft2(out, s=(h, w), norm="ortho")

    class FNO(nn.Module):
        def __init__(self):
            super().__init__()
            self.lift = nn.Conv2d(in_channels, width, 1)
            self.spectral = nn.ModuleList(Spectral() for _ in range(layers))
            self.skip = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
            self.hidden = nn.Conv2d(width, 2 * width, 1)
            self.out = nn.Conv2d(2 * width, out_channels, 1)

        def forward(self, x):
            v = self.lift(x)
            for i, (k, w) in enumerate(zip(self.spectral, self.skip, strict=True)):
                v = k(v) + w(v)
                if i < layers - 1:
                    v = nn.functional.gelu(v)
            return self.out(nn.functional.gelu(self.hidden(v)))

    return FNO()


def parameters(width: int, modes: int, in_channels: int = 7, out_channels: int = 1, layers=4):
    """Trainable real scalars of the peer (a complex weight counts as two)."""
    model = _model(in_channels, out_channels, width, modes, layers)
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


class _Peer:
    def __init__(self, config: dict):
        import numpy as np
        import torch

        torch.manual_seed(0)
        threads = config.get("threads") or os.cpu_count()
        torch.set_num_threads(threads)
        b, r = config["batch"], config["resolution"]
        neuralop = config.get("library") == "neuralop"
        self.model = (_neuralop_model if neuralop else _model)(
            config["in_channels"],
            config["out_channels"],
            config["width"],
            config["modes"],
            config.get("layers", 4),
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        self.x = torch.from_numpy(rng.normal(size=(b, config["in_channels"], r, r)).astype("f4"))
        self.y = torch.from_numpy(rng.normal(size=(b, config["out_channels"], r, r)).astype("f4"))
        if neuralop:
            import neuralop as library

            name = f"neuralop {library.__version__}, pytorch {torch.__version__}"
        else:
            name = f"pytorch {torch.__version__}"
        self.info = {
            "peer": name,
            "peer_threads": torch.get_num_threads(),
            "peer_parameters": sum(
                p.numel() * (2 if p.is_complex() else 1) for p in self.model.parameters()
            ),
        }
        start = time.perf_counter()
        self.step()
        self.info["peer_first_step_seconds"] = time.perf_counter() - start

    def step(self) -> float:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        pred = self.model(self.x)
        diff = (pred - self.y).flatten(1).norm(dim=1)
        loss = (diff / self.y.flatten(1).norm(dim=1)).mean()
        loss.backward()
        self.optimizer.step()
        loss.item()
        return time.perf_counter() - start


class PeerProcess:
    """The PyTorch FNO in a worker process, stepped on request (see the module docstring).

    ``config``: ``width``, ``modes``, ``in_channels``, ``out_channels``, ``batch``,
    ``resolution``, optionally ``layers`` (default 4) and ``threads`` (default: all CPUs, as
    XLA uses).
    """

    def __init__(self, config: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scifm.bench._torch", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._read()
        self.times: list[float] = []

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker ended (exit status {self.proc.wait()})")
        return json.loads(line)

    def __call__(self) -> None:
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        self.times.append(self._read())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        if self.proc.poll() is None:
            self.proc.kill()


def _serve(config: dict) -> None:
    peer = _Peer(config)
    print(json.dumps(peer.info), flush=True)
    for line in sys.stdin:
        if line.strip() == "step":
            print(json.dumps(peer.step()), flush=True)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
