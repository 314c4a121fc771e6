"""Portfolios: a back-testing and execution engine with honest costs, and the baselines a
trading agent must beat.

    from scifm import portfolio
    market = portfolio.load_csv(["prices/"])            # or portfolio.load_dataset("sp500-stocks")
    result = portfolio.backtest(market, portfolio.CRP(), start="2017-01-01", end="2018-12-04")
    print(result.metrics())                             # net of 20 + 50 bps per trade

Decisions at a close use the market up to that close; orders fill at the next open
(:mod:`scifm.portfolio._engine`). The DDPG agent of Yu et al. (:func:`train_agent`) trains on
the same markets and trades in the same engine (:class:`AgentPolicy`), with its IPM, DAM and BCM
modules; :func:`run_study` redoes the paper's Table 1 over seeds and windows.
"""

from scifm.portfolio._agent import AgentConfig as AgentConfig
from scifm.portfolio._agent import AgentPolicy as AgentPolicy
from scifm.portfolio._agent import load_agent as load_agent
from scifm.portfolio._agent import train_agent as train_agent
from scifm.portfolio._baselines import CRP as CRP
from scifm.portfolio._baselines import EG as EG
from scifm.portfolio._baselines import OLMAR as OLMAR
from scifm.portfolio._baselines import POLICIES as POLICIES
from scifm.portfolio._baselines import BestAsset as BestAsset
from scifm.portfolio._baselines import BuyAndHold as BuyAndHold
from scifm.portfolio._baselines import simplex_projection as simplex_projection
from scifm.portfolio._engine import Backtest as Backtest
from scifm.portfolio._engine import Costs as Costs
from scifm.portfolio._engine import backtest as backtest
from scifm.portfolio._engine import walk_forward as walk_forward
from scifm.portfolio._expert import greedy_expert as greedy_expert
from scifm.portfolio._ipm import DyBM as DyBM
from scifm.portfolio._ipm import savgol_causal as savgol_causal
from scifm.portfolio._market import DATASETS as DATASETS
from scifm.portfolio._market import Market as Market
from scifm.portfolio._market import gbm_market as gbm_market
from scifm.portfolio._market import load_csv as load_csv
from scifm.portfolio._market import load_dataset as load_dataset
from scifm.portfolio._market import winner_market as winner_market
from scifm.portfolio._metrics import metrics as metrics
from scifm.portfolio._report import plot_backtest as plot_backtest
from scifm.portfolio._report import write_backtest as write_backtest
from scifm.portfolio._study import PortfolioStudy as PortfolioStudy
from scifm.portfolio._study import load_study as load_study
from scifm.portfolio._study import read_results as read_results
from scifm.portfolio._study import run_study as run_study

__all__ = [
    "AgentConfig",
    "AgentPolicy",
    "CRP",
    "DATASETS",
    "EG",
    "OLMAR",
    "POLICIES",
    "Backtest",
    "BestAsset",
    "BuyAndHold",
    "Costs",
    "DyBM",
    "Market",
    "PortfolioStudy",
    "backtest",
    "gbm_market",
    "greedy_expert",
    "load_agent",
    "load_csv",
    "load_dataset",
    "load_study",
    "metrics",
    "plot_backtest",
    "read_results",
    "run_study",
    "savgol_causal",
    "simplex_projection",
    "train_agent",
    "walk_forward",
    "winner_market",
    "write_backtest",
]
