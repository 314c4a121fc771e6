"""Federated pre-training of neural operators across data holders who cannot share data.

    from scifm import federated
    model = federated.initial_model(clients, preset="fno-64k")
    result = federated.simulate(model, clients, "runs/fed", algorithm=federated.Scaffold(),
                                aggregator=federated.Median(), rounds=20, local_steps=10)

Algorithms (FedAvg, FedProx, SCAFFOLD, FedOpt) and aggregation rules (mean, median, trimmed
mean, Krum) are objects; a round of K clients is one compiled call. Studies (``scifm federated
study``) compare them with centralised and local-only training. The same rounds run on
Flower's deployment engine (:func:`launch`, :func:`run_federation`; the ``flower`` extra), one
SuperNode per data holder, with TLS and node authentication.
"""

from scifm.federated._aggregate import AGGREGATORS as AGGREGATORS
from scifm.federated._aggregate import AbstractAggregator as AbstractAggregator
from scifm.federated._aggregate import Krum as Krum
from scifm.federated._aggregate import Mean as Mean
from scifm.federated._aggregate import Median as Median
from scifm.federated._aggregate import TrimmedMean as TrimmedMean
from scifm.federated._aggregate import flatten_clients as flatten_clients
from scifm.federated._algorithms import ALGORITHMS as ALGORITHMS
from scifm.federated._algorithms import AbstractAlgorithm as AbstractAlgorithm
from scifm.federated._algorithms import FedAdam as FedAdam
from scifm.federated._algorithms import FedAvg as FedAvg
from scifm.federated._algorithms import FedAvgM as FedAvgM
from scifm.federated._algorithms import FedOpt as FedOpt
from scifm.federated._algorithms import FedProx as FedProx
from scifm.federated._algorithms import Scaffold as Scaffold
from scifm.federated._attacks import ATTACKS as ATTACKS
from scifm.federated._attacks import AbstractAttack as AbstractAttack
from scifm.federated._attacks import NoAttack as NoAttack
from scifm.federated._attacks import PoisonedData as PoisonedData
from scifm.federated._attacks import RandomNoise as RandomNoise
from scifm.federated._attacks import ScaledUpdate as ScaledUpdate
from scifm.federated._attacks import SignFlip as SignFlip
from scifm.federated._config import FCCL as FCCL
from scifm.federated._config import Dirichlet as Dirichlet
from scifm.federated._config import Downstream as Downstream
from scifm.federated._config import FederatedStudy as FederatedStudy
from scifm.federated._config import Robustness as Robustness
from scifm.federated._config import component as component
from scifm.federated._config import dirichlet_clients as dirichlet_clients
from scifm.federated._config import load_study as load_study
from scifm.federated._deploy import TLS as TLS
from scifm.federated._deploy import flower_plan as flower_plan
from scifm.federated._deploy import launch as launch
from scifm.federated._deploy import make_certificates as make_certificates
from scifm.federated._deploy import make_node_key as make_node_key
from scifm.federated._deploy import require_flower as require_flower
from scifm.federated._deploy import run_federation as run_federation
from scifm.federated._deploy import start_supernode as start_supernode
from scifm.federated._deploy import stop_processes as stop_processes
from scifm.federated._fccl import FCCLLoss as FCCLLoss
from scifm.federated._fccl import collaboration_loss as collaboration_loss
from scifm.federated._fccl import consensus_basis as consensus_basis
from scifm.federated._fccl import fccl as fccl
from scifm.federated._fccl import features as features
from scifm.federated._fccl import public_inputs as public_inputs
from scifm.federated._report import summaries as summaries
from scifm.federated._report import write_report as write_report
from scifm.federated._simulate import CLIENT_OPTIMIZERS as CLIENT_OPTIMIZERS
from scifm.federated._simulate import SGD as SGD
from scifm.federated._simulate import Adam as Adam
from scifm.federated._simulate import client_batches as client_batches
from scifm.federated._simulate import federated_normalizer as federated_normalizer
from scifm.federated._simulate import federated_round as federated_round
from scifm.federated._simulate import init_clients as init_clients
from scifm.federated._simulate import initial_model as initial_model
from scifm.federated._simulate import message_bytes as message_bytes
from scifm.federated._simulate import simulate as simulate
from scifm.federated._study import Run as Run
from scifm.federated._study import plan as plan
from scifm.federated._sweep import run_study as run_study

__all__ = [
    "AGGREGATORS",
    "ALGORITHMS",
    "ATTACKS",
    "AbstractAggregator",
    "AbstractAlgorithm",
    "AbstractAttack",
    "Adam",
    "CLIENT_OPTIMIZERS",
    "Dirichlet",
    "Downstream",
    "FCCL",
    "FCCLLoss",
    "FedAdam",
    "FederatedStudy",
    "FedAvg",
    "FedAvgM",
    "FedOpt",
    "FedProx",
    "Krum",
    "Mean",
    "Median",
    "NoAttack",
    "PoisonedData",
    "RandomNoise",
    "Robustness",
    "Run",
    "SGD",
    "Scaffold",
    "ScaledUpdate",
    "SignFlip",
    "TLS",
    "TrimmedMean",
    "client_batches",
    "collaboration_loss",
    "component",
    "consensus_basis",
    "dirichlet_clients",
    "fccl",
    "features",
    "federated_normalizer",
    "federated_round",
    "flatten_clients",
    "flower_plan",
    "init_clients",
    "initial_model",
    "launch",
    "load_study",
    "make_certificates",
    "make_node_key",
    "message_bytes",
    "plan",
    "public_inputs",
    "require_flower",
    "run_federation",
    "run_study",
    "simulate",
    "start_supernode",
    "stop_processes",
    "summaries",
    "write_report",
]
